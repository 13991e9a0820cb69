package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// Hierarchy is the parent side of the parent/child protocol (hierarchy.Parent implements it).
type Hierarchy interface {
	Join(req hierarchy.JoinRequest) (*hierarchy.JoinResponse, error)
	ReportLanguages(child string, rep hierarchy.LanguageReport) (*hierarchy.LanguageReportResponse, error)
	Pull(ctx context.Context, req hierarchy.PullRequest) (*hierarchy.RunPlan, error)
	Ack(child string, ack hierarchy.Ack) (*hierarchy.AckResponse, error)
	Alerts() ([]hierarchy.Alert, error)
	ReplicateNow(req hierarchy.NowRequest) ([]string, error)
	WaitRuns(ctx context.Context, children []string, since time.Time) (map[string]*store.ReplicationRun, error)
	Status(only string) ([]hierarchy.ChildStatus, error)
	RulesChanged()
	// ChildRotated ends what the leader knew of a child's old credential (its waiting pull).
	ChildRotated(child string)
	ReceiveSummary(child string, rep hierarchy.SummaryReport, wire, raw int64) (*hierarchy.SummaryAnswer, error)
	// RootRanges are the root's ranges as this site knows them (nil: not yet).
	RootRanges() ([]string, error)
	Tree() (*hierarchy.Tree, error)
	// SitePath is this site's path from the root ("hq/emea").
	SitePath() (string, error)
	WaitCascade(ctx context.Context, id string, children []string) ([]hierarchy.SiteResult, error)
}

func (s *Server) hierarchy() (Hierarchy, error) {
	if s.opts.Hierarchy == nil {
		return nil, fmt.Errorf("this server does not serve children: %w", store.ErrConflict)
	}
	return s.opts.Hierarchy, nil
}

// childCreated answers POST /v1/children: the join token is shown this once.
type childCreated struct {
	Name      string `json:"name"`
	JoinToken string `json:"join_token"`
	Index     uint64 `json:"index"`
}

func (s *Server) addChild(r *http.Request) (int, any, error) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if err := store.CheckName("child", req.Name); err != nil {
		return 0, nil, err
	}
	if strings.ContainsAny(req.Name, "/ ") {
		return 0, nil, fmt.Errorf(`%w: child name: may not contain spaces or "/"`, ErrBadRequest)
	}
	c, err := s.backend.AddChild(actor(r), req.Name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, childCreated{Name: c.Child.Name, JoinToken: c.JoinToken, Index: c.Index}, nil
}

type childrenResponse struct {
	Children []hierarchy.ChildStatus `json:"children"`
}

func (s *Server) listChildren(r *http.Request) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	st, err := h.Status("")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, childrenResponse{Children: st}, nil
}

func (s *Server) getChild(r *http.Request) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	st, err := h.Status(mux.Vars(r)["name"])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st[0], nil
}

func (s *Server) removeChild(r *http.Request) (int, any, error) {
	idx, err := s.backend.RemoveChild(actor(r), mux.Vars(r)["name"])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}

// childRotated answers POST /v1/children/{name}/rotate: the new join token is shown this once;
// the old credential is already revoked.
type childRotated struct {
	Name      string `json:"name"`
	JoinToken string `json:"join_token"`
	Index     uint64 `json:"index"`
}

func (s *Server) rotateChild(r *http.Request) (int, any, error) {
	c, err := s.backend.RotateChild(actor(r), mux.Vars(r)["name"])
	if err != nil {
		return 0, nil, err
	}
	if s.opts.Hierarchy != nil {
		s.opts.Hierarchy.ChildRotated(c.Name)
	}
	return http.StatusOK, childRotated{Name: c.Name, JoinToken: c.JoinToken, Index: c.Index}, nil
}

type alertsResponse struct {
	Alerts []hierarchy.Alert `json:"alerts"`
}

func (s *Server) alerts(r *http.Request) (int, any, error) {
	if s.opts.Hierarchy == nil {
		return http.StatusOK, alertsResponse{Alerts: []hierarchy.Alert{}}, nil
	}
	a, err := s.opts.Hierarchy.Alerts()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, alertsResponse{Alerts: a}, nil
}

// replicateNowRequest is the body of POST /v1/replication/now.
type replicateNowRequest struct {
	Child string `json:"child"`
	Scope string `json:"scope"`
	Mode  string `json:"mode"`
	Wait  bool   `json:"wait"`
	// Timeout bounds the wait (Go duration, default 2m).
	Timeout string `json:"timeout"`
	Policy  string `json:"policy"`
	Folder  string `json:"folder"`
}

// childResult is one child's outcome of a replicate-now with wait.
type childResult struct {
	Child    string                `json:"child"`
	Done     bool                  `json:"done"`
	Verified bool                  `json:"verified"`
	Run      *store.ReplicationRun `json:"run,omitempty"`
	Error    string                `json:"error,omitempty"`
}

type replicateNowResponse struct {
	Children []string      `json:"children"`
	Results  []childResult `json:"results,omitempty"`
	// Cascade identifies the request at every depth; Sites (with wait) is every targeted site
	// at every depth, by path: the children first, then the sites below them.
	Cascade string                 `json:"cascade,omitempty"`
	Sites   []hierarchy.SiteResult `json:"sites,omitempty"`
	// Since is when the leader took the request: runs that started from then on count.
	Since time.Time `json:"since,omitzero"`
}

func (s *Server) replicateNow(r *http.Request) (int, any, error) {
	var req replicateNowRequest
	body := r.Body
	var read bytes.Buffer
	r.Body = io.NopCloser(io.TeeReader(body, &read))
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if !s.backend.IsLeader() {
		if req.Wait && req.Scope != hierarchy.ScopeCompliance {
			return s.replicateNowFollower(r, req)
		}
		// The leader serves it, as every route that writes: the body goes on unchanged.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(read.Bytes()), body))
		markAudited(r)
		return 0, rawResponse(func(w http.ResponseWriter) { s.forward(w, r) }), nil
	}
	if req.Scope == hierarchy.ScopeCompliance {
		if tok := callerToken(r); tok != nil && tok.Role == store.RoleRollout {
			return 0, nil, fmt.Errorf("%w: rollout may replicate now only policies", ErrForbidden)
		}
		return s.complianceNow(r)
	}
	policyScope := req.Scope == hierarchy.ScopePolicies || (req.Scope == "" && (req.Policy != "" || req.Folder != ""))
	if tok := callerToken(r); tok != nil && tok.Role == store.RoleRollout && !policyScope {
		return 0, nil, fmt.Errorf("%w: rollout may replicate now only policies (scope \"policies\", optionally with policy or folder), not scope %q", ErrForbidden, req.Scope)
	}
	if req.Policy != "" {
		if p, err := s.backend.State().Policy(nil, req.Policy); err != nil {
			return 0, nil, err
		} else if p == nil {
			return 0, nil, fmt.Errorf("policy %q: %w", req.Policy, store.ErrNotFound)
		}
	}
	timeout, err := waitTimeout(req.Timeout)
	if err != nil {
		return 0, nil, err
	}
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	var names []string
	if req.Child != "" {
		names = []string{req.Child}
	}
	since := time.Now().UTC()
	cascade := &hierarchy.Cascade{ID: hierarchy.NewCascadeID(since), Scope: req.Scope, Mode: req.Mode, Policy: req.Policy, Folder: req.Folder}
	targeted, err := h.ReplicateNow(hierarchy.NowRequest{Children: names, Scope: req.Scope, Mode: req.Mode,
		Policy: req.Policy, Folder: req.Folder, Reason: "replicate-now", Cascade: cascade})
	if err != nil {
		return 0, nil, err
	}
	target := "all children"
	if req.Child != "" {
		target = "child " + req.Child
	}
	if err := s.backend.Audit(actor(r), "replicate-now", target, map[string]any{"children": targeted, "scope": req.Scope,
		"mode": req.Mode, "policy": req.Policy, "folder": req.Folder, "wait": req.Wait}); err != nil {
		return 0, nil, err
	}
	markAudited(r)
	resp := replicateNowResponse{Children: targeted, Cascade: cascade.ID, Since: since}
	if !req.Wait {
		return http.StatusAccepted, resp, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	runs, err := h.WaitRuns(ctx, targeted, since)
	if err != nil {
		return 0, nil, err
	}
	return s.nowResults(ctx, h, resp, runs, timeout)
}

// nowResults completes a replicate-now with wait: each targeted child's run, then every site
// below them that the request reached, by path.
func (s *Server) nowResults(ctx context.Context, h Hierarchy, resp replicateNowResponse, runs map[string]*store.ReplicationRun, timeout time.Duration) (int, any, error) {
	targeted := resp.Children
	for _, name := range targeted {
		res := childResult{Child: name}
		if run, ok := runs[name]; ok {
			res.Done, res.Verified, res.Run, res.Error = true, run.Verified, run, run.Error
		} else {
			res.Error = fmt.Sprintf("no run completed within %s (is the child connected?)", timeout)
		}
		resp.Results = append(resp.Results, res)
		site := hierarchy.SiteResult{Path: name, Depth: 1, Via: name, Done: res.Done, Verified: res.Verified, Error: res.Error}
		if run := res.Run; run != nil {
			brief := run.Brief()
			site.Run = &brief
		}
		resp.Sites = append(resp.Sites, site)
	}
	below, err := h.WaitCascade(ctx, resp.Cascade, targeted)
	if err != nil {
		return 0, nil, err
	}
	path, err := h.SitePath()
	if err != nil {
		return 0, nil, err
	}
	for i := range resp.Sites {
		resp.Sites[i].Path = path + "/" + resp.Sites[i].Path
		resp.Sites[i].Depth += strings.Count(path, "/")
	}
	resp.Sites = append(resp.Sites, below...)
	return http.StatusOK, resp, nil
}

// runsRecorded waits for runs in the replicated state (hierarchy.Parent implements it).
type runsRecorded interface {
	WaitRunsRecorded(ctx context.Context, children []string, since time.Time) (map[string]*store.ReplicationRun, error)
}

// followerRecheck is how often a follower waiting for replicate-now runs checks who leads.
const followerRecheck = 2 * time.Second

// replicateNowFollower serves a replicate-now with wait on a follower. The leader takes the
// request without wait, and this server waits for the runs in the replicated state, so that the
// wait outlives the leader: runs acknowledged across its death are recorded by the next leader
// from their tickets, and the children that have no run recorded yet are asked for again at the
// next leader (a request pending there died with its leader).
func (s *Server) replicateNowFollower(r *http.Request, req replicateNowRequest) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	waiter, ok := h.(runsRecorded)
	if !ok {
		return 0, nil, fmt.Errorf("%w: this server cannot wait for runs; ask the leader", node.ErrNotLeader)
	}
	timeout, err := waitTimeout(req.Timeout)
	if err != nil {
		return 0, nil, err
	}
	markAudited(r) // the leader records the request
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ask := req
	ask.Wait, ask.Timeout = false, ""
	askedAt := time.Now().UTC()
	first, leader, refused, err := s.askLeader(ctx, r, ask)
	if err != nil || refused != nil {
		return 0, refused, err
	}
	since := first.Since
	if since.IsZero() {
		since = askedAt
	}
	resp := replicateNowResponse{Children: first.Children, Cascade: first.Cascade, Since: since}
	var runs map[string]*store.ReplicationRun
	for {
		sub, cancelSub := context.WithTimeout(ctx, followerRecheck)
		runs, err = waiter.WaitRunsRecorded(sub, resp.Children, since)
		cancelSub()
		if err != nil {
			return 0, nil, err
		}
		if len(runs) == len(resp.Children) || ctx.Err() != nil {
			break
		}
		now, err := s.backend.WaitLeader(ctx)
		if err != nil || now == leader {
			continue
		}
		asked := true
		for _, name := range resp.Children {
			if _, done := runs[name]; done {
				continue
			}
			ask.Child = name
			if again, _, refused, err := s.askLeader(ctx, r, ask); err != nil || refused != nil {
				asked = false
				s.logger.Warn("replicate now: could not ask the new leader again; retrying", "child", name, "leader", now, "error", err)
			} else if again.Cascade != "" {
				resp.Cascade = again.Cascade
			}
		}
		if asked {
			s.logger.Info("replicate now: the leader changed while this server waited; asked the new one again for the children without a run",
				"leader", now, "was", leader)
			leader = now
		}
	}
	return s.nowResults(ctx, h, resp, runs, timeout)
}

// askLeader sends a replicate-now without wait to the leader with the caller's credential. A
// refusal by the leader comes back as its answer, to pass on unchanged.
func (s *Server) askLeader(ctx context.Context, r *http.Request, req replicateNowRequest) (*replicateNowResponse, string, rawResponse, error) {
	wctx, cancel := context.WithTimeout(ctx, leaderWait)
	leader, err := s.backend.WaitLeader(wctx)
	cancel()
	if err != nil {
		return nil, "", nil, err
	}
	buf, err := json.Marshal(req)
	if err != nil {
		return nil, "", nil, fmt.Errorf("encode replicate-now for the leader: %w", err)
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(leader, "/")+"/v1/replication/now", bytes.NewReader(buf))
	if err != nil {
		return nil, "", nil, fmt.Errorf("replicate-now for the leader at %s: %w", leader, err)
	}
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("Authorization", r.Header.Get("Authorization"))
	out.Header.Set(forwardedHeader, s.backend.ID())
	answer, err := http.DefaultClient.Do(out)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: replicate-now at the leader %s: %v", node.ErrNoLeader, leader, err)
	}
	defer answer.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(answer.Body, 1<<20))
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: read the leader's answer to replicate-now: %v", node.ErrNoLeader, err)
	}
	if answer.StatusCode != http.StatusAccepted {
		return nil, leader, rawResponse(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(answer.StatusCode)
			w.Write(raw)
		}), nil
	}
	var resp replicateNowResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, "", nil, fmt.Errorf("decode the leader's answer to replicate-now: %w", err)
	}
	return &resp, leader, nil, nil
}

type runsResponse struct {
	Runs []*store.ReplicationRun `json:"runs"`
}

func (s *Server) listRuns(r *http.Request) (int, any, error) {
	runs, err := s.backend.State().ReplicationRuns(nil)
	if err != nil {
		return 0, nil, err
	}
	child := r.URL.Query().Get("child")
	limit := 100
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return 0, nil, fmt.Errorf("%w: limit must be a positive number, not %q", ErrBadRequest, raw)
		}
		limit = n
	}
	scope := r.URL.Query().Get("scope")
	switch scope {
	case "", hierarchy.ScopeCatalog, hierarchy.ScopePolicies, hierarchy.ScopeSettings, hierarchy.ScopeCompliance:
	default:
		return 0, nil, fmt.Errorf("%w: scope must be catalog, policies, settings or compliance, not %q", ErrBadRequest, scope)
	}
	out := []*store.ReplicationRun{}
	for i := len(runs) - 1; i >= 0 && len(out) < limit; i-- {
		if (child == "" || runs[i].Child == child) && (scope == "" || slices.Contains(strings.Split(runs[i].Scope, "+"), scope)) {
			out = append(out, runs[i])
		}
	}
	return http.StatusOK, runsResponse{Runs: out}, nil
}

func (s *Server) getRules(r *http.Request) (int, any, error) {
	return http.StatusOK, hierarchy.LoadRules(s.backend.State()), nil
}

func (s *Server) putRules(r *http.Request) (int, any, error) {
	rules := hierarchy.LoadRules(s.backend.State())
	if err := decodeBody(r, &rules); err != nil {
		return 0, nil, err
	}
	if err := rules.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := s.backend.PutSettingAs(actor(r), "replication.rules-set", hierarchy.SettingRules, rules); err != nil {
		return 0, nil, err
	}
	if s.opts.Hierarchy != nil {
		s.opts.Hierarchy.RulesChanged()
	}
	return http.StatusOK, rules, nil
}

// nodeChild is the child a node credential belongs to.
func nodeChild(r *http.Request) string {
	if tok := callerToken(r); tok != nil {
		return tok.Child
	}
	return ""
}

func (s *Server) hJoin(r *http.Request) (int, any, error) {
	var req hierarchy.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	resp, err := h.Join(req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

func (s *Server) hLanguages(r *http.Request) (int, any, error) {
	var req hierarchy.LanguageReport
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Ranges == nil {
		// A missing or null list is not an empty one: it would drop every language of the child.
		return 0, nil, fmt.Errorf(`%w: field "ranges" is required (an array; [] for language-neutral updates only)`, ErrBadRequest)
	}
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	resp, err := h.ReportLanguages(nodeChild(r), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

func (s *Server) hPull(r *http.Request) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	req := hierarchy.PullRequest{Child: nodeChild(r), Instance: r.Header.Get(hierarchy.InstanceHeader)}
	if tok := callerToken(r); tok != nil {
		req.TokenID = tok.ID
	}
	if raw := q.Get("cursor"); raw != "" {
		if req.Cursor, err = strconv.ParseUint(raw, 10, 64); err != nil {
			return 0, nil, fmt.Errorf("%w: cursor %q is not a number", ErrBadRequest, raw)
		}
	}
	if raw := q.Get("ranges"); raw != "" {
		req.CursorRanges = strings.Split(raw, ",")
	}
	for _, c := range []struct {
		name string
		v    *uint64
	}{{"pcursor", &req.PolicyCursor}, {"scursor", &req.SettingsCursor}} {
		if raw := q.Get(c.name); raw != "" {
			if *c.v, err = strconv.ParseUint(raw, 10, 64); err != nil {
				return 0, nil, fmt.Errorf("%w: %s %q is not a number", ErrBadRequest, c.name, raw)
			}
		}
	}
	if raw := q.Get("pranges"); raw != "" {
		req.PolicyRanges = strings.Split(raw, ",")
	}
	if q.Has("root") {
		req.RootKnown, req.RootRanges = true, splitNonEmpty(q.Get("root"))
	}
	if req.Resume = q.Get("resume"); req.Resume != "" {
		if req.FromChunk, err = strconv.Atoi(q.Get("chunk")); err != nil || req.FromChunk < 0 {
			return 0, nil, fmt.Errorf("%w: chunk %q is not a chunk number", ErrBadRequest, q.Get("chunk"))
		}
	}
	if raw := q.Get("wait"); raw != "" {
		if req.Wait, err = time.ParseDuration(raw); err != nil {
			return 0, nil, fmt.Errorf("%w: wait %q is not a duration", ErrBadRequest, raw)
		}
	}
	plan, err := h.Pull(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	if plan == nil {
		// The root's ranges go with every empty answer: a child that heard others reports again.
		root, err := h.RootRanges()
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, rawResponse(func(w http.ResponseWriter) {
			if root != nil {
				w.Header().Set(hierarchy.RootRangesHeader, strings.Join(root, ","))
			}
			w.WriteHeader(http.StatusNoContent)
		}), nil
	}
	// A child of the compact revision reads the run id from the header, a compact ticket and
	// frames compressed with the run dictionary; any other gets revision 1.
	compact := q.Get(hierarchy.RevisionParam) == strconv.Itoa(hierarchy.RevisionCompact)
	ticket := ""
	if t, ok := h.(ticketing); ok {
		// Without a ticket the run can still be acknowledged to this leader; a failover
		// before then leaves its acknowledgement to the resync path.
		if ticket, err = t.WireTicket(plan, compact); err != nil {
			s.logger.Warn("replication run goes without a ticket", "run", plan.Header().RunID, "error", err)
		}
	}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/vnd.patchtree.run.v1+zstd")
		if !compact {
			w.Header().Set("X-Patchtree-Run", plan.Header().RunID)
		}
		if ticket != "" {
			w.Header().Set(hierarchy.RunTicketHeader, ticket)
		}
		w.WriteHeader(http.StatusOK)
		if _, err := plan.WriteFor(w, compact); err != nil {
			s.logger.Warn("sending replication run failed", "run", plan.Header().RunID, "error", err)
		}
	}), nil
}

// ticketing is the part of the parent side that signs the runs it hands out and records the
// acknowledgement of a run from its ticket (hierarchy.Parent implements it).
type ticketing interface {
	WireTicket(plan *hierarchy.RunPlan, compact bool) (string, error)
	AckTicketed(child string, ack hierarchy.TicketedAck) (*hierarchy.AckResponse, error)
}

func (s *Server) hAck(r *http.Request) (int, any, error) {
	var req hierarchy.TicketedAck
	if _, err := s.decodeEncodedBody(r, &req, 0); err != nil {
		return 0, nil, err
	}
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	var resp *hierarchy.AckResponse
	if t, ok := h.(ticketing); ok {
		resp, err = t.AckTicketed(nodeChild(r), req)
	} else {
		resp, err = h.Ack(nodeChild(r), req.Ack)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// hSite answers a child with the API addresses of every server of this site, so that its link
// fails over between them (any server answers, from the replicated servers table).
func (s *Server) hSite(r *http.Request) (int, any, error) {
	if _, err := s.hierarchy(); err != nil {
		return 0, nil, err
	}
	servers, err := s.backend.Servers()
	if err != nil {
		return 0, nil, err
	}
	resp := hierarchy.SiteAddresses{URLs: []string{}}
	for _, sv := range servers {
		if sv.APIAddr != "" {
			resp.URLs = append(resp.URLs, sv.APIAddr)
		}
	}
	if site, err := s.backend.State().Site(nil); err != nil {
		return 0, nil, err
	} else if site != nil {
		resp.ParentName, resp.ParentSite = site.Name, site.SiteID
	}
	return http.StatusOK, resp, nil
}

// splitNonEmpty splits a comma-separated list; "" is the empty list.
func splitNonEmpty(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// waitTimeout is a replicate-now's wait bound: 2 minutes unless the request gives a positive
// Go duration.
func waitTimeout(raw string) (time.Duration, error) {
	if raw == "" {
		return 2 * time.Minute, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: timeout %q is not a positive duration such as \"90s\"", ErrBadRequest, raw)
	}
	return d, nil
}
