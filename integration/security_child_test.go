package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"patchtree/replication/compliance"
)

// Finding 3 of the threat model (docs/security.md, "A child's credential at its parent") and the
// child side of finding 8 (permanent join errors), against real parent and child processes.

// secChildSite is a parent with a small generated catalog and one real child "north" holding it.
type secChildSite struct {
	parent, child *proc
	cat           *cmpCatalog
	agent         string
	computers     map[string]*cmpComputer
	scans         int
}

// secStartChildSite starts a parent, imports a small feed, starts child north (every language)
// and replicates the catalog to it.
func secStartChildSite(t *testing.T) *secChildSite {
	t.Helper()
	dir := t.TempDir()
	feed := catGenerate(t, dir, "feed.json", "--bulletins", "12", "--languages", "3", "--seed", "7")
	s := &secChildSite{computers: map[string]*cmpComputer{}}
	s.parent = hierStartParent(t, "hq", []string{"*"})
	// A short refusal grace: the rotation test waits for the link to stop on the old credential.
	s.child = hierStartChild(t, s.parent, "north", []string{"*"}, "--parent-refusal-grace", "3s")
	hierImport(t, s.parent, map[string]any{"source": feed})
	hierReplicateNow(t, s.parent, "north", "")
	s.cat = cmpReadCatalog(t, s.child)
	s.agent = createToken(t, s.child.url, s.child.token, "agent", "agent-north").Token
	return s
}

// postScans posts n new scans at the child (random states over its catalog) and returns the
// child's summary rule's outcome once it sent them up.
func (s *secChildSite) postScans(t *testing.T, n int) cmpSummaryResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(s.scans), 3))
	states := []string{"installed", "required", "not_required", "unknown"}
	sub := &cmpSubmission{NDJSON: true, Token: s.agent}
	for i := 0; i < n; i++ {
		at := time.Now().UTC().Add(-time.Duration(n-i) * time.Second).Truncate(time.Second)
		sc := &cmpScan{ComputerID: fmt.Sprintf("north-pc-%03d", s.scans+i), At: at.Format(time.RFC3339), time: at, Valid: true,
			Sent: map[string]string{}, Kept: map[string]string{}, Bad: map[string]string{}}
		for _, u := range s.cat.updateIDs() {
			if rng.IntN(3) > 0 {
				st := states[rng.IntN(len(states))]
				sc.Sent[u], sc.Kept[u] = st, st
			}
		}
		sub.Scans = append(sub.Scans, sc)
	}
	s.scans += n
	cmpPost(t, s.child, sub, s.computers, fmt.Sprintf("%d scans at north", n))
	res := cmpComplianceNow(t, s.child)
	if !res.Sent || res.Computers != int64(len(s.computers)) {
		t.Fatalf("north's summary after %d scans: %+v; want sent and accepted with %d computers", n, res, len(s.computers))
	}
	return res
}

// checkTruth compares the parent's rolled-up GET /v1/compliance with the scans posted at north.
func (s *secChildSite) checkTruth(t *testing.T, what string, seq uint64) {
	t.Helper()
	waitFor(t, 20*time.Second, func() (bool, string) {
		o := cmpGetOverview(t, s.parent, s.parent.token)
		site, ok := o.site("north")
		return ok && site.Seq == seq, fmt.Sprintf("north's line at the parent: %v; want seq %d", site, seq)
	})
	cmpCheckOverview(t, what, cmpGetOverview(t, s.parent, s.parent.token),
		[]cmpSiteWant{{Truth: cmpCount("north", s.cat, s.computers), Seq: seq, Interval: "1h0m0s"}})
}

// secNodeToken reads a child's node credential from its data dir, as someone who could read the
// child's disk would: the parent link is a setting in its Raft log.
func secNodeToken(t *testing.T, child *proc) string {
	t.Helper()
	re := regexp.MustCompile(`"node_token":"([^"]+)"`)
	var found string
	filepath.Walk(child.dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || found != "" {
			return nil
		}
		if raw, err := os.ReadFile(path); err == nil {
			if all := re.FindAllSubmatch(raw, -1); len(all) > 0 {
				found = string(all[len(all)-1][1])
			}
		}
		return nil
	})
	if found == "" {
		t.Fatalf("%s: no node credential found in its data dir", child.name)
	}
	return found
}

// secAlerts is GET /v1/alerts of one kind.
func secAlerts(t *testing.T, p *proc, kind string) []map[string]any {
	t.Helper()
	var l struct {
		Alerts []map[string]any `json:"alerts"`
	}
	doJSON(t, "GET", p.url+"/v1/alerts", p.token, nil, 200, &l)
	var out []map[string]any
	for _, a := range l.Alerts {
		if a["kind"] == kind {
			out = append(out, a)
		}
	}
	return out
}

// testForgedSummary: a node credential posts seq 2^64−1 and impossible numbers: refused with
// 409/400 and the reason, raised as alerts, the parent's state unchanged; the real child's next
// summaries are accepted and the rolled-up numbers equal the scans posted.
func testForgedSummary(t *testing.T) {
	s := secStartChildSite(t)
	p := s.parent
	first := s.postScans(t, 8)
	s.checkTruth(t, "before the attack", first.Seq)

	rogue := hierJoin(t, p, "rogue")
	doJSON(t, "PUT", p.url+"/v1/hierarchy/v1/languages", rogue, map[string]any{"ranges": []string{"*"}}, 200, nil)
	var bulletin string
	for id := range s.cat.Bulletins {
		bulletin = id
		break
	}
	forged := &compliance.Summary{Site: "rogue", AsOf: time.Now().UTC(), Computers: 3, Compliant: -5, Cells: [4]int64{3, 0, 0, 0},
		ViewUpdates: 1, Bulletins: []compliance.BulletinCounts{{ID: bulletin, C: [4]int64{3, 0, 0, 0}}},
		Severities: []compliance.SeverityCounts{{Severity: "", C: [4]int64{3, 0, 0, 0}}}}
	report := func(child string, seq uint64, sum *compliance.Summary) map[string]any {
		return map[string]any{"child": child, "seq": seq, "digest": sum.Digest(), "trigger": "test", "interval": "1h", "summary": sum}
	}
	before := getDigest(t, p.url, p.token)
	hwm := vmHWM(t, p)
	for _, c := range []struct {
		what   string
		child  string
		seq    uint64
		status int
		msg    string
	}{
		{"seq 2^64-1 with compliant -5", "rogue", math.MaxUint64, 409, "must have sequence 1"},
		{"seq 1 with compliant -5", "rogue", 1, 400, "compliant -5"},
		{"seq 2^64-1 as north", "north", math.MaxUint64, 403, "another child"},
	} {
		for _, zstd := range []bool{false, true} {
			st, _, raw, _ := cmpPostSummary(t, p, rogue, report(c.child, c.seq, forged), zstd)
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			checkError(t, fmt.Sprintf("rogue posts %s (zstd %t)", c.what, zstd), st, m, raw, c.status, c.msg)
		}
	}
	// Counts that cannot add up, and a bulletin outside the catalog.
	bad := *forged
	bad.Compliant, bad.Cells = 1, [4]int64{2, 0, 0, 0}
	st, _, raw, _ := cmpPostSummary(t, p, rogue, report("rogue", 1, &bad), true)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	checkError(t, "rogue posts cells that do not add up", st, m, raw, 400, "cells add up")
	bad = *forged
	bad.Compliant, bad.Bulletins = 3, []compliance.BulletinCounts{{ID: "NOT-A-BULLETIN", C: [4]int64{3, 0, 0, 0}}}
	st, _, raw, _ = cmpPostSummary(t, p, rogue, report("rogue", 1, &bad), true)
	m = nil
	_ = json.Unmarshal(raw, &m)
	checkError(t, "rogue posts an unknown bulletin", st, m, raw, 400, "not in this child's view")
	requireDigestUnchanged(t, p, "forged summaries", before)
	checkHWMGrowth(t, p, "forged summaries", hwm)
	if runs := cmpComplianceRuns(t, p, "rogue"); len(runs) != 0 {
		t.Errorf("rogue's compliance runs after forged summaries: %v; want none", runs)
	}
	if a := secAlerts(t, p, "summary-refused"); len(a) != 1 || a[0]["child"] != "rogue" || !strings.Contains(fmt.Sprint(a[0]["message"]), "rotate") {
		t.Errorf("GET /v1/alerts summary-refused after forged summaries: %v; want one naming rogue", a)
	}

	// The real child's next summaries are accepted, and the parent's numbers are the scans'.
	second := s.postScans(t, 5)
	if second.Seq != first.Seq+1 {
		t.Errorf("north's summary after the attack: seq %d; want %d", second.Seq, first.Seq+1)
	}
	s.checkTruth(t, "after the attack", second.Seq)
	third := s.postScans(t, 4)
	s.checkTruth(t, "after more scans", third.Seq)
}

// testSecondPoller: a second process polling with the real child's credential is refused (409)
// and raised as an alert naming the child; the real child keeps its runs.
func testSecondPoller(t *testing.T) {
	s := secStartChildSite(t)
	p := s.parent
	node := secNodeToken(t, s.child)
	cursor := hierGetStatus(t, s.child).Parent.Cursor
	before := getDigest(t, p.url, p.token)
	var st int
	var raw []byte
	waitFor(t, 20*time.Second, func() (bool, string) {
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/hierarchy/v1/catalog?cursor=%d&ranges=*&wait=2s", p.url, cursor), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+node)
		req.Header.Set("X-Patchtree-Instance", "attacker")
		resp, err := httpClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		raw, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return false, "read the answer: " + err.Error()
		}
		st = resp.StatusCode
		if st != 409 {
			t.Fatalf("a second poller with north's credential: %d %s; want 409", st, raw)
		}
		return len(secAlerts(t, p, "second-poller")) > 0, "no second-poller alert yet"
	})
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	checkError(t, "a second poller with north's credential", st, m, raw, 409, "north")
	if a := secAlerts(t, p, "second-poller"); len(a) != 1 || a[0]["child"] != "north" || !strings.Contains(fmt.Sprint(a[0]["message"]), "north") {
		t.Errorf("GET /v1/alerts second-poller: %v; want one naming north", a)
	}
	requireDigestUnchanged(t, p, "a second poller", before)
	// The real child still gets its runs.
	hierReplicateNow(t, p, "north", "complete")
	if pl := hierGetStatus(t, s.child).Parent; pl == nil || !pl.Connected || pl.Error != "" {
		t.Errorf("north's parent link after the attack: %+v; want connected without error", pl)
	}
}

// testRotate: 'patchtree child rotate' revokes the child's credential at once (its link fails
// with 401) and prints a join token; the child restarted with it keeps its replica, cursor and
// compliance sequence; the rotation is audited.
func testRotate(t *testing.T) {
	s := secStartChildSite(t)
	p := s.parent
	first := s.postScans(t, 6)
	old := secNodeToken(t, s.child)
	cursor := hierGetStatus(t, s.child).Parent.Cursor
	out := catRunCLI(t, t.TempDir(), nil, "child", "rotate", "north", "--server", p.url, "--token", p.token)
	join := strings.TrimSpace(out.stdout)
	if out.code != 0 || join == "" {
		t.Fatalf("patchtree child rotate north: %+v; want the new join token", out)
	}
	st, m, raw := do(t, "GET", p.url+"/v1/hierarchy/v1/catalog?wait=1s", old, nil)
	checkError(t, "the old credential after rotate", st, m, raw, 401, "")
	waitFor(t, 20*time.Second, func() (bool, string) {
		pl := hierGetStatus(t, s.child).Parent
		return pl != nil && pl.State == "failed", fmt.Sprintf("north's parent link: %+v; want failed after the rotation", pl)
	})
	if c := hierChildren(t, p)["north"]; c.Joined {
		t.Errorf("north at the parent after rotate: %+v; want not joined until it uses the new token", c)
	}
	for i, a := range s.child.args {
		if a == "--join-token" {
			s.child.args[i+1] = join
		}
	}
	s.child.stop(t)
	s.child.restart(t)
	hierWaitReported(t, p, "north", []string{"*"})
	if pl := hierGetStatus(t, s.child).Parent; pl == nil || pl.Cursor != cursor {
		t.Errorf("north's parent link after the restart with the new token: %+v; want its cursor %d kept", pl, cursor)
	}
	runs := hierReplicateNow(t, p, "north", "")
	if r := runs["north"]; r.Mode != "differential" {
		t.Errorf("north's first run after the rotation: %v; want differential (it kept its replica)", r)
	}
	second := s.postScans(t, 3)
	if second.Seq != first.Seq+1 {
		t.Errorf("north's summary after the rotation: seq %d; want %d (its sequence kept)", second.Seq, first.Seq+1)
	}
	s.checkTruth(t, "after the rotation", second.Seq)
	var audit struct {
		Entries []map[string]any `json:"entries"`
	}
	doJSON(t, "GET", p.url+"/v1/audit", p.token, nil, 200, &audit)
	if !strings.Contains(fmt.Sprint(audit), "child.rotate") {
		t.Errorf("GET /v1/audit after rotate: no child.rotate entry in %v", audit)
	}
	if strings.Contains(fmt.Sprint(audit), join) {
		t.Error("the audit log holds the new join token")
	}
}

// testPermanentJoinError: a child started with a used join token stops its link within seconds:
// failed with the error in its status, one ERROR line in its log, no retry loop.
func testPermanentJoinError(t *testing.T) {
	parent := hierStartParent(t, "hq", []string{"*"})
	tok := hierEnrol(t, parent, "north")
	doJSON(t, "POST", parent.url+"/v1/hierarchy/v1/join", "", map[string]any{"name": "north", "join_token": tok}, 200, nil)
	child := startSite(t, siteOpts{Name: "north", Role: "child", Languages: []string{"de"},
		Extra: []string{"--parent", parent.url, "--join-token", tok}})
	var link *hierParentLink
	waitFor(t, 10*time.Second, func() (bool, string) {
		link = hierGetStatus(t, child).Parent
		return link != nil && link.State == "failed" && link.Error != "", fmt.Sprintf("north's parent link: %+v; want failed with an error", link)
	})
	out := catRunCLI(t, t.TempDir(), nil, "status", "--server", child.url, "--token", child.token, "-o", "json")
	if !strings.Contains(out.stdout, `"failed"`) {
		t.Errorf("patchtree status -o json: %s; want the parent link failed", out.stdout)
	}
	errCount := func() int { return len(fltLogContaining(child, "ERROR", "parent link stopped")) }
	// It does not spin: over a few seconds no further attempt, still one ERROR.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if n := errCount(); n > 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := errCount(); n != 1 {
		t.Errorf("north's log has %d ERROR lines for the stopped link; want exactly one:\n%s", n, tail(child.logPath, 20))
	}
	// The log was read: it holds the one ERROR line.
	if len(fltLogContaining(child, "joining the parent failed")) > 0 {
		t.Errorf("north retried a permanent join error:\n%s", tail(child.logPath, 20))
	}
	if child.exited() {
		t.Error("north exited; want it serving with its parent link stopped")
	}
	t.Logf("north's parent link: %+v", link)
}
