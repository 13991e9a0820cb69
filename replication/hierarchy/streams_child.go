package hierarchy

// The child's half of each stream: what a run's chunks tell about the section, the deletions
// the whole section implies, where the replica's cursor goes, and the digest the child reports.

import (
	"fmt"

	"patchtree/store"
)

// collect: a complete catalog section is the whole view; the ids it holds decide what goes.
func (catalogStream) collect(h *RunHeader, pr *partialRun, ch *chunk) {
	if h.Mode != ModeComplete || !h.HasCatalog() {
		return
	}
	for _, b := range ch.Bulletins {
		pr.seenB[b.ID] = true
	}
	for _, u := range ch.Updates {
		pr.seenU[u.ID] = true
	}
}

// drops: after a complete section, every record it did not contain.
func (catalogStream) drops(state *store.Store, h *RunHeader, pr *partialRun, _ *Ack) ([]*store.CatalogBatch, error) {
	if h.Mode != ModeComplete {
		return nil, nil
	}
	drop := &store.CatalogBatch{Replica: true}
	view, err := state.CatalogView(nil)
	if err != nil {
		return nil, fmt.Errorf("read the catalog replica: %w", err)
	}
	err = view.EachBulletin(func(b *store.Bulletin) bool {
		if !pr.seenB[b.ID] {
			drop.DeleteBulletins = append(drop.DeleteBulletins, b.ID)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the replica's bulletins: %w", err)
	}
	err = view.EachUpdate(func(u *store.Update) bool {
		if !pr.seenU[u.ID] {
			drop.DeleteUpdates = append(drop.DeleteUpdates, u.ID)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the replica's updates: %w", err)
	}
	return splitDeletes(drop, 20000), nil
}

func (catalogStream) advance(h *RunHeader, src *store.SourceState) {
	src.Cursor, src.Ranges, src.RootVersion = h.To, h.Ranges, h.RootVersion
}

// replicaDigest: the digest of the whole replica, and a sample of its records when the run
// carried any (one that carried nothing is verified by the digest alone).
func (catalogStream) replicaDigest(state *store.Store, h *RunHeader, _ *partialRun, ack *Ack) error {
	view, err := state.CatalogView(nil)
	if err != nil {
		return fmt.Errorf("read the catalog replica: %w", err)
	}
	ack.ChildDigest = ReplicaDigest(view)
	ack.carried = h.Records+h.Deletes > 0
	if ack.carried {
		ack.Sample = sample(view, h.SamplePercent)
	}
	return nil
}

// collect: the policies the section sent, and every policy the parent has (kept ids are not
// staged: they only say what stays).
func (policiesStream) collect(_ *RunHeader, pr *partialRun, ch *chunk) {
	for _, id := range ch.PolicyKeep {
		pr.keep[id] = true
	}
	ch.PolicyKeep = nil
	for _, p := range ch.Policies {
		pr.sentPolicies[p.ID] = true
	}
}

// drops: the parent's policies this replica holds that the parent no longer has.
func (policiesStream) drops(state *store.Store, _ *RunHeader, pr *partialRun, ack *Ack) ([]*store.CatalogBatch, error) {
	all, err := state.Policies(nil)
	if err != nil {
		return nil, fmt.Errorf("read the policies replica: %w", err)
	}
	drop := &store.CatalogBatch{Replica: true}
	for _, p := range all {
		if p.Origin == store.OriginParent && !pr.keep[p.ID] {
			drop.DeletePolicies = append(drop.DeletePolicies, p.ID)
		}
	}
	ack.PoliciesDeleted = len(drop.DeletePolicies)
	if ack.PoliciesDeleted == 0 {
		return nil, nil
	}
	return []*store.CatalogBatch{drop}, nil
}

func (policiesStream) advance(h *RunHeader, src *store.SourceState) {
	if ps := h.Policies; ps.Advance {
		src.PolicyCursor, src.PolicyRanges = ps.To, ps.Ranges
	}
}

func (policiesStream) replicaDigest(state *store.Store, h *RunHeader, pr *partialRun, ack *Ack) error {
	d, err := childPolicyDigest(state, h.Policies, pr.sentPolicies)
	if err != nil {
		return fmt.Errorf("read the policies replica: %w", err)
	}
	ack.PolicyDigest = d
	return nil
}

func (settingsStream) collect(_ *RunHeader, pr *partialRun, ch *chunk) {
	for _, d := range ch.SettingDocs {
		pr.sentSettings[d.Name] = true
	}
}

// drops: settings are sent whole, so the parent's documents the section did not carry.
func (settingsStream) drops(state *store.Store, _ *RunHeader, pr *partialRun, ack *Ack) ([]*store.CatalogBatch, error) {
	docs, err := state.SettingDocs(nil)
	if err != nil {
		return nil, fmt.Errorf("read the settings replica: %w", err)
	}
	drop := &store.CatalogBatch{Replica: true}
	for _, d := range docs {
		if d.Origin == store.OriginParent && !pr.sentSettings[d.Name] {
			drop.DeleteSettingDocs = append(drop.DeleteSettingDocs, d.Name)
		}
	}
	ack.SettingsDeleted = len(drop.DeleteSettingDocs)
	if ack.SettingsDeleted == 0 {
		return nil, nil
	}
	return []*store.CatalogBatch{drop}, nil
}

func (settingsStream) advance(h *RunHeader, src *store.SourceState) {
	src.SettingsCursor = h.Settings.To
}

func (settingsStream) replicaDigest(state *store.Store, _ *RunHeader, _ *partialRun, ack *Ack) error {
	d, err := childSettingsDigest(state)
	if err != nil {
		return fmt.Errorf("read the settings replica: %w", err)
	}
	ack.SettingsDigest = d
	return nil
}
