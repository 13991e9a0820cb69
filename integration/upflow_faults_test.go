package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fault tests of what flows through a hierarchy besides the catalog: compliance summaries going
// up (a child's leader killed, the parent killed while summaries arrive) and policies going down
// (the parent's leader killed right after acknowledging policy writes made through a follower).
// The rule is always the same: nothing acknowledged is ever lost. Ground truth is computed by the
// test from what it sent and got 200 (or 201) for, with the cmp* counting of
// compliance_helpers_test.go; nothing is taken from the server's code. Helpers are prefixed uff*.

// uffRanges are the languages of the children: three of the six tags of the generated feed.
var uffRanges = []string{"ar", "be", "bg"}

// uffFeed writes a small generated feed (12 bulletins, about 40 updates in 6 languages).
func uffFeed(t *testing.T, dir string) string {
	t.Helper()
	return catGenerate(t, dir, "gen.json", "--bulletins", "12", "--languages", "6", "--seed", "5")
}

func uffRaftAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// uffStartParent starts a single-server parent managing every language whose catalog rule does
// not fire during a test; fixedPort keeps its API address across restarts (children's --parent).
func uffStartParent(t *testing.T, name string, fixedPort bool) *proc {
	t.Helper()
	o := siteOpts{Name: name, Languages: []string{"*"}}
	if fixedPort {
		// serve's flags are pflag: the last --listen wins over the harness's 127.0.0.1:0.
		o.Extra = []string{"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	p := startSite(t, o)
	doJSON(t, "PUT", p.url+"/v1/replication/rules", p.token, map[string]any{"catalog": "12h"}, 200, nil)
	return p
}

// uffSite3 starts a site of three servers: SITE-a bootstraps (with first as extra flags),
// SITE-b and SITE-c join through it; every server gets extra. It returns the servers once they
// agree on a leader.
func uffSite3(t *testing.T, site, role string, langs, extra, first []string) []*proc {
	t.Helper()
	a := startSite(t, siteOpts{Name: site + "-a", Site: site, Role: role, RaftListen: uffRaftAddr(t), Languages: langs,
		Extra: append(slices.Clone(extra), first...)})
	nodes := []*proc{a}
	for _, s := range []string{"-b", "-c"} {
		nodes = append(nodes, startSite(t, siteOpts{Name: site + s, Site: site, Role: role, RaftListen: uffRaftAddr(t),
			JoinSite: a.url, Token: a.token, Languages: langs, Extra: slices.Clone(extra)}))
	}
	waitAgreement(t, nodes, a.token, 3)
	return nodes
}

// uffOthers are the nodes other than x.
func uffOthers(nodes []*proc, x *proc) []*proc {
	var out []*proc
	for _, n := range nodes {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

// uffWaitToken waits until token authenticates on every node (a token created through one
// server is applied on the others a moment later).
func uffWaitToken(t *testing.T, nodes []*proc, token, path string) {
	t.Helper()
	waitFor(t, 15*time.Second, func() (bool, string) {
		for _, n := range nodes {
			if st, raw, err := tryDo(context.Background(), "GET", n.url+path, token, nil); err != nil || st != 200 {
				return false, fmt.Sprintf("%s: GET %s with the new token: %d %v %s", n.name, path, st, err, raw)
			}
		}
		return true, ""
	})
}

// uffWaitDigests waits until GET /v1/digest is the same (digest and index) on every node.
func uffWaitDigests(t *testing.T, nodes []*proc, token string, timeout time.Duration) bool {
	t.Helper()
	return eventually(t, timeout, func() (bool, string) {
		var first digestResp
		var all []string
		for i, n := range nodes {
			st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/digest", token, nil)
			var d digestResp
			if err != nil || st != 200 || json.Unmarshal(raw, &d) != nil || d.Digest == "" {
				return false, fmt.Sprintf("%s: GET /v1/digest: %d %v %s", n.name, st, err, raw)
			}
			all = append(all, fmt.Sprintf("%s %s@%d", n.name, d.Digest, d.Index))
			if i == 0 {
				first = d
			} else if d != first {
				return false, "digests differ: " + strings.Join(all, ", ")
			}
		}
		return true, ""
	})
}

// ---- scans ----

// uffScanGen makes NDJSON scan batches of a site: new computers and re-scans of computers whose
// scans were acknowledged, each newer than anything before, plus one re-scan older than the
// stored one (ignored by the site, listed in older).
type uffScanGen struct {
	prefix string
	ups    []string // the site's update ids
	rng    *rand.Rand
	next   int       // next new computer number
	at     time.Time // scanned_at of the next scan; moves one second per scan
}

func uffNewScanGen(prefix string, cat *cmpCatalog, seed uint64) *uffScanGen {
	return &uffScanGen{prefix: prefix, ups: cat.updateIDs(), rng: rand.New(rand.NewPCG(seed, 7)),
		at: time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)}
}

func (g *uffScanGen) scan(id string, at time.Time) *cmpScan {
	sc := &cmpScan{ComputerID: id, At: at.Format(time.RFC3339), time: at, Valid: true,
		Sent: map[string]string{}, Kept: map[string]string{}, Bad: map[string]string{}}
	p := []float64{1, .8, .5, .2}[g.rng.IntN(4)]
	for _, u := range g.ups {
		if g.rng.Float64() < p {
			st := cmpStateNames[g.rng.IntN(4)]
			sc.Sent[u], sc.Kept[u] = st, st
		}
	}
	return sc
}

// batch makes one submission: fresh new computers, rescan re-scans of acknowledged ones.
func (g *uffScanGen) batch(token string, computers map[string]*cmpComputer, fresh, rescan int) *cmpSubmission {
	sub := &cmpSubmission{NDJSON: true, Token: token}
	known := make([]string, 0, len(computers))
	for id := range computers {
		known = append(known, id)
	}
	sort.Strings(known)
	for i := 0; i < fresh; i++ {
		g.at = g.at.Add(time.Second)
		sub.Scans = append(sub.Scans, g.scan(fmt.Sprintf("%s-pc-%04d", g.prefix, g.next), g.at))
		g.next++
	}
	for i := 0; i < rescan && len(known) > 0; i++ {
		g.at = g.at.Add(time.Second)
		sub.Scans = append(sub.Scans, g.scan(known[g.rng.IntN(len(known))], g.at))
	}
	if len(known) > 0 { // older than the stored scan: ignored
		id := known[g.rng.IntN(len(known))]
		sub.Scans = append(sub.Scans, g.scan(id, computers[id].At.Add(-time.Hour)))
	}
	g.rng.Shuffle(len(sub.Scans), func(i, j int) { sub.Scans[i], sub.Scans[j] = sub.Scans[j], sub.Scans[i] })
	return sub
}

// uffTryPost posts a submission once, without failing the test (usable from any goroutine).
func uffTryPost(ctx context.Context, siteURL string, sub *cmpSubmission) (int, cmpScansResp, []byte, error) {
	var got cmpScansResp
	req, err := http.NewRequestWithContext(ctx, "POST", siteURL+"/v1/scans?format=ndjson", bytes.NewReader(sub.build()))
	if err != nil {
		return 0, got, nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+sub.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, got, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, got, raw, err
	}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &got); err != nil {
			return resp.StatusCode, got, raw, fmt.Errorf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, got, raw, nil
}

// uffAcknowledged records an acknowledged submission in the model of the site's computers and
// compares the answer's counts with the model; it returns what differs ("" if nothing). A
// submission retried after an unanswered attempt is the same scans with the same times, so
// whether that attempt was applied changes nothing (an equal scanned_at replaces).
func uffAcknowledged(sub *cmpSubmission, got cmpScansResp, computers map[string]*cmpComputer) string {
	stored, results, older := cmpApply(computers, sub)
	if got.Received != len(sub.Scans) || got.Stored != stored || got.ResultsStored != results || got.Rejected != 0 ||
		!slices.Equal(hierSorted(got.Older), hierSorted(older)) {
		return fmt.Sprintf("answer received %d stored %d results_stored %d rejected %d older %v; want %d %d %d 0 %v",
			got.Received, got.Stored, got.ResultsStored, got.Rejected, got.Older, len(sub.Scans), stored, results, older)
	}
	return ""
}

// uffPost posts a submission through nodes (round robin) until one answers 200; 503 and
// transport errors (an election, a dead server) are retried until timeout. Any other status is
// reported (the API promises 503 while there is no leader) and retried as well. It returns the
// number of attempts.
func uffPost(t *testing.T, nodes []*proc, sub *cmpSubmission, computers map[string]*cmpComputer, what string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for attempt := 1; ; attempt++ {
		n := nodes[(attempt-1)%len(nodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		st, got, raw, err := uffTryPost(ctx, n.url, sub)
		cancel()
		if err == nil && st == 200 {
			if d := uffAcknowledged(sub, got, computers); d != "" {
				t.Errorf("%s through %s: %s", what, n.name, d)
			}
			return attempt
		}
		if err == nil && st != 503 {
			t.Errorf("%s through %s: status %d %.300s; want 200, or 503 while there is no leader", what, n.name, st, raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not acknowledged within %v; last answer through %s: %d %v %.300s", what, timeout, n.name, st, err, raw)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// uffComplianceNow fires a child's summary rule (replicate now, scope compliance) through nodes
// (round robin) with the child's admin token until one answers 200; 5xx and transport errors
// are retried until timeout.
func uffComplianceNow(t *testing.T, nodes []*proc, token string, timeout time.Duration) cmpSummaryResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for attempt := 1; ; attempt++ {
		n := nodes[(attempt-1)%len(nodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, raw, err := tryDo(ctx, "POST", n.url+"/v1/replication/now", token, map[string]any{"scope": "compliance"})
		cancel()
		var ans struct {
			Scope   string            `json:"scope"`
			Summary *cmpSummaryResult `json:"summary"`
		}
		if err == nil && st == 200 {
			if json.Unmarshal(raw, &ans) != nil || ans.Summary == nil || ans.Scope != "compliance" {
				t.Fatalf("%s: replicate now {scope: compliance}: 200 with %s; want the summary result", n.name, raw)
			}
			s := *ans.Summary
			t.Logf("%s: summary rule fired (attempt %d) → sent %t seq %d reason %q, %d computers, %d bulletins",
				n.name, attempt, s.Sent, s.Seq, s.Reason, s.Computers, s.Bulletins)
			return s
		}
		if err == nil && st < 500 {
			t.Fatalf("%s: replicate now {scope: compliance}: %d %s", n.name, st, raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("summary rule: no 200 within %v; last through %s: %d %v %s", timeout, n.name, st, err, raw)
		}
		if attempt == 1 || attempt%10 == 0 {
			t.Logf("%s: replicate now {scope: compliance} attempt %d: %d %v %.200s; retrying", n.name, attempt, st, err, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uffCheckParent compares the parent's reports with the truth of one child: GET /v1/compliance
// (that child only, with sequence seq) and GET /v1/compliance/bulletins.
func uffCheckParent(t *testing.T, what string, parent *proc, child string, cat *cmpCatalog, computers map[string]*cmpComputer, seq uint64) bool {
	t.Helper()
	tr := cmpCount(child, cat, computers)
	o := cmpGetOverview(t, parent, parent.token)
	ok := cmpCheckOverview(t, what+": the parent's GET /v1/compliance", o, []cmpSiteWant{{Truth: tr, Seq: seq}})
	rows := cmpGetRows(t, parent, parent.token, "")
	ok = cmpCheckRows(t, what+": the parent's GET /v1/compliance/bulletins", rows, cmpExpectRows([]cmpTruth{tr}, cat.Meta, cmpFilter{}), 1e-9) && ok
	if ok {
		t.Logf("%s: the parent shows %s: %d computers, %d compliant, cells %v, seq %d", what, child, tr.Computers, tr.Compliant, tr.Cells, seq)
	}
	return ok
}

// uffCheckRunSeqs checks a child's compliance runs at the parent: newest first, sequences
// strictly decreasing down the list (strictly increasing in time), the newest being the
// sequence the parent's report holds. It returns the sequences, oldest first.
func uffCheckRunSeqs(t *testing.T, parent *proc, child string, holds uint64) []uint64 {
	t.Helper()
	var l struct {
		Runs []cmpRun `json:"runs"`
	}
	u := parent.url + "/v1/replication/runs?limit=100000&scope=compliance&child=" + url.QueryEscape(child)
	doJSON(t, "GET", u, parent.token, nil, 200, &l)
	runs := l.Runs
	for _, r := range runs {
		if r.Child != child || r.Scope != "compliance" {
			t.Errorf("GET %s lists %v", u, r)
		}
	}
	if all := cmpComplianceRuns(t, parent, child); len(all) != len(runs) {
		t.Errorf("GET %s lists %d runs; the unfiltered history has %d compliance runs of %s", u, len(runs), len(all), child)
	}
	var seqs []uint64
	for i := len(runs) - 1; i >= 0; i-- {
		seqs = append(seqs, runs[i].To)
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].To >= runs[i-1].To || runs[i].StartedAt.After(runs[i-1].StartedAt) {
			t.Errorf("compliance runs of %s at the parent are not strictly increasing in sequence over time: %v (started %v) is listed after %v (started %v); sequences oldest first %v",
				child, runs[i], runs[i].StartedAt, runs[i-1], runs[i-1].StartedAt, seqs)
			break
		}
	}
	if len(runs) == 0 || runs[0].To != holds {
		t.Errorf("the parent holds %s's summary seq %d, but its newest compliance run is %v (sequences oldest first %v): an older summary replaced a newer one, or a stored one has no run",
			child, holds, runs[:min(1, len(runs))], seqs)
	}
	return seqs
}

// ---- 1. a child site's leader killed between summaries ----

// TestFaultComplianceChildLeaderKilled: a child site of three servers. Scans posted through a
// follower (forwarded to the leader) and the summary rule fired; the child's leader SIGKILLed;
// more scans and a second firing through survivors. The parent shows exactly the acknowledged
// scans, with a sequence after the one before the kill (the sequence is replicated state); the
// killed server rejoins and the three servers' digests converge.
func TestFaultComplianceChildLeaderKilled(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	feed := uffFeed(t, t.TempDir())
	parent := uffStartParent(t, "hq", false)
	hierImport(t, parent, map[string]any{"source": feed})
	join := hierEnrol(t, parent, "kid")
	kids := uffSite3(t, "kid", "child", uffRanges, []string{"--parent", parent.url}, []string{"--join-token", join})
	admin := kids[0].token
	hierWaitReported(t, parent, "kid", uffRanges)
	hierReplicateNow(t, parent, "kid", "")
	leader := waitAgreement(t, kids, admin, 3)
	uffWaitDigests(t, kids, admin, 15*time.Second) // every server holds the replicated catalog
	follower := uffOthers(kids, leader)[0]
	agent := createToken(t, follower.url, admin, "agent", "agent-kid").Token
	uffWaitToken(t, kids, agent, "/v1/status")
	cat := cmpReadCatalog(t, follower)
	t.Logf("setup in %v: child site of 3 (leader %s), catalog of %d bulletins and %d updates; scans go through follower %s",
		time.Since(start).Round(time.Millisecond), leader.name, len(cat.Bulletins), len(cat.Updates), follower.name)

	computers := map[string]*cmpComputer{}
	gen := uffNewScanGen("kid", cat, 1)
	for i := 0; i < 4; i++ {
		uffPost(t, []*proc{follower}, gen.batch(agent, computers, 15, 5), computers, fmt.Sprintf("scans %d through follower %s", i+1, follower.name), 10*time.Second)
	}
	before := uffComplianceNow(t, []*proc{follower}, admin, 15*time.Second)
	if !before.Sent || before.Seq == 0 || before.Computers != int64(len(computers)) {
		t.Fatalf("summary rule before the kill: %+v; want sent with %d computers", before, len(computers))
	}
	uffCheckParent(t, "before the kill", parent, "kid", cat, computers, before.Seq)

	leader.kill9(t)
	killed := time.Now()
	survivors := uffOthers(kids, leader)
	attempts := 0
	for i := 0; i < 4; i++ {
		attempts += uffPost(t, []*proc{survivors[i%2], survivors[(i+1)%2]}, gen.batch(agent, computers, 10, 10), computers,
			fmt.Sprintf("scans %d after the kill", i+1), 30*time.Second)
	}
	t.Logf("4 scan batches acknowledged through survivors %v after the SIGKILL of %s (%d attempts)", time.Since(killed).Round(time.Millisecond), leader.name, attempts)
	after := uffComplianceNow(t, survivors, admin, 30*time.Second)
	if after.Seq <= before.Seq {
		t.Errorf("summary after the failover has seq %d, not after %d (the sequence before the kill): the sequence did not survive the failover", after.Seq, before.Seq)
	}
	if after.Computers != int64(len(computers)) {
		t.Errorf("summary after the failover counts %d computers, want %d (every acknowledged scan)", after.Computers, len(computers))
	}
	uffCheckParent(t, "after the failover", parent, "kid", cat, computers, after.Seq)
	uffCheckRunSeqs(t, parent, "kid", after.Seq)

	// The killed server comes back with the same data dir and flags and rejoins.
	d := leader.restart(t)
	t.Logf("%s restarted, ready in %v", leader.name, d.Round(time.Millisecond))
	waitAgreement(t, kids, admin, 3)
	if uffWaitDigests(t, kids, admin, 20*time.Second) {
		t.Logf("the three servers of kid have the same digest")
	}
	tr := cmpCount("kid", cat, computers)
	cmpCheckOverview(t, leader.name+" after it rejoined: its own GET /v1/compliance", cmpGetOverview(t, leader, admin), []cmpSiteWant{{Truth: tr, Local: true}})
	t.Logf("TestFaultComplianceChildLeaderKilled took %v", time.Since(start).Round(time.Millisecond))
}

// ---- 2. the parent killed while summaries arrive ----

// uffPoster posts scan rounds to a child from its own goroutine until stopped; it never fails
// the test itself (problems are reported by the test goroutine afterwards).
type uffPoster struct {
	siteURL   string
	gen       *uffScanGen
	token     string
	computers map[string]*cmpComputer
	rounds    int
	problems  []string
}

func (p *uffPoster) run(stop <-chan struct{}, done chan<- struct{}, minRounds int) {
	defer close(done)
	for ; ; p.rounds++ {
		select {
		case <-stop:
			if p.rounds >= minRounds {
				return
			}
		default:
		}
		sub := p.gen.batch(p.token, p.computers, 8, 6)
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			st, got, raw, err := uffTryPost(ctx, p.siteURL, sub)
			cancel()
			if err == nil && st == 200 {
				if d := uffAcknowledged(sub, got, p.computers); d != "" {
					p.problems = append(p.problems, fmt.Sprintf("round %d: %s", p.rounds, d))
				}
				break
			}
			// The child is never killed: its scans do not depend on the parent.
			p.problems = append(p.problems, fmt.Sprintf("round %d attempt %d: POST /v1/scans: %d %v %.200s", p.rounds, attempt, st, err, raw))
			if attempt == 20 {
				return // the model can no longer be exact; the problems fail the test
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Duration(150+p.gen.rng.IntN(350)) * time.Millisecond)
	}
}

// uffSeqWatch polls the parent's GET /v1/compliance for a child's sequence while the parent is
// killed and restarted (at a fixed address); a sequence lower than one seen before means an
// older summary replaced a newer one.
type uffSeqWatch struct {
	polls, answered int
	seen            []uint64 // distinct sequences in the order they were seen
	backwards       []string
}

func (w *uffSeqWatch) run(parentURL, token, child string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var last uint64
	for {
		select {
		case <-stop:
			return
		default:
		}
		w.polls++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, raw, err := tryDo(ctx, "GET", parentURL+"/v1/compliance", token, nil)
		cancel()
		var o cmpOverview
		if err == nil && st == 200 && json.Unmarshal(raw, &o) == nil {
			w.answered++
			s, ok := o.site(child)
			if !ok && last > 0 {
				w.backwards = append(w.backwards, fmt.Sprintf("no summary of %s at all after seq %d was shown: %v", child, last, o.Sites))
			}
			if ok {
				if s.Seq < last {
					w.backwards = append(w.backwards, fmt.Sprintf("seq %d seen after seq %d (%s)", s.Seq, last, s))
				}
				if s.Seq != last {
					w.seen = append(w.seen, s.Seq)
				}
				last = s.Seq
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultParentKilledDuringSummaries: a single-server child reports every second (the parent's
// server-tasks settings) while scans arrive in rounds and the parent is SIGKILLed and restarted
// three times at random moments. Afterwards the parent's numbers are the truth of every
// acknowledged scan, its run history's sequences strictly increase, and no summary with an older
// sequence ever replaced a newer one.
func TestFaultParentKilledDuringSummaries(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	feed := uffFeed(t, t.TempDir())
	parent := uffStartParent(t, "hq", true)
	hierImport(t, parent, map[string]any{"source": feed})
	child := hierStartChild(t, parent, "solo", uffRanges)
	hierReplicateNow(t, parent, "solo", "")
	if st, _, raw := do(t, "PUT", parent.url+"/v1/settings/server-tasks", parent.token, map[string]any{"compliance_summary": "1s"}); st != 200 && st != 201 {
		t.Fatalf("PUT /v1/settings/server-tasks {compliance_summary: 1s}: %d %s", st, raw)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		site, _ := cmpGetOverview(t, parent, parent.token).site("solo")
		return site.Interval == "1s" && site.Seq > 0, fmt.Sprintf("solo at the parent: %v; want it reporting with interval 1s", site)
	})
	cat := cmpReadCatalog(t, child)
	agent := createToken(t, child.url, child.token, "agent", "agent-solo").Token
	t.Logf("setup in %v: parent, child solo reporting every second, catalog of %d bulletins and %d updates",
		time.Since(start).Round(time.Millisecond), len(cat.Bulletins), len(cat.Updates))

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	t.Logf("kill moments from seed %d", seed)
	poster := &uffPoster{siteURL: child.url, gen: uffNewScanGen("solo", cat, 2), token: agent, computers: map[string]*cmpComputer{}}
	watch := &uffSeqWatch{}
	stop, postDone, watchDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go poster.run(stop, postDone, 6)
	go watch.run(parent.url, parent.token, "solo", stop, watchDone) // the parent's URL stays the same
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-postDone
			<-watchDone
		}
	}
	defer halt()
	for k := 1; k <= 3; k++ {
		time.Sleep(time.Duration(600+rng.IntN(1800)) * time.Millisecond)
		parent.kill9(t)
		down := time.Duration(100+rng.IntN(1200)) * time.Millisecond
		time.Sleep(down)
		d := parent.restart(t)
		t.Logf("kill %d: parent SIGKILLed, restarted after %v, ready in %v", k, down, d.Round(time.Millisecond))
	}
	time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond) // summaries reach the restarted parent
	halt()
	for _, p := range poster.problems {
		t.Errorf("posting scans to the child (never killed): %s", p)
	}
	t.Logf("%d scan rounds acknowledged (%d computers); the parent's report polled %d times (%d answered), sequences seen %v",
		poster.rounds, len(poster.computers), watch.polls, watch.answered, watch.seen)
	for _, b := range watch.backwards {
		t.Errorf("the parent's GET /v1/compliance went back to an older summary of solo: %s", b)
	}

	res := uffComplianceNow(t, []*proc{child}, child.token, 30*time.Second)
	if res.Computers != int64(len(poster.computers)) {
		t.Errorf("final summary counts %d computers, want %d", res.Computers, len(poster.computers))
	}
	if n := len(watch.seen); n > 0 && res.Seq < watch.seen[n-1] {
		t.Errorf("final summary seq %d is older than seq %d the parent showed before", res.Seq, watch.seen[n-1])
	}
	uffCheckParent(t, "after 3 parent kills", parent, "solo", cat, poster.computers, res.Seq)
	if site, _ := cmpGetOverview(t, parent, parent.token).site("solo"); site.Interval != "1s" {
		t.Errorf("solo at the parent after the kills: %v; want interval 1s", site)
	}
	seqs := uffCheckRunSeqs(t, parent, "solo", res.Seq)
	t.Logf("compliance runs of solo at the parent, sequences oldest first: %v", seqs)
	// Every summary the parent showed was accepted: its run survives the kills.
	for _, q := range watch.seen {
		if !slices.Contains(seqs, q) {
			t.Errorf("the parent showed solo's summary seq %d, but its run history has no run of that sequence after the kills: %v", q, seqs)
		}
	}
	t.Logf("the child logged %d failed summary reports (retried) and %d failed pulls while the parent was down",
		len(fltLogContaining(child, "compliance summary not sent")), len(fltLogContaining(child, "pull from parent failed")))
	t.Logf("TestFaultParentKilledDuringSummaries took %v", time.Since(start).Round(time.Millisecond))
}

// ---- 3. policies written through a follower, the parent's leader killed ----

// TestFaultPolicyWriteThroughFollowerSurvivesLeaderLoss: a parent site of three servers and a
// child. Five policies created through a follower (each 201 an acknowledgement); the parent's
// leader SIGKILLed right after the last 201. The survivors elect a leader and every acknowledged
// policy is there, is in the audit log, and reaches the child within a deadline with no operator
// action.
func TestFaultPolicyWriteThroughFollowerSurvivesLeaderLoss(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	feed := uffFeed(t, t.TempDir())
	ps := uffSite3(t, "hq", "parent", []string{"*"}, nil, nil)
	admin := ps[0].token
	leader := waitAgreement(t, ps, admin, 3)
	followers := uffOthers(ps, leader)
	writer, uplink := followers[0], followers[1] // policies are written through writer; the child's --parent is uplink
	doJSON(t, "PUT", writer.url+"/v1/replication/rules", admin, map[string]any{"catalog": "12h"}, 200, nil)
	hierImport(t, writer, map[string]any{"source": feed})
	join := hierEnrol(t, writer, "kid")
	child := startSite(t, siteOpts{Name: "kid", Role: "child", Languages: uffRanges, Extra: []string{"--parent", uplink.url, "--join-token", join}})
	hierWaitReported(t, uplink, "kid", uffRanges)
	hierReplicateNow(t, uplink, "kid", "")
	rollout := createToken(t, writer.url, admin, "rollout", "rollout-op").Token
	uffWaitToken(t, ps, rollout, "/v1/policies")
	meta, _ := catListAll(t, writer, "")
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range meta {
			if !yield(id) {
				return
			}
		}
	})
	if len(ids) < 5 {
		t.Fatalf("the parent's catalog has %d bulletins, want at least 5", len(ids))
	}
	t.Logf("setup in %v: parent site of 3 (leader %s), policies through follower %s, child kid pulls through follower %s",
		time.Since(start).Round(time.Millisecond), leader.name, writer.name, uplink.name)

	var acked []polPolicy
	for i := 0; i < 5; i++ {
		body := map[string]any{"bulletins": []string{ids[i*2]}, "folder": "Faults/Leader loss"}
		if i%2 == 1 {
			body["bulletins"] = []string{ids[i*2], ids[i*2+1]}
			body["run"] = "asap"
		}
		p := polWrite(t, "POST", writer.url+"/v1/policies", rollout, body, 201)
		if !polIDPattern.MatchString(p.ID) || p.Revision != 1 || p.Origin != "local" {
			t.Errorf("POST /v1/policies %v through %s: %v; want a new local policy at revision 1", body, writer.name, p)
		}
		acked = append(acked, p)
	}
	leader.kill9(t) // right after the last 201
	killed := time.Now()
	t.Logf("5 policies acknowledged through %s; SIGKILLed the parent's leader %s", writer.name, leader.name)

	survivors := uffOthers(ps, leader)
	newLeader := waitAgreement(t, survivors, admin, 3)
	t.Logf("survivors agree on leader %s %v after the kill", newLeader.name, time.Since(killed).Round(time.Millisecond))
	// Reads are served from each server's replica: a follower learns that the last entries are
	// committed with the new leader's first appends, so it may lag the election by a moment. Every
	// acknowledged policy must be there, unchanged, with its audit entry, within a few seconds.
	for _, n := range survivors {
		t0, first := time.Now(), ""
		eventually(t, 5*time.Second, func() (bool, string) {
			have := polByID(polList(t, n, rollout, ""))
			entries := polAudit(t, n, admin)
			used := make([]bool, len(entries))
			var bad []string
			for _, a := range acked {
				g, ok := have[a.ID]
				switch {
				case !ok:
					bad = append(bad, fmt.Sprintf("acknowledged policy %v is missing", a))
				case polCanon(g.Raw) != polCanon(a.Raw):
					bad = append(bad, fmt.Sprintf("policy %s differs from its 201 answer: %s", a.ID, polFieldDiff(a.Raw, g.Raw)))
				}
				if i := polMatchAudit(entries, used, polExpect{Role: "rollout", Kind: "policy-create", Target: a.ID}); i < 0 {
					bad = append(bad, fmt.Sprintf("GET /v1/audit (%d entries) has no creation of %s by the rollout operator", len(entries), a.ID))
				} else {
					used[i] = true
				}
			}
			if len(bad) > 0 {
				if first == "" {
					first = strings.Join(bad, "; ")
				}
				return false, fmt.Sprintf("%s after the leader's death: %s", n.name, strings.Join(bad, "; "))
			}
			return true, ""
		})
		if first != "" {
			t.Logf("note: %s showed every acknowledged policy and its audit entry only %v after the survivors agreed on a leader (first read: %s)",
				n.name, time.Since(t0).Round(time.Millisecond), first)
		}
	}

	// The child gets every acknowledged policy (filtered to its languages) by the continuous rule,
	// with no replicate now, and holds exactly what the surviving parent holds.
	reached := polEventually(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		have := polByID(polList(t, child, child.token, "origin=parent"))
		var missing []string
		for _, a := range acked {
			if _, ok := have[a.ID]; !ok {
				missing = append(missing, a.ID)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Sprintf("child kid holds %d policies from the parent; %d acknowledged ones missing %v (%v after the kill of the parent's leader)",
				len(have), len(missing), missing, time.Since(killed).Round(time.Millisecond))
		}
		return polCheckChild(t, uplink, child, uffRanges)
	})
	if reached {
		t.Logf("child kid holds all 5 acknowledged policies %v after the kill of the parent's leader", time.Since(killed).Round(time.Millisecond))
	} else {
		st := hierGetStatus(t, child)
		t.Logf("child kid's parent link: %+v", st.Parent)
		for _, r := range polRuns(t, uplink, "kid") {
			t.Logf("  run at the parent: %v", r)
		}
	}
	t.Logf("TestFaultPolicyWriteThroughFollowerSurvivesLeaderLoss took %v", time.Since(start).Round(time.Millisecond))
}
