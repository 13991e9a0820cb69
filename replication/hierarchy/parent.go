package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/langalert"
	"patchtree/store"
)

// Sentinel errors of the parent side.
var (
	// ErrNoLanguages means the child never reported its languages: it receives no catalog.
	ErrNoLanguages = errors.New("the child has not reported its languages yet; it receives no catalog until it does")
	// ErrWrongChild means a node credential acted for another child.
	ErrWrongChild = errors.New("node credential belongs to another child")
	// ErrNotLeading means the parent's leader loop is not running here.
	ErrNotLeading = errors.New("not the leader")
)

// ParentBackend is what the parent side needs from its site server (node.Node implements it).
type ParentBackend interface {
	State() *store.Store
	JoinChild(name, joinToken string) (string, error)
	UpdateChild(name string, u store.ChildUpdate) (uint64, error)
	RecordReplicationRun(run store.ReplicationRun, u store.ChildUpdate) (uint64, error)
	CollectTombstones(upTo uint64) (uint64, error)
	PutChildSummary(s *store.ChildSummary, run *store.ReplicationRun) (bool, string, error)
	PruneRuns(child string, keep int) (uint64, error)
}

// trigger is a pending reason to replicate to a child.
type trigger struct {
	mode, reason string
}

// inflight is a run handed to a child and not yet acknowledged.
type inflight struct {
	plan    *RunPlan
	child   string
	trigger string
	started time.Time
}

// Parent serves children: enrolment, language reports, pulls and acknowledgements. Its state
// that is not replicated (who is waiting, pending triggers, runs in flight, last contact) lives
// on the leader only and is rebuilt by the children's next requests after a failover.
type Parent struct {
	backend  ParentBackend
	ready    chan struct{}
	logger   *slog.Logger
	pollWait time.Duration

	leading atomic.Bool
	// The soft state, each part with its own lock (parent_state.go).
	polls    *polls
	requests *requests
	runs     *runsOut
	schedule *schedule
	// alerts are the language alerts last logged (the leader loop's goroutine only).
	alerts map[string]bool
	// guard holds the security alerts and each child's poller (security.go).
	guard *guard
	// thresholds and health are the links' health and its log (link_health.go).
	thresholds HealthThresholds
	health     *healthLog
	// cache keeps built catalog sections for the next child with the same filter and cursor
	// (runcache.go).
	cache *runCache
}

// NewParent returns the parent side; SetBackend connects it to its server.
func NewParent(logger *slog.Logger) *Parent {
	return &Parent{
		ready: make(chan struct{}), logger: logger, pollWait: 55 * time.Second,
		polls: newPolls(), requests: newRequests(), runs: newRunsOut(), schedule: newSchedule(),
		alerts: map[string]bool{}, guard: newGuard(), thresholds: DefaultHealthThresholds, health: newHealthLog(),
		cache: newRunCache(DefaultRunCacheBytes),
	}
}

// SetBackend connects the parent side to its server.
func (p *Parent) SetBackend(b ParentBackend) {
	p.backend = b
	close(p.ready)
}

// Join exchanges a join token for the child's node credential.
func (p *Parent) Join(req JoinRequest) (*JoinResponse, error) {
	if req.Name == "" || req.JoinToken == "" {
		return nil, fmt.Errorf("join needs name and join_token: %w", store.ErrInvalid)
	}
	if err := store.CheckName("child", req.Name); err != nil {
		return nil, err
	}
	bearer, err := p.backend.JoinChild(req.Name, req.JoinToken)
	if err != nil {
		return nil, err
	}
	resp := &JoinResponse{NodeToken: bearer}
	if site, err := p.backend.State().Site(nil); err == nil && site != nil {
		resp.ParentName, resp.ParentSite = site.Name, site.SiteID
	}
	p.logger.Info("child joined", "child", req.Name)
	return resp, nil
}

// ReportLanguages records a child's ranges (and, from a relay, its subtree) and answers which of
// its own ranges the tree does not cover, with the child's path and the root's ranges.
func (p *Parent) ReportLanguages(child string, rep LanguageReport) (*LanguageReportResponse, error) {
	if rep.Child != "" && rep.Child != child {
		return nil, fmt.Errorf("%w: credential of %q reported as %q", ErrWrongChild, child, rep.Child)
	}
	ranges, err := langalert.ParseRanges(rep.Ranges)
	if err != nil {
		return nil, err
	}
	report, err := checkChildReport(child, rep, ranges)
	if err != nil {
		return nil, err
	}
	state := p.backend.State()
	c, err := state.Child(nil, child)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("child %q: %w", child, store.ErrNotFound)
	}
	newRanges := !c.RangesReported || !sameRanges(c.Ranges, ranges)
	if newRanges || !sameReport(c, report) {
		u := store.ChildUpdate{Report: report}
		if newRanges {
			u.Ranges, u.RangesAt = &ranges, time.Now().UTC()
		}
		if _, err := p.backend.UpdateChild(child, u); err != nil {
			return nil, err
		}
		if newRanges {
			p.logger.Info("child reported languages", "child", child, "ranges", ranges, "own_ranges", report.OwnRanges, "sites_below", len(report.Subtree))
			p.poke(child)
		}
	}
	p.touch(child)
	pos, err := p.position(nil)
	if err != nil {
		return nil, err
	}
	// A site below the root that has not heard the root's ranges yet cannot tell what the
	// tree covers: it says nothing is uncovered until it knows.
	resp := &LanguageReportResponse{ParentRanges: pos.own, Path: pos.path + "/" + child, Uncovered: []string{}}
	if pos.known {
		resp.RootRanges = pos.root
		resp.Uncovered = nonNil(langalert.Uncovered(pos.root, report.OwnRanges))
	}
	return resp, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Alert is one child range that no parent range covers (kind "language"), or a security alert
// about a child's credential (kinds "summary-refused" and "second-poller", with how often and
// when it was raised).
type Alert struct {
	Kind  string `json:"kind"`
	Child string `json:"child"`
	// Path is, for a language alert, the path from the root of the site that manages Range
	// (the child itself or a site below it); RootRanges are the root's ranges.
	Path         string     `json:"path,omitempty"`
	Range        string     `json:"range,omitempty"`
	ParentRanges []string   `json:"parent_ranges"`
	RootRanges   []string   `json:"root_ranges,omitempty"`
	Message      string     `json:"message"`
	Count        int        `json:"count,omitempty"`
	First        *time.Time `json:"first,omitempty"`
	Last         *time.Time `json:"last,omitempty"`
}

// Alerts lists the current language alerts, then the security alerts.
func (p *Parent) Alerts() ([]Alert, error) {
	out, err := p.languageAlerts()
	if err != nil {
		return nil, err
	}
	return append(out, p.guard.list(time.Now())...), nil
}

func (p *Parent) touch(child string) { p.polls.touch(child) }

// poke wakes a child's waiting pull so that it re-evaluates whether a run is due.
func (p *Parent) poke(child string) { p.polls.poke(child) }

// NowRequest is a replicate now: which children (all if none), which scope ("all", "catalog",
// "policies" or "settings"; a Policy or Folder implies "policies"), and the catalog's mode.
type NowRequest struct {
	Children []string
	Scope    string
	Mode     string
	Policy   string
	Folder   string
	Reason   string
	// Cascade, if set, travels with the runs: a relay passes the request on to its own
	// children once it applied the run (WaitCascade follows it down).
	Cascade *Cascade
	// UnlessHolds, with Policy, drops the request for a child whose policy cursor already
	// reaches it (a policy written with replicate_now, which a continuous rule may have sent
	// first): the child holds that version, so sending it again would be a second run.
	UnlessHolds uint64
}

// spec turns a request into the sections it asks for.
func (r NowRequest) spec() (*runSpec, error) {
	mode := r.Mode
	if mode == "" {
		mode = ModeDifferential
	}
	if mode != ModeDifferential && mode != ModeComplete {
		return nil, fmt.Errorf("mode must be differential or complete, not %q: %w", mode, store.ErrInvalid)
	}
	scope := r.Scope
	if r.Policy != "" || r.Folder != "" {
		if scope != "" && scope != ScopePolicies {
			return nil, fmt.Errorf("policy and folder select policies: scope must be policies, not %q: %w", scope, store.ErrInvalid)
		}
		scope = ScopePolicies
	}
	t := trigger{mode: mode, reason: r.Reason}
	selection := &request{trigger: t}
	if r.Policy != "" {
		selection.ids = []string{r.Policy}
		selection.unlessHolds = r.UnlessHolds
	}
	if r.Folder != "" {
		selection.folders = []string{r.Folder}
	}
	s := &runSpec{cascade: r.Cascade}
	ask := func(scope string) {
		if scope == ScopePolicies {
			s.set(scope, selection)
		} else {
			s.set(scope, &request{trigger: t})
		}
	}
	switch {
	case scope == "" || scope == "all":
		for _, st := range streams {
			ask(st.scope())
		}
	case streamOf(scope) != nil:
		ask(scope)
	default:
		return nil, fmt.Errorf("scope must be all, catalog, policies or settings, not %q (compliance is sent up by a child: ask the child site): %w", scope, store.ErrInvalid)
	}
	return s, nil
}

// ReplicateNow asks for a run to the named children (all if none): each gets one at its next
// (or current, waiting) pull. It returns the children targeted.
func (p *Parent) ReplicateNow(r NowRequest) ([]string, error) {
	spec, err := r.spec()
	if err != nil {
		return nil, err
	}
	all, err := p.backend.State().Children(nil)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, c := range all {
		known[c.Name] = true
	}
	children := r.Children
	if len(children) == 0 {
		for _, c := range all {
			children = append(children, c.Name)
		}
	}
	for _, name := range children {
		if !known[name] {
			return nil, fmt.Errorf("child %q: %w", name, store.ErrNotFound)
		}
	}
	for _, name := range children {
		p.requests.add(name, spec)
	}
	for _, name := range children {
		p.poke(name)
	}
	return children, nil
}

// retry asks again for every section of a run a child could not apply.
func (p *Parent) retry(child string, h RunHeader) {
	p.requests.add(child, retrySpec(h))
}

// WaitRuns waits until each child has a run recorded that started at or after since, or ctx
// ends; it returns the newest such run per child (missing: none yet), or why the runs could
// not be read.
func (p *Parent) WaitRuns(ctx context.Context, children []string, since time.Time) (map[string]*store.ReplicationRun, error) {
	for {
		done := p.runs.changed()
		got, err := p.runsSince(children, since)
		if err != nil || len(got) == len(children) {
			return got, err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return got, nil
		}
	}
}

func (p *Parent) runsSince(children []string, since time.Time) (map[string]*store.ReplicationRun, error) {
	runs, err := p.backend.State().ReplicationRuns(nil)
	if err != nil {
		return nil, fmt.Errorf("read replication runs: %w", err)
	}
	want := map[string]bool{}
	for _, c := range children {
		want[c] = true
	}
	out := map[string]*store.ReplicationRun{}
	for _, r := range runs {
		if r.Scope == ScopeCompliance {
			continue // a summary coming up is not a run down
		}
		if want[r.Child] && !r.StartedAt.Before(since) {
			if prev, ok := out[r.Child]; !ok || r.ID > prev.ID {
				out[r.Child] = r
			}
		}
	}
	return out, nil
}

// PullRequest is a child's pull: where its replica stands.
type PullRequest struct {
	Child        string
	Cursor       uint64
	CursorRanges []string
	// PolicyCursor and PolicyRanges are where the child's policies stand, SettingsCursor its
	// settings documents.
	PolicyCursor   uint64
	PolicyRanges   []string
	SettingsCursor uint64
	Wait           time.Duration
	// Resume names a run whose stream was cut after FromChunk chunks were staged by the child.
	Resume    string
	FromChunk int
	// Instance is the polling process's id (InstanceHeader), TokenID the id of the credential
	// it authenticated with: a pull ends when that credential is revoked or rotated.
	Instance string
	TokenID  string
	// RootRanges are the root's ranges as the child last heard them (RootKnown: it sent them);
	// a pull answers at once, with none, when they changed, so the child reports again and
	// learns them.
	RootRanges []string
	RootKnown  bool
}

// Pull answers a child's long-poll: a run as soon as one is due, or nil when the wait expires.
func (p *Parent) Pull(ctx context.Context, req PullRequest) (*RunPlan, error) {
	if req.Wait <= 0 || req.Wait > p.pollWait {
		req.Wait = p.pollWait
	}
	end, err := p.beginPoll(req.Child, req.Instance, req.TokenID)
	if err != nil {
		return nil, err
	}
	defer end()
	if req.Resume != "" {
		inf := p.runs.get(req.Resume, req.Child)
		if inf != nil && (req.FromChunk < 0 || req.FromChunk > inf.plan.chunks()) {
			inf = nil
		}
		if inf != nil {
			p.touch(req.Child)
			p.logger.Info("resuming replication run", "child", req.Child, "run", req.Resume, "from_chunk", req.FromChunk, "chunks", inf.plan.chunks())
			return inf.plan.resumedFrom(req.FromChunk), nil
		}
		// This leader does not hold that run (a restart or failover): send a fresh one, of the
		// catalog and the policies, from the cursors the child reports.
		retry := trigger{ModeDifferential, "retry"}
		p.requests.add(req.Child, newSpec(map[string]*request{ScopeCatalog: {trigger: retry}, ScopePolicies: {trigger: retry}}))
	}
	timer := time.NewTimer(req.Wait)
	defer timer.Stop()
	for {
		p.touch(req.Child)
		// Taken before reading what is due: a request or a new term from now on wakes the wait.
		wake := p.polls.waitCh(req.Child)
		state := p.backend.State()
		// The catalog, policies and settings under a continuous rule go as soon as they change:
		// the wait watches the catalog's version, the policies' and settings' tables, the pokes,
		// and the child's row (a rotation ends it).
		ws := memdb.NewWatchSet()
		c, err := state.Child(ws, req.Child)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, fmt.Errorf("child %q: %w", req.Child, store.ErrNotFound)
		}
		if req.TokenID != "" && c.NodeTokenID != req.TokenID {
			return nil, fmt.Errorf("%w: pull of child %q", ErrCredentialRevoked, req.Child)
		}
		if !c.RangesReported {
			return nil, ErrNoLanguages
		}
		state.PoliciesIndex(ws)
		state.SettingDocsIndex(ws)
		if pos, err := p.position(ws); err != nil {
			return nil, err
		} else if req.RootKnown && pos.known && !sameRanges(req.RootRanges, pos.root) {
			return nil, nil
		}
		view, err := state.CatalogView(ws)
		if err != nil {
			return nil, err
		}
		rules := LoadRules(state)
		if !p.leading.Load() {
			return nil, ErrNotLeading
		}
		pending := p.requests.take(c.Name)
		spec, err := p.due(state, rules, c, req, view, pending)
		if err != nil {
			p.requests.putBack(c.Name, pending)
			return nil, err
		}
		if !spec.empty() {
			return p.startRun(state, view, c, req, spec)
		}
		p.requests.putBack(c.Name, pending) // nothing due: what was asked waits for its turn
		wctx, cancel := context.WithCancel(ctx)
		changed := ws.WatchCh(wctx)
		select {
		case <-wake:
		case <-changed:
		case <-timer.C:
			cancel()
			return nil, nil
		case <-ctx.Done():
			cancel()
			return nil, ctx.Err()
		}
		cancel()
	}
}
