package hierarchy

import (
	"fmt"
	"slices"

	"patchtree/replication/policy"
	"patchtree/store"
)

// mergePolicies combines two policy requests for the same child: the wider selection wins.
func mergePolicies(a, b *request) *request {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := &request{trigger: a.trigger, unlessHolds: max(a.unlessHolds, b.unlessHolds)}
	if a.unlessHolds == 0 || b.unlessHolds == 0 {
		out.unlessHolds = 0 // an unconditional request stays unconditional
	}
	if b.mode == ModeComplete {
		out.mode = ModeComplete
	}
	if a.all() || b.all() {
		return out
	}
	out.folders = union(a.folders, b.folders)
	out.ids = union(a.ids, b.ids)
	return out
}

func union(a, b []string) []string {
	out := append([]string{}, a...)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// buildPolicies adds a run's policies section to cb: the policies to send, filtered to the
// child's ranges, and the ids of every policy (the child drops the parent's others). It reports
// whether a policy sent references a catalog record the child's catalog cursor predates: then
// the run must carry the catalog too, ahead of the policies.
//
// Everything is read from v, one read transaction: the policies, the index the section's To
// takes, and the catalog records they reference. Reading the policies and their index in two
// transactions let a write between them advance a child's cursor past a change it never got,
// which a later run's digest (over every policy) then failed on. The store is not read.
func buildPolicies(v *store.CatalogView, ranges []string, req PullRequest, pr *request, cb *chunkBuilder) (*PolicySection, bool, error) {
	all, err := v.Policies()
	if err != nil {
		return nil, false, fmt.Errorf("read the policies for a run: %w", err)
	}
	complete := pr.mode == ModeComplete
	sec := &PolicySection{Mode: pr.mode, Trigger: pr.reason, Folders: pr.folders, IDs: pr.ids,
		From: req.PolicyCursor, To: v.PoliciesIndex(), Ranges: ranges, Advance: true}
	if complete {
		sec.From = 0
	}
	var sent, filtered []*store.Policy
	needCatalog := false
	for _, p := range all {
		changed := complete || p.ModifyIndex > req.PolicyCursor
		f := policy.Filter(p, ranges)
		filtered = append(filtered, f)
		send := changed
		if !pr.all() {
			send = slices.Contains(pr.folders, p.Folder) || slices.Contains(pr.ids, p.ID)
			if changed && !send {
				sec.Advance = false // a change outside the selection is not sent: the cursor stays
			}
		}
		if !send {
			continue
		}
		sent = append(sent, f)
		cb.addPolicy(f)
		needCatalog = needCatalog || lacksCatalog(v, f, req.Cursor)
	}
	for _, p := range all {
		cb.keepPolicy(p.ID)
	}
	sec.Records, sec.Keep = len(sent), len(all)
	if sec.Advance {
		sec.Digest = policy.Digest(filtered)
	} else {
		sec.Digest = policy.Digest(sent)
	}
	return sec, needCatalog, nil
}

// lacksCatalog reports whether a policy references a bulletin or update written after the
// child's catalog cursor: the child may not hold it (a new record, or one whose language or
// update list brought it into the child's view since), so the run must carry the catalog too.
func lacksCatalog(v *store.CatalogView, p *store.Policy, cursor uint64) bool {
	for _, id := range p.Bulletins {
		if b := v.Bulletin(id); b != nil && b.ModifyIndex > cursor {
			return true
		}
	}
	for _, u := range p.Updates {
		if r := v.Update(u.ID); r != nil && r.ModifyIndex > cursor {
			return true
		}
	}
	return false
}

// buildSettings adds every settings document to cb, read with their index from the run's one
// read transaction.
func buildSettings(v *store.CatalogView, t *trigger, cb *chunkBuilder) (*SettingsSection, error) {
	docs, err := v.SettingDocs()
	if err != nil {
		return nil, fmt.Errorf("read the settings documents for a run: %w", err)
	}
	var sent []*store.SettingDoc
	for _, d := range docs {
		s := &store.SettingDoc{Name: d.Name, Body: d.Body, UpdatedAt: d.UpdatedAt, UpdatedBy: d.UpdatedBy,
			Origin: store.OriginParent, ParentIndex: d.ModifyIndex}
		sent = append(sent, s)
		cb.addSettingDoc(s)
	}
	return &SettingsSection{Trigger: t.reason, To: v.SettingDocsIndex(), Records: len(sent),
		Digest: policy.SettingsDigest(sent)}, nil
}

func (c *chunkBuilder) addPolicy(p *store.Policy) {
	b := c.room(jsonLen(p))
	b.Policies = append(b.Policies, p)
}

func (c *chunkBuilder) keepPolicy(id string) {
	b := c.room(len(id) + 4)
	b.PolicyKeep = append(b.PolicyKeep, id)
}

func (c *chunkBuilder) addSettingDoc(d *store.SettingDoc) {
	b := c.room(jsonLen(d))
	b.SettingDocs = append(b.SettingDocs, d)
}

// childPolicyDigest is the digest a child computes over its policies replica after a run: every
// policy from the parent when the run advanced its cursor, else the policies the run sent.
func childPolicyDigest(state *store.Store, sec *PolicySection, sent map[string]bool) (string, error) {
	all, err := state.Policies(nil)
	if err != nil {
		return "", err
	}
	var mine []*store.Policy
	for _, p := range all {
		if p.Origin == store.OriginParent && (sec.Advance || sent[p.ID]) {
			mine = append(mine, p)
		}
	}
	return policy.Digest(mine), nil
}

// childSettingsDigest is the digest of the settings documents a child holds from its parent.
func childSettingsDigest(state *store.Store) (string, error) {
	all, err := state.SettingDocs(nil)
	if err != nil {
		return "", err
	}
	var mine []*store.SettingDoc
	for _, d := range all {
		if d.Origin == store.OriginParent {
			mine = append(mine, d)
		}
	}
	return policy.SettingsDigest(mine), nil
}
