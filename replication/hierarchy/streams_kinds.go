package hierarchy

// The streams of the table: the catalog, policies and settings.

import (
	"fmt"

	"patchtree/store"
)

// catalogStream is the child's language-filtered view of the catalog (view.go).
type catalogStream struct{}

func (catalogStream) scope() string { return ScopeCatalog }

// merge: a complete request stays complete; otherwise the newer one wins.
func (catalogStream) merge(cur, next *request) *request {
	if cur != nil && cur.mode == ModeComplete {
		return cur
	}
	return next
}

func (catalogStream) due(d *dueInput) (*request, error) {
	t, ok, err := dueCatalog(d.rules, d.child, d.req, d.view, d.pending)
	if err != nil || !ok {
		return nil, err
	}
	return &request{trigger: t}, nil
}

// dueCatalog decides whether the catalog section is due for a child and which.
func dueCatalog(rules Rules, c *store.Child, req PullRequest, v *store.CatalogView, pending *request) (trigger, bool, error) {
	horizon, err := v.TombstoneHorizon()
	if err != nil {
		return trigger{}, false, err
	}
	switch {
	case req.Cursor == 0 && v.Info.Version > 0:
		return trigger{ModeComplete, "first"}, true, nil
	case c.NeedsComplete:
		return trigger{ModeComplete, "repair"}, true, nil
	case req.Cursor < horizon:
		return trigger{ModeComplete, "horizon"}, true, nil
	case req.Cursor > v.Info.Version:
		return trigger{ModeComplete, "cursor-ahead"}, true, nil // the parent's catalog went backwards
	}
	if pending != nil {
		return pending.trigger, true, nil
	}
	if req.Cursor == 0 {
		return trigger{}, false, nil // the parent has no catalog yet: nothing to send or to filter
	}
	if req.Cursor != c.Cursor {
		// The child holds a version the parent never heard acknowledged (the acknowledgement
		// was lost): a run from its cursor, even an empty one, verifies and records it.
		return trigger{ModeDifferential, "resync"}, true, nil
	}
	if !sameRanges(c.Ranges, req.CursorRanges) {
		return trigger{ModeDifferential, "filter-change"}, true, nil
	}
	if rules.Catalog == "continuous" && v.Info.Version > req.Cursor {
		return trigger{ModeDifferential, "continuous"}, true, nil
	}
	return trigger{}, false, nil
}

func (catalogStream) build(b *runBuild, r *request) error {
	view := *b.child
	view.Cursor, view.CursorRanges = b.req.Cursor, b.req.CursorRanges
	plan, err := planCatalog(b.cache, b.view, &view, r.mode)
	if err != nil {
		return err
	}
	h := plan.header
	b.header.Mode, b.header.From, b.header.To, b.header.Ranges = h.Mode, h.From, h.To, h.Ranges
	b.header.Digest, b.header.Records, b.header.Deletes = h.Digest, h.Records, h.Deletes
	b.catalog = plan.catalog
	return nil
}

// verify: the child's replica digest must equal the view's, and its sample the view's
// records (when this server still holds the view the run was built from).
func (catalogStream) verify(c *ackCheck) (bool, string) {
	h, ack := c.h, c.ack
	if !ack.Applied {
		return true, ""
	}
	if c.view != nil {
		c.resp.Mismatches = checkSample(c.view, h.Ranges, ack.Sample)
	}
	ok := ack.ChildDigest == h.Digest && len(c.resp.Mismatches) == 0
	to, ranges, needs, rootVersion := h.To, h.Ranges, !ok, h.RootVersion
	c.u.Cursor, c.u.CursorRanges, c.u.CursorAt, c.u.NeedsComplete, c.u.RootVersion = &to, &ranges, c.now, &needs, &rootVersion
	if ok {
		return true, ""
	}
	return false, fmt.Sprintf("catalog: child digest %s, parent %s, %d sampled records differ %v",
		abbrev(ack.ChildDigest), abbrev(h.Digest), len(c.resp.Mismatches), firstN(c.resp.Mismatches, 5))
}

func (catalogStream) retry(h *RunHeader) *request {
	if !h.HasCatalog() {
		return nil
	}
	return &request{trigger: trigger{mode: h.Mode, reason: "retry"}}
}

func (catalogStream) carried(h *RunHeader) (bool, string) { return h.HasCatalog(), h.Mode }

// policiesStream is the parent's policies filtered to the child's ranges (policies.go).
type policiesStream struct{}

func (policiesStream) scope() string { return ScopePolicies }

func (policiesStream) merge(cur, next *request) *request { return mergePolicies(cur, next) }

func (policiesStream) due(d *dueInput) (*request, error) {
	c, req, pending := d.child, d.req, d.pending
	pidx := d.view.PoliciesIndex()
	complete := func(reason string) *request { return &request{trigger: trigger{ModeComplete, reason}} }
	continuous := d.rules.Policies == "continuous" && pidx > req.PolicyCursor
	switch {
	case c.PoliciesNeedComplete:
		return complete("repair"), nil
	case req.PolicyCursor == 0 && pidx > 0:
		return complete("first"), nil
	case req.PolicyCursor > pidx:
		return complete("cursor-ahead"), nil
	case pidx > 0 && !sameRanges(c.Ranges, req.PolicyRanges):
		return complete("filter-change"), nil
	case pending != nil && pending.unlessHolds > 0 && req.PolicyCursor >= pending.unlessHolds:
		d.drop = true // the child already holds what was asked for
		if continuous {
			return &request{trigger: trigger{ModeDifferential, "continuous"}}, nil
		}
		return nil, nil
	case pending != nil:
		return pending, nil
	case continuous:
		return &request{trigger: trigger{ModeDifferential, "continuous"}}, nil
	}
	return nil, nil
}

func (policiesStream) build(b *runBuild, r *request) error {
	cb := &chunkBuilder{}
	sec, needCatalog, err := buildPolicies(b.view, b.child.Ranges, b.req, r, cb)
	if err != nil {
		return err
	}
	if needCatalog {
		b.need(ScopeCatalog, &request{trigger: trigger{ModeDifferential, "policy-dependency"}})
	}
	b.header.Policies = sec
	b.chunks[ScopePolicies] = cb.out
	return nil
}

func (policiesStream) verify(c *ackCheck) (bool, string) {
	ps := c.h.Policies
	rp := &store.RunPolicies{Mode: ps.Mode, Trigger: ps.Trigger, Folders: ps.Folders, IDs: ps.IDs, From: ps.From,
		To: ps.To, Advanced: ps.Advance, Records: ps.Records, Deletes: c.ack.PoliciesDeleted, Digest: ps.Digest,
		ChildDigest: c.ack.PolicyDigest}
	c.run.Policies = rp
	if !c.ack.Applied {
		return true, ""
	}
	rp.Verified = c.ack.PolicyDigest == ps.Digest
	if rp.Advanced {
		to := rp.To
		c.u.PolicyCursor = &to
	}
	return c.digestCheck(ScopePolicies, rp.Verified, c.ack.PolicyDigest, ps.Digest)
}

func (policiesStream) retry(h *RunHeader) *request {
	ps := h.Policies
	if ps == nil {
		return nil
	}
	return &request{trigger: trigger{mode: ps.Mode, reason: "retry"}, folders: ps.Folders, ids: ps.IDs}
}

func (policiesStream) carried(h *RunHeader) (bool, string) {
	if h.Policies == nil {
		return false, ""
	}
	return true, h.Policies.Mode
}

// settingsStream is every settings document of the parent, always sent whole.
type settingsStream struct{}

func (settingsStream) scope() string { return ScopeSettings }

// merge: the newer request wins.
func (settingsStream) merge(cur, next *request) *request { return next }

func (settingsStream) due(d *dueInput) (*request, error) {
	c, req := d.child, d.req
	sidx := d.view.SettingDocsIndex()
	complete := func(reason string) *request { return &request{trigger: trigger{ModeComplete, reason}} }
	switch {
	case c.PoliciesNeedComplete:
		return complete("repair"), nil
	case req.SettingsCursor == 0 && sidx > 0:
		return complete("first"), nil
	case req.SettingsCursor > sidx:
		return complete("cursor-ahead"), nil
	case d.pending != nil:
		return d.pending, nil
	case d.rules.Settings == "continuous" && sidx > req.SettingsCursor:
		return complete("continuous"), nil
	}
	return nil, nil
}

func (settingsStream) build(b *runBuild, r *request) error {
	cb := &chunkBuilder{}
	sec, err := buildSettings(b.view, &r.trigger, cb)
	if err != nil {
		return err
	}
	b.header.Settings = sec
	b.chunks[ScopeSettings] = cb.out
	return nil
}

func (settingsStream) verify(c *ackCheck) (bool, string) {
	ss := c.h.Settings
	rs := &store.RunSettings{Trigger: ss.Trigger, To: ss.To, Records: ss.Records, Deletes: c.ack.SettingsDeleted}
	c.run.Settings = rs
	if !c.ack.Applied {
		return true, ""
	}
	rs.Verified = c.ack.SettingsDigest == ss.Digest
	to := rs.To
	c.u.SettingsCursor = &to
	return c.digestCheck(ScopeSettings, rs.Verified, c.ack.SettingsDigest, ss.Digest)
}

func (settingsStream) retry(h *RunHeader) *request {
	if h.Settings == nil {
		return nil
	}
	return &request{trigger: trigger{mode: ModeComplete, reason: "retry"}}
}

func (settingsStream) carried(h *RunHeader) (bool, string) { return h.Settings != nil, ModeComplete }
