package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the fault-injection tests (faults_test.go). Every name carries the flt prefix so
// that it cannot collide with other test files of the package.

// fltRun is a replication run as GET /v1/replication/runs reports it.
type fltRun struct {
	ID           string    `json:"id"`
	Child        string    `json:"child"`
	Scope        string    `json:"scope"`
	Mode         string    `json:"mode"`
	Trigger      string    `json:"trigger"`
	From         uint64    `json:"from"`
	To           uint64    `json:"to"`
	Records      int       `json:"records"`
	Deletes      int       `json:"deletes"`
	BytesWire    int64     `json:"bytes_wire"`
	BytesRaw     int64     `json:"bytes_raw"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	DurationMS   int64     `json:"duration_ms"`
	Verified     bool      `json:"verified"`
	ParentDigest string    `json:"parent_digest"`
	ChildDigest  string    `json:"child_digest"`
	Sampled      int       `json:"sampled"`
	Error        string    `json:"error"`
}

func (r fltRun) String() string {
	s := fmt.Sprintf("run %s %s/%s from %d to %d, %d records %d deletes, %d wire bytes, %d ms, verified %v",
		r.ID, r.Mode, r.Trigger, r.From, r.To, r.Records, r.Deletes, r.BytesWire, r.DurationMS, r.Verified)
	if r.Error != "" {
		s += ", error " + r.Error
	}
	return s
}

// fltCounts are a catalog's bulletin and update counts.
type fltCounts struct {
	Bulletins int
	Updates   int
}

func (c fltCounts) String() string {
	return fmt.Sprintf("%d bulletins/%d updates", c.Bulletins, c.Updates)
}

// fltStartParent starts a parent site managing every language; fixedPort makes it listen on a
// port that stays the same across restarts (a child's --parent URL must stay valid).
func fltStartParent(t *testing.T, fixedPort bool) *proc {
	t.Helper()
	o := siteOpts{Name: "hq", Languages: []string{"*"}}
	if fixedPort {
		// serve's flags are pflag: the last --listen wins over the harness's 127.0.0.1:0.
		o.Extra = []string{"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	return startSite(t, o)
}

// fltImportMozilla imports the real Mozilla feed at the parent (skips when it is absent) and
// returns the feed's path.
func fltImportMozilla(t *testing.T, parent *proc) string {
	t.Helper()
	feed := catSharedData(t, "catalogs/mozilla-2005-2019.catalog.json")
	run, d := catImport(t, parent, map[string]any{"source": feed})
	catRequire(t, run, "succeeded")
	t.Logf("parent: imported the Mozilla feed in %v", d.Round(time.Millisecond))
	return feed
}

// fltEnrol enrols a child at the parent and returns its one-time join token.
func fltEnrol(t *testing.T, parent *proc, name string) string {
	t.Helper()
	var resp struct {
		Name      string `json:"name"`
		JoinToken string `json:"join_token"`
	}
	doJSON(t, "POST", parent.url+"/v1/children", parent.token, map[string]any{"name": name}, 201, &resp)
	if resp.JoinToken == "" || resp.Name != name {
		t.Fatalf("POST /v1/children %q: want the child's name and a join token, got %+v", name, resp)
	}
	return resp.JoinToken
}

// fltStartChild starts a child site that pulls from parentURL.
func fltStartChild(t *testing.T, name, parentURL, joinToken string, langs []string, extra ...string) *proc {
	t.Helper()
	return startSite(t, siteOpts{Name: name, Role: "child", Languages: langs,
		Extra: append([]string{"--parent", parentURL, "--join-token", joinToken}, extra...)})
}

// fltTryRuns lists the parent's runs for a child, newest first; errors are returned (the parent
// may be down).
func fltTryRuns(parent *proc, child string) ([]fltRun, error) {
	st, raw, err := tryDo(context.Background(), "GET", parent.url+"/v1/replication/runs?scope=catalog&child="+url.QueryEscape(child), parent.token, nil)
	if err != nil {
		return nil, err
	}
	if st != 200 {
		return nil, fmt.Errorf("GET /v1/replication/runs: status %d: %s", st, raw)
	}
	var resp struct {
		Runs []fltRun `json:"runs"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("GET /v1/replication/runs: decode %s: %v", raw, err)
	}
	return resp.Runs, nil
}

func fltRuns(t *testing.T, parent *proc, child string) []fltRun {
	t.Helper()
	runs, err := fltTryRuns(parent, child)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// fltLogRuns logs a child's run history (oldest first).
func fltLogRuns(t *testing.T, parent *proc, child string) {
	t.Helper()
	runs, err := fltTryRuns(parent, child)
	if err != nil {
		t.Logf("run history of %s unavailable: %v", child, err)
		return
	}
	t.Logf("run history of %s at the parent (%d runs, oldest first):", child, len(runs))
	for i := len(runs) - 1; i >= 0; i-- {
		t.Logf("  %s", runs[i])
	}
}

// fltTryCounts reads a site's catalog counts.
func fltTryCounts(siteURL, token string) (fltCounts, uint64, error) {
	st, raw, err := tryDo(context.Background(), "GET", siteURL+"/v1/catalog", token, nil)
	if err != nil {
		return fltCounts{}, 0, err
	}
	if st != 200 {
		return fltCounts{}, 0, fmt.Errorf("GET /v1/catalog: status %d: %s", st, raw)
	}
	var c catInfo
	if err := json.Unmarshal(raw, &c); err != nil {
		return fltCounts{}, 0, fmt.Errorf("GET /v1/catalog: decode %s: %v", raw, err)
	}
	return fltCounts{c.Bulletins, c.Updates}, c.Version, nil
}

// fltReplicateNow asks the parent for a run to one child without waiting.
func fltReplicateNow(t *testing.T, parent *proc, child, mode string) {
	t.Helper()
	doJSON(t, "POST", parent.url+"/v1/replication/now", parent.token,
		map[string]any{"child": child, "mode": mode}, 202, nil)
}

// fltReplicateWait asks the parent for a run to one child and waits for its result.
func fltReplicateWait(t *testing.T, parent *proc, child, mode string) (bool, fltRun, string) {
	t.Helper()
	var resp struct {
		Results []struct {
			Child    string  `json:"child"`
			Done     bool    `json:"done"`
			Verified bool    `json:"verified"`
			Run      *fltRun `json:"run"`
			Error    string  `json:"error"`
		} `json:"results"`
	}
	doJSON(t, "POST", parent.url+"/v1/replication/now", parent.token,
		map[string]any{"child": child, "mode": mode, "wait": true, "timeout": "60s"}, 200, &resp)
	if len(resp.Results) != 1 || resp.Results[0].Child != child {
		t.Fatalf("replicate now %s: want one result for %s, got %+v", mode, child, resp.Results)
	}
	r := resp.Results[0]
	if !r.Done || r.Run == nil {
		t.Fatalf("replicate now %s to %s: no run done: %s", mode, child, r.Error)
	}
	return r.Verified, *r.Run, r.Error
}

// fltConverged checks the convergence of a child once: its newest run verified with equal
// digests, and its catalog counts as expected. It returns that run.
func fltConverged(parent, child *proc, name string, want fltCounts) (fltRun, bool, string) {
	runs, err := fltTryRuns(parent, name)
	if err != nil {
		return fltRun{}, false, err.Error()
	}
	if len(runs) == 0 {
		return fltRun{}, false, "no run recorded for " + name + " yet"
	}
	r := runs[0]
	switch {
	case !r.Verified:
		return r, false, "newest run not verified: " + r.String()
	case r.ChildDigest == "" || r.ChildDigest != r.ParentDigest:
		return r, false, fmt.Sprintf("newest run %s: child digest %q != parent digest %q", r.ID, r.ChildDigest, r.ParentDigest)
	}
	got, _, err := fltTryCounts(child.url, child.token)
	if err != nil {
		return r, false, "child catalog: " + err.Error()
	}
	if got != want {
		return r, false, fmt.Sprintf("child catalog holds %s, want %s (newest run %s)", got, want, r)
	}
	return r, true, ""
}

// fltStagedRows reads the number of staged (uncommitted) batch rows from a site's state digest.
func fltStagedRows(siteURL, token string) (int, error) {
	st, raw, err := tryDo(context.Background(), "GET", siteURL+"/v1/digest", token, nil)
	if err != nil {
		return 0, err
	}
	if st != 200 {
		return 0, fmt.Errorf("GET /v1/digest: status %d: %s", st, raw)
	}
	var d catDigest
	if err := json.Unmarshal(raw, &d); err != nil {
		return 0, fmt.Errorf("GET /v1/digest: decode %s: %v", raw, err)
	}
	td, ok := d.Tables["staged"]
	if !ok {
		return 0, fmt.Errorf("GET /v1/digest: no table \"staged\" in %s", raw)
	}
	return td.Rows, nil
}

// fltCheckNoStagedLeftovers expects that nothing staged by an interrupted run stays behind in
// the child's state once it has converged.
func fltCheckNoStagedLeftovers(t *testing.T, child *proc, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		n, err := fltStagedRows(child.url, child.token)
		if err != nil {
			return false, err.Error()
		}
		if n != 0 {
			return false, fmt.Sprintf("%s still holds %d staged batch rows left behind by interrupted replication runs "+
				"(staged changes of a run that never commits should be dropped, as the importer drops an import's leftovers)", child.name, n)
		}
		return true, ""
	})
}

// ---- expected view, computed from the feed (independently of the server's own filter) ----

var fltFeedCache sync.Map // path -> *fltFeed

type fltFeed struct {
	bulletins []struct {
		ID        string   `json:"id"`
		UpdateIDs []string `json:"update_ids"`
	}
	updates map[string]string // id -> language
}

func fltLoadFeed(t *testing.T, path string) *fltFeed {
	t.Helper()
	if f, ok := fltFeedCache.Load(path); ok {
		return f.(*fltFeed)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bulletins []struct {
			ID        string   `json:"id"`
			UpdateIDs []string `json:"update_ids"`
		} `json:"bulletins"`
		Updates []struct {
			ID       string `json:"id"`
			Language string `json:"language"`
		} `json:"updates"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode feed %s: %v", path, err)
	}
	f := &fltFeed{bulletins: doc.Bulletins, updates: make(map[string]string, len(doc.Updates))}
	for _, u := range doc.Updates {
		f.updates[u.ID] = u.Language
	}
	fltFeedCache.Store(path, f)
	return f
}

// fltMatch is RFC 4647 basic filtering, case-insensitive; a language-neutral update (empty tag)
// belongs to every site.
func fltMatch(ranges []string, tag string) bool {
	if tag == "" {
		return true
	}
	tag = strings.ToLower(tag)
	for _, r := range ranges {
		r = strings.ToLower(r)
		if r == "*" || tag == r || strings.HasPrefix(tag, r+"-") {
			return true
		}
	}
	return false
}

// fltExpected is what a child managing ranges must hold of the feed: the matching updates and
// the bulletins with at least one of them. It also checks that the parent holds the whole feed
// (else the expectation would not be the parent's view).
func fltExpected(t *testing.T, parent *proc, feedPath string, ranges []string) fltCounts {
	t.Helper()
	f := fltLoadFeed(t, feedPath)
	if got, _, err := fltTryCounts(parent.url, parent.token); err != nil {
		t.Fatal(err)
	} else if want := (fltCounts{len(f.bulletins), len(f.updates)}); got != want {
		t.Fatalf("parent holds %s after importing the feed, the feed has %s: cannot derive the children's expected view", got, want)
	}
	var c fltCounts
	for _, lang := range f.updates {
		if fltMatch(ranges, lang) {
			c.Updates++
		}
	}
	for _, b := range f.bulletins {
		for _, id := range b.UpdateIDs {
			if lang, ok := f.updates[id]; ok && fltMatch(ranges, lang) {
				c.Bulletins++
				break
			}
		}
	}
	return c
}

// ---- server logs (log/slog text lines) ----

// fltLogEntry is one parsed log line: msg and its key=value attributes.
type fltLogEntry map[string]string

// fltParseLogLine parses a slog text line (key=value, values possibly quoted).
func fltParseLogLine(line string) fltLogEntry {
	e := fltLogEntry{}
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		key := line[i : i+eq]
		if strings.ContainsAny(key, " \"") {
			break // not a slog line
		}
		i += eq + 1
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				j = len(line) - 1
			}
			if uq, err := strconv.Unquote(line[i : j+1]); err == nil {
				val = uq
			} else {
				val = line[i+1 : j]
			}
			i = j + 1
		} else {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			val = line[i : i+j]
			i += j
		}
		e[key] = val
	}
	return e
}

// fltLog reads a node's log and returns its entries with the given msg.
func fltLog(p *proc, msg string) []fltLogEntry {
	raw, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil
	}
	var out []fltLogEntry
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "msg=") || !strings.Contains(line, msg) {
			continue
		}
		if e := fltParseLogLine(line); e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// fltLogContaining returns the log lines of a node that contain every one of substrs.
func fltLogContaining(p *proc, substrs ...string) []string {
	raw, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil
	}
	var out []string
next:
	for _, line := range strings.Split(string(raw), "\n") {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// fltApplied reports whether the child logged that it applied run id.
func fltApplied(child *proc, id string) bool {
	for _, e := range fltLog(child, "applied replication run") {
		if e["run"] == id {
			return true
		}
	}
	return false
}

// fltRunStarts lists the runs the parent started for a child, in log order.
func fltRunStarts(parent *proc, child string) []fltLogEntry {
	var out []fltLogEntry
	for _, e := range fltLog(parent, "replication run") {
		if e["child"] == child {
			out = append(out, e)
		}
	}
	return out
}

// fltWaitRunStart waits until the parent logs a run start for child beyond the first n.
func fltWaitRunStart(t *testing.T, parent *proc, child string, n int, timeout time.Duration) fltLogEntry {
	t.Helper()
	var got fltLogEntry
	deadline := time.Now().Add(timeout)
	for {
		if starts := fltRunStarts(parent, child); len(starts) > n {
			got = starts[n]
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the parent logged no new replication run for %s within %v (had %d)", child, timeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fltPullErrors lists the child's "pull from parent failed" errors.
func fltPullErrors(child *proc) []string {
	var out []string
	for _, e := range fltLog(child, "pull from parent failed; retrying") {
		out = append(out, e["error"])
	}
	return out
}

// fltLogLinkState logs what the parent says about the child and what the child says about its
// parent link, for a failure report.
func fltLogLinkState(t *testing.T, parent, child *proc) {
	t.Helper()
	if st, raw, err := tryDo(context.Background(), "GET", parent.url+"/v1/children/"+url.PathEscape(fltChild), parent.token, nil); err == nil {
		t.Logf("parent: GET /v1/children/%s: %d %s", fltChild, st, raw)
	}
	if st, raw, err := tryDo(context.Background(), "GET", child.url+"/v1/status", child.token, nil); err == nil {
		var s struct {
			Parent json.RawMessage `json:"parent"`
		}
		_ = json.Unmarshal(raw, &s)
		t.Logf("child: GET /v1/status: %d, parent link %s", st, s.Parent)
	}
	if c, v, err := fltTryCounts(child.url, child.token); err == nil {
		t.Logf("child: catalog %s at version %d", c, v)
	}
}
