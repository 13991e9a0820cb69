package hierarchy

// The stream table: each replicated kind that flows down a link (the catalog, policies,
// settings) is a stream, and the parent's pull, run and acknowledgement paths run the table
// generically: which streams are due, what each adds to a run, how each is verified and
// retried. A new kind is one more stream here, not an edit in every path.

import (
	"fmt"
	"time"

	"patchtree/store"
)

// stream is one replicated kind on a link down.
type stream interface {
	// scope names the stream in run headers, replication rules and run history.
	scope() string
	// merge combines a pending request with a newer one for the same child.
	merge(cur, next *request) *request
	// due decides whether a run for the child must carry the stream now (nil: not now).
	due(d *dueInput) (*request, error)
	// build adds the stream's section to a run: its header section and its chunks.
	build(b *runBuild, r *request) error
	// verify records the section of an acknowledged run and checks the child's digest; ok
	// false says why it did not verify.
	verify(c *ackCheck) (ok bool, problem string)
	// retry asks for the section of a run the child could not apply (nil: the run had none).
	retry(h *RunHeader) *request
	// carried reports whether a run carries the stream, and in which mode.
	carried(h *RunHeader) (bool, string)

	// On the child (streams_child.go), for a run that carries the stream: what each chunk tells
	// about the section, the deletions the whole section implies once every chunk is staged,
	// where the replica's cursor goes at the commit, and the digest it reports after it.
	collect(h *RunHeader, pr *partialRun, ch *chunk)
	drops(state *store.Store, h *RunHeader, pr *partialRun, ack *Ack) ([]*store.CatalogBatch, error)
	advance(h *RunHeader, src *store.SourceState)
	replicaDigest(state *store.Store, h *RunHeader, pr *partialRun, ack *Ack) error
}

// carriedStreams are the streams a run carries, in table order.
func carriedStreams(h *RunHeader) []stream {
	var out []stream
	for _, st := range streams {
		if ok, _ := st.carried(h); ok {
			out = append(out, st)
		}
	}
	return out
}

// streams is the table, in the order a run carries and a child applies the sections. A stream
// may ask for an earlier one while it builds (a policy needs catalog records the child lacks):
// runs are built from the last stream to the first.
var streams = []stream{catalogStream{}, policiesStream{}, settingsStream{}}

// streamOf is the stream of a scope (nil: none).
func streamOf(scope string) stream {
	for _, st := range streams {
		if st.scope() == scope {
			return st
		}
	}
	return nil
}

// request asks for a stream's section in a child's next run.
type request struct {
	trigger
	// folders and ids select policies (the policies stream only): both empty, every change.
	folders, ids []string
	// unlessHolds drops the request for a child whose policy cursor already reaches it.
	unlessHolds uint64
}

func (r *request) all() bool { return len(r.folders) == 0 && len(r.ids) == 0 }

// runSpec is which streams a run carries and why (by scope); a child's pending requests have
// the same shape. cascade is the replicate-now request that travels on down the tree with it.
type runSpec struct {
	sections map[string]*request
	cascade  *Cascade
}

// newSpec is a spec of the given sections.
func newSpec(sections map[string]*request) *runSpec { return &runSpec{sections: sections} }

func (s *runSpec) get(scope string) *request { return s.sections[scope] }

func (s *runSpec) set(scope string, r *request) {
	if r == nil {
		delete(s.sections, scope)
		return
	}
	if s.sections == nil {
		s.sections = map[string]*request{}
	}
	s.sections[scope] = r
}

func (s *runSpec) empty() bool { return len(s.sections) == 0 }

// reason is the run's trigger: its first section's.
func (s *runSpec) reason() string {
	for _, st := range streams {
		if r := s.get(st.scope()); r != nil {
			return r.reason
		}
	}
	return ""
}

// merge adds o's requests to s, stream by stream.
func (s *runSpec) merge(o *runSpec) {
	for _, st := range streams {
		if next := o.get(st.scope()); next != nil {
			s.set(st.scope(), st.merge(s.get(st.scope()), next))
		}
	}
	if o.cascade != nil {
		s.cascade = o.cascade
	}
}

// retrySpec is what a retry of a run asks for: the run's sections again.
func retrySpec(h RunHeader) *runSpec {
	s := &runSpec{cascade: h.Cascade}
	for _, st := range streams {
		s.set(st.scope(), st.retry(&h))
	}
	return s
}

// dueInput is what a stream decides from whether it is due for a child.
type dueInput struct {
	state *store.Store
	rules Rules
	child *store.Child
	req   PullRequest
	view  *store.CatalogView
	// pending is the stream's pending request (nil: none); drop says the stream found it moot.
	pending *request
	drop    bool
}

// due decides which sections a run for a child must carry now, from what is pending for it
// (which it may change: a request the child already holds is dropped); none: wait.
func (p *Parent) due(state *store.Store, rules Rules, c *store.Child, req PullRequest, v *store.CatalogView, pending *runSpec) (*runSpec, error) {
	s := &runSpec{cascade: pending.cascade}
	for _, st := range streams {
		d := &dueInput{state: state, rules: rules, child: c, req: req, view: v, pending: pending.get(st.scope())}
		r, err := st.due(d)
		if err != nil {
			return nil, fmt.Errorf("%s run for child %q: %w", st.scope(), c.Name, err)
		}
		if d.drop {
			pending.set(st.scope(), nil)
		}
		s.set(st.scope(), r)
	}
	return s, nil
}

// runBuild is a run being built for one child, from one consistent view.
type runBuild struct {
	state  *store.Store
	view   *store.CatalogView
	child  *store.Child
	req    PullRequest
	spec   *runSpec
	header RunHeader
	// cache holds the catalog sections shared by children with the same filter and cursor;
	// catalog is this run's (nil: the run carries no catalog).
	cache   *runCache
	catalog *catalogSection
	// chunks are the other streams' chunks, assembled in table order after the catalog's.
	chunks map[string][]*store.CatalogBatch
}

// need asks for a section another stream's section depends on, unless the run carries it.
func (b *runBuild) need(scope string, r *request) {
	if b.spec.get(scope) == nil {
		b.spec.set(scope, r)
	}
}

// startRun builds a run from one consistent view: every section due, built from the last
// stream to the first (so that a section can ask for an earlier one), carried in table order.
func (p *Parent) startRun(state *store.Store, v *store.CatalogView, c *store.Child, req PullRequest, spec *runSpec) (*RunPlan, error) {
	b := &runBuild{state: state, view: v, child: c, req: req, spec: spec, cache: p.cache, chunks: map[string][]*store.CatalogBatch{},
		// A run without the catalog leaves the child's catalog where it is.
		header: RunHeader{From: req.Cursor, To: req.Cursor, Ranges: req.CursorRanges}}
	for i := len(streams) - 1; i >= 0; i-- {
		st := streams[i]
		if r := spec.get(st.scope()); r != nil {
			if err := st.build(b, r); err != nil {
				return nil, fmt.Errorf("build the %s section of a run for child %q: %w", st.scope(), c.Name, err)
			}
		}
	}
	plan := &RunPlan{view: v, header: b.header, catalog: b.catalog}
	for _, st := range streams {
		if spec.get(st.scope()) != nil {
			plan.header.Scopes = append(plan.header.Scopes, st.scope())
			plan.batches = append(plan.batches, b.chunks[st.scope()]...)
		}
	}
	plan.header.Chunks = plan.chunks()
	now := time.Now().UTC()
	plan.header.RunID = newRunID(now)
	plan.header.Trigger = spec.reason()
	plan.header.SamplePercent = LoadRules(state).VerifyPercent
	rootVersion, err := p.rootVersion(state, plan.header.To)
	if err != nil {
		return nil, err
	}
	plan.header.RootVersion = rootVersion
	plan.header.Cascade = spec.cascade
	p.runs.add(plan.header.RunID, &inflight{plan: plan, child: c.Name, trigger: plan.header.Trigger, started: now})
	attrs := []any{"child", c.Name, "run", plan.header.RunID, "scopes", plan.header.Scopes, "trigger", plan.header.Trigger}
	if plan.header.HasCatalog() {
		attrs = append(attrs, "mode", plan.header.Mode, "from", plan.header.From, "to", plan.header.To,
			"records", plan.header.Records, "deletes", plan.header.Deletes)
	}
	if ps := plan.header.Policies; ps != nil {
		attrs = append(attrs, "policies", ps.Records, "policy_trigger", ps.Trigger, "folders", ps.Folders)
	}
	p.logger.Info("replication run", attrs...)
	return plan, nil
}

// ackCheck is an acknowledged run being recorded and verified.
type ackCheck struct {
	h   *RunHeader
	ack *Ack
	// view is the catalog the run was built from (nil: not held here any more).
	view *store.CatalogView
	run  *store.ReplicationRun
	u    *store.ChildUpdate
	resp *AckResponse
	now  time.Time
}

// repairPolicies marks the child's policies and settings for a complete run when bad (they
// are repaired together); a good section never clears another's mark.
func (c *ackCheck) repairPolicies(bad bool) {
	if c.u.PoliciesNeedComplete != nil {
		bad = bad || *c.u.PoliciesNeedComplete
	}
	c.u.PoliciesNeedComplete = &bad
}

// digestCheck ends the check of a policies or settings section: a mismatch marks both for a
// complete run and says which digests differ.
func (c *ackCheck) digestCheck(scope string, ok bool, child, parent string) (bool, string) {
	c.repairPolicies(!ok)
	if ok {
		return true, ""
	}
	return false, fmt.Sprintf("%s: child digest %s, parent %s", scope, abbrev(child), abbrev(parent))
}
