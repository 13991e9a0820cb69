package hierarchy_test

// The replication benchmarks run real sites in process: one parent and ten children, each a
// durable single-server site (raft-boltdb in a temporary directory) wired as in patchtree serve
// and served over HTTP. This file is an external test package because the harness needs the API
// (patchtree/api), which imports this package.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/api"
	"patchtree/integration/shareddata"
	"patchtree/langalert"
	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/store"
)

const benchCatalog = "catalogs/mozilla-2005-2019.catalog.json"

// benchRanges are the children's managed ranges, one child each.
var benchRanges = []string{"en", "de,fr", "ja", "es,it", "pt,ru", "pl", "zh", "ko", "nl,sv", "*"}

// site is one in-process site server.
type site struct {
	name, admin string
	n           *node.Node
	srv         *httptest.Server
	wire        *wireTap // child sites: traffic on the link to the parent
}

// startSite starts a site wired as in patchtree serve; join makes it a child of that parent.
func startSite(tb testing.TB, name, role string, ranges []string, join *hierarchy.ChildConfig) (*site, error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, dir := &site{name: name}, tb.TempDir()
	s.srv = httptest.NewUnstartedServer(nil) // listening: node.New needs its URL, the API needs the node
	tb.Cleanup(s.srv.Close)
	imp := importer.New(importer.Config{Logger: logger})
	parent := hierarchy.NewParent(logger)
	loops := []node.LeaderLoop{{Name: "hierarchy-parent", Run: parent.LeaderLoop}}
	var child *hierarchy.Child
	if join != nil {
		s.wire = &wireTap{}
		cfg := *join
		cfg.Name, cfg.Logger, cfg.Client, cfg.Downstream = name, logger, s.wire.client(), parent
		child = hierarchy.NewChild(cfg)
		loops = append(loops, node.LeaderLoop{Name: "hierarchy-child", Run: child.LeaderLoop})
	}
	if role == node.RoleParent {
		loops = append(loops, node.LeaderLoop{Name: "catalog-import", Run: imp.LeaderLoop})
	}
	n, err := node.New(node.Config{Name: name, Role: role, DataDir: dir, RaftBind: "127.0.0.1:0", APIAddr: "http://" + s.srv.Listener.Addr().String(),
		Languages: ranges, Logger: logger, LeaderLoops: loops})
	if err != nil {
		return nil, err
	}
	s.n = n
	tb.Cleanup(func() { n.Shutdown() }) // before srv.Close
	imp.SetBackend(n)
	parent.SetBackend(n)
	opts := api.Options{Logger: logger, Importer: imp, Hierarchy: parent}
	if child != nil {
		child.SetBackend(n)
		opts.ParentLink = func() *hierarchy.ChildState { st := child.Status(); return &st }
		opts.Uplink = child
	}
	s.srv.Config.Handler = api.New(n, opts)
	s.srv.Start()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		tok, err := os.ReadFile(node.AdminTokenPath(dir))
		site, _ := n.State().Site(nil)
		if err == nil && site != nil && n.Ready() && runsAll(n.RunningLoops(), loops) {
			s.admin = strings.TrimSpace(string(tok))
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("site %s never became ready (loops %v)", name, n.RunningLoops())
		}
	}
}

func runsAll(running []string, loops []node.LeaderLoop) bool {
	return !slices.ContainsFunc(loops, func(l node.LeaderLoop) bool { return !slices.Contains(running, l.Name) })
}

// call sends an admin request to the site's API and decodes the answer into out.
func (s *site) call(tb testing.TB, method, path string, in, out any) {
	tb.Helper()
	var body io.Reader
	if in != nil {
		buf, _ := json.Marshal(in)
		body = bytes.NewReader(buf)
	}
	req, _ := http.NewRequest(method, s.srv.URL+path, body)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || (out != nil && json.Unmarshal(raw, out) != nil) {
		tb.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
}

// importFeed imports a native feed file at the parent through the API and waits for it.
func (s *site) importFeed(tb testing.TB, path string) {
	tb.Helper()
	var p importer.Progress
	s.call(tb, http.MethodPost, "/v1/catalog/import", importer.Request{Source: path}, &p)
	for deadline := time.Now().Add(5 * time.Minute); p.State == store.ImportRunning; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("import %s still running", p.ID)
		}
		s.call(tb, http.MethodGet, "/v1/catalog/imports/"+p.ID, nil, &p)
	}
	if p.State != store.ImportSucceeded {
		tb.Fatalf("import of %s: %s %s", path, p.State, p.Error)
	}
}

// hierarchyBench is a parent holding the Mozilla catalog and ten children that hold their views.
type hierarchyBench struct {
	parent   *site
	children []*site
	feed     string
	imported time.Duration // the parent's full import of the catalog: a baseline of the same run
}

func newHierarchyBench(b *testing.B) *hierarchyBench {
	b.Helper()
	feed := shareddata.Path(b, benchCatalog)
	parent, err := startSite(b, "hq", node.RoleParent, []string{"*"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Runs only when asked for (the default daily 23:00 could fire during a run).
	parent.call(b, http.MethodPut, "/v1/replication/rules", map[string]any{"catalog": "24h"}, nil)
	start := time.Now()
	parent.importFeed(b, feed)
	h := &hierarchyBench{parent: parent, children: make([]*site, len(benchRanges)), feed: feed, imported: time.Since(start)}
	errs := make([]error, len(benchRanges))
	var wg sync.WaitGroup // children start in parallel: each takes a Raft election
	for i, r := range benchRanges {
		name := fmt.Sprintf("child%02d", i)
		enrolled, err := parent.n.AddChild(store.Actor{}, name)
		ranges, err2 := langalert.ParseRanges([]string{r})
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		cfg := &hierarchy.ChildConfig{ParentURL: parent.srv.URL, JoinToken: enrolled.JoinToken, PollWait: 3 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.children[i], errs[i] = startSite(b, name, node.RoleChild, ranges, cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	h.waitInSync(b) // each child's first pull brings a complete run
	return h
}

// waitInSync polls GET /v1/children until every child reported its ranges and verified a run at
// the parent's catalog version.
func (h *hierarchyBench) waitInSync(b *testing.B) {
	b.Helper()
	var info store.CatalogInfo
	h.parent.call(b, http.MethodGet, "/v1/catalog", nil, &info)
	var st struct{ Children []hierarchy.ChildStatus }
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		h.parent.call(b, http.MethodGet, "/v1/children", nil, &st)
		ok := len(st.Children) == len(h.children)
		for _, c := range st.Children {
			ok = ok && c.RangesReported && c.Cursor == info.Version && c.LastRun != nil && c.LastRun.Verified
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("children not in sync at version %d: %+v", info.Version, st.Children)
		}
	}
}

// replicate runs POST /v1/replication/now with wait and returns each child's run as
// GET /v1/replication/runs reports it.
func (h *hierarchyBench) replicate(b *testing.B, mode string) map[string]*store.ReplicationRun {
	b.Helper()
	var resp struct {
		Results []struct {
			Child    string
			Done     bool
			Verified bool
			Run      *store.ReplicationRun
			Error    string
		}
	}
	h.parent.call(b, http.MethodPost, "/v1/replication/now", map[string]any{"wait": true, "mode": mode, "timeout": "10m"}, &resp)
	var list struct{ Runs []*store.ReplicationRun }
	h.parent.call(b, http.MethodGet, "/v1/replication/runs?limit=1000", nil, &list)
	out := map[string]*store.ReplicationRun{}
	for _, r := range resp.Results {
		i := slices.IndexFunc(list.Runs, func(x *store.ReplicationRun) bool { return r.Run != nil && x.ID == r.Run.ID })
		if !r.Done || !r.Verified || i < 0 || list.Runs[i].Mode != mode {
			b.Fatalf("child %s: done %v verified %v error %q run %+v", r.Child, r.Done, r.Verified, r.Error, r.Run)
		}
		out[r.Child] = list.Runs[i]
	}
	if len(out) != len(h.children) {
		b.Fatalf("%d runs for %d children", len(out), len(h.children))
	}
	return out
}

// wireTap counts a child's bytes on its connections to the parent and keeps each run's body.
type wireTap struct {
	down, up atomic.Int64
	runs     sync.Map     // run id -> the zstd body as received
	bad      atomic.Value // error: why the last body whose run id could not be read
}

// countConn counts the bytes of one connection to the parent.
type countConn struct {
	net.Conn
	t *wireTap
}

func (c countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.down.Add(int64(n))
	return n, err
}
func (c countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.up.Add(int64(n))
	return n, err
}

func (t *wireTap) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return countConn{c, t}, err
	}
	return &http.Client{Transport: tapTransport{tr, t}}
}

// tapTransport hands each run's body to a tapBody, which keeps a copy.
type tapTransport struct {
	http.RoundTripper
	t *wireTap
}

func (tt tapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tt.RoundTripper.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && strings.HasSuffix(req.URL.Path, "/catalog") {
		resp.Body = &tapBody{ReadCloser: resp.Body, t: tt.t}
	}
	return resp, err
}

type tapBody struct {
	io.ReadCloser
	t   *wireTap
	buf bytes.Buffer
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.buf.Write(p[:n])
	return n, err
}

// Close keeps the whole body, including what the child left unread.
func (b *tapBody) Close() error {
	io.Copy(&b.buf, b.ReadCloser)
	// The run id is the header's (a child of the compact revision gets no X-Patchtree-Run).
	if id, err := runIDOf(b.buf.Bytes()); err != nil {
		b.t.bad.Store(err)
	} else {
		b.t.runs.Store(id, b.buf.Bytes())
	}
	return b.ReadCloser.Close()
}

// runIDOf reads the run id from a run body's header.
func runIDOf(body []byte) (string, error) {
	dec, err := zstd.NewReader(bytes.NewReader(body), hierarchy.RunDecoderDict())
	if err != nil {
		return "", err
	}
	defer dec.Close()
	var h hierarchy.RunHeader
	if err := json.NewDecoder(dec).Decode(&h); err != nil {
		return "", fmt.Errorf("a tapped run's header: %w", err)
	}
	return h.RunID, nil
}

// runBody waits for the tapped body of a run (the child closes it after its ack).
func (t *wireTap) runBody(b *testing.B, id string) []byte {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if body, ok := t.runs.Load(id); ok {
			return body.([]byte)
		}
		if time.Now().After(deadline) {
			b.Fatalf("run %s was never tapped (last unreadable body: %v)", id, t.bad.Load())
		}
	}
}

// record is one row of a child's replica as one JSON line; key is "b/<id>" or "u/<id>".
type record struct {
	key  string
	line []byte
}

// viewRecords reads a child's replica back from its store, sorted by key. Raft indexes are the
// child's own bookkeeping, not replicated content, so they are zeroed.
func viewRecords(s *site) []record {
	v, _ := s.n.State().CatalogView(nil)
	var out []record
	add := func(key string, row any) bool {
		line, _ := json.Marshal(row)
		out = append(out, record{key, line})
		return true
	}
	v.EachBulletin(func(x *store.Bulletin) bool { c := *x; c.RaftIndex = store.RaftIndex{}; return add("b/"+c.ID, &c) })
	v.EachUpdate(func(x *store.Update) bool { c := *x; c.RaftIndex = store.RaftIndex{}; return add("u/"+c.ID, &c) })
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func joinLines(recs []record) (out []byte) {
	for _, r := range recs {
		out = append(append(out, r.line...), '\n')
	}
	return out
}

// zstdSize is the size of data compressed as the wire does (klauspost/compress, default level).
func zstdSize(data []byte) int {
	var buf bytes.Buffer
	enc, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	enc.Write(data)
	enc.Close()
	return buf.Len()
}

var raftIndexJSON = regexp.MustCompile(`,"create_index":\d+,"modify_index":\d+`)

// explainRun says where a run's bytes go: its records, and its size without the parent's Raft
// indexes (which a child does not need to hold the view).
func explainRun(body []byte) string {
	dec, err := zstd.NewReader(nil, hierarchy.RunDecoderDict())
	if err != nil {
		return fmt.Sprintf("%d B wire, no decoder: %v", len(body), err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(body, nil)
	if err != nil {
		return fmt.Sprintf("%d B wire, undecodable: %v", len(body), err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	var nb, nu, nd int
	var ub, bb []byte
	for _, l := range lines[1:] {
		var ch store.CatalogBatch
		json.Unmarshal(l, &ch)
		nb, nu, nd = nb+len(ch.Bulletins), nu+len(ch.Updates), nd+len(ch.DeleteBulletins)+len(ch.DeleteUpdates)
		for _, x := range ch.Bulletins {
			line, _ := json.Marshal(x)
			bb = append(append(bb, line...), '\n')
		}
		for _, x := range ch.Updates {
			line, _ := json.Marshal(x)
			ub = append(append(ub, line...), '\n')
		}
	}
	return fmt.Sprintf("%d B wire (%d B JSON): %d bulletins (%d B zstd alone), %d updates (%d B zstd alone), %d deletes; without Raft indexes %d B",
		len(body), len(raw), nb, zstdSize(bb), nu, zstdSize(ub), nd, zstdSize(raftIndexJSON.ReplaceAll(raw, nil)))
}

// detail prints one line of a benchmark's per-child figures to stdout (b.Log keeps only ten lines
// of a benchmark's output), from its first invocation only (b.N == 1; the figures hardly depend on
// b.N), so that they do not split the line of the final result.
func detail(b *testing.B, format string, args ...any) {
	if b.N != 1 {
		return
	}
	fmt.Printf("    %s: "+format+"\n", append([]any{b.Name()}, args...)...)
}

// spread reports the mean, least and greatest of per-child figures.
func spread(b *testing.B, xs []float64, unit string) {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	b.ReportMetric(sum/float64(len(xs)), unit+"-mean")
	b.ReportMetric(slices.Min(xs), unit+"-min")
	b.ReportMetric(slices.Max(xs), unit+"-max")
}

// BenchmarkReplicateComplete10 times a complete run to ten children holding the Mozilla catalog
// filtered by their ranges, and compares each child's wire bytes with its view, serialized and
// zstd-compressed.
func BenchmarkReplicateComplete10(b *testing.B) {
	h := newHierarchyBench(b)
	var runs map[string]*store.ReplicationRun
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runs = h.replicate(b, hierarchy.ModeComplete)
	}
	b.StopTimer()
	var total int64
	var ratios []float64
	for i, c := range h.children {
		run := runs[c.name]
		view := joinLines(viewRecords(c))
		base := zstdSize(view)
		total, ratios = total+run.BytesWire, append(ratios, float64(run.BytesWire)/float64(base))
		detail(b, "%s %-6s %6d records: wire %8d B (raw %9d B, %d ms); view JSON %9d B, zstd %8d B; ratio %.3f",
			c.name, benchRanges[i], run.Records, run.BytesWire, run.BytesRaw, run.DurationMS, len(view), base, ratios[i])
		if benchRanges[i] == "*" {
			detail(b, "%s run: %s", c.name, explainRun(c.wire.runBody(b, run.ID)))
		}
	}
	b.ReportMetric(float64(total), "wire-B/round")
	b.ReportMetric(h.imported.Seconds(), "import-s")
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(h.imported), "round/import")
	spread(b, ratios, "wire/view-zstd")
}

// writeRevisedFeed writes a copy of the feed where a fixed 1% of the updates (chosen with a
// fixed seed) have a new title; rev makes each call's titles differ from the previous call's.
func writeRevisedFeed(b *testing.B, src, dst string, rev int) map[string]bool {
	raw, err := os.ReadFile(src)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // sizes stay integers
	var feed map[string]any
	if err != nil || dec.Decode(&feed) != nil {
		b.Fatalf("read %s: %v", src, err)
	}
	updates := feed["updates"].([]any)
	rng := rand.New(rand.NewPCG(1, 1))
	changed := map[string]bool{}
	for _, i := range rng.Perm(len(updates))[:len(updates)/100] {
		u := updates[i].(map[string]any)
		u["title"] = fmt.Sprintf("%s (revision %d)", u["title"], rev)
		changed[u["id"].(string)] = true
	}
	out, _ := json.Marshal(feed)
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		b.Fatal(err)
	}
	return changed
}

// rsyncSent syncs newer over a copy of older with rsync -z and returns its "Total bytes sent"
// and "Total bytes received" (the receiver's block checksums). Between local paths rsync copies
// whole files unless delta forces its delta algorithm, as it would use over a network.
func rsyncSent(b *testing.B, older, newer []byte, delta bool) (sent, received int64) {
	dir := b.TempDir()
	src, dst := filepath.Join(dir, "new", "view.jsonl"), filepath.Join(dir, "old", "view.jsonl")
	for p, data := range map[string][]byte{src: newer, dst: older} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	args := []string{"-z", "--ignore-times", "--stats", src, dst}
	if delta {
		args = append([]string{"--no-whole-file"}, args...)
	}
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if got, _ := os.ReadFile(dst); err != nil || !bytes.Equal(got, newer) {
		b.Fatalf("rsync did not reproduce the new view (%v): %s", err, out)
	}
	num := func(label string) int64 {
		m := regexp.MustCompile(label + `: ([\d,]+)`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("rsync output lacks %q: %s", label, out)
		}
		n, _ := strconv.ParseInt(strings.ReplaceAll(string(m[1]), ",", ""), 10, 64)
		return n
	}
	return num("Total bytes sent"), num("Total bytes received")
}

// BenchmarkReplicateDifferential1pct re-imports the catalog with 1% of the updates retitled and
// times a differential run to the ten children. Each child's wire bytes are compared with (a) the
// changed records it receives, serialized and zstd-compressed, and (b) rsync -z of its whole
// serialized view from before to after.
func BenchmarkReplicateDifferential1pct(b *testing.B) {
	h := newHierarchyBench(b)
	feed := filepath.Join(b.TempDir(), "mozilla-revised.json")
	var runs map[string]*store.ReplicationRun
	var changed map[string]bool
	before := make([][]byte, len(h.children))
	var reimport time.Duration // the parent's import of the revised feed: a baseline of the same run
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j, c := range h.children {
			before[j] = joinLines(viewRecords(c))
		}
		changed = writeRevisedFeed(b, h.feed, feed, i+1)
		start := time.Now()
		h.parent.importFeed(b, feed)
		reimport += time.Since(start)
		b.StartTimer()
		runs = h.replicate(b, hierarchy.ModeDifferential)
	}
	b.StopTimer()
	_, rsyncErr := exec.LookPath("rsync")
	if rsyncErr != nil {
		b.Logf("rsync is not installed (%v): skipping the rsync comparison", rsyncErr)
	}
	var total int64
	var ratioA, ratioB, ratioBR, ratioW []float64
	for i, c := range h.children {
		run := runs[c.name]
		total += run.BytesWire
		wire := float64(run.BytesWire)
		recs := viewRecords(c)
		var mine []record
		for _, r := range recs {
			if changed[strings.TrimPrefix(r.key, "u/")] {
				mine = append(mine, r)
			}
		}
		base := zstdSize(joinLines(mine))
		ratioA = append(ratioA, wire/float64(base))
		msg := fmt.Sprintf("%s %-6s: run %d records %d deletes, wire %7d B; changed updates held %4d, zstd %6d B, wire/changed %.2f",
			c.name, benchRanges[i], run.Records, run.Deletes, run.BytesWire, len(mine), base, ratioA[i])
		if rsyncErr == nil {
			after := joinLines(recs)
			sent, recv := rsyncSent(b, before[i], after, true)
			whole, _ := rsyncSent(b, before[i], after, false)
			ratioB, ratioBR = append(ratioB, float64(sent)/wire), append(ratioBR, float64(sent+recv)/wire)
			ratioW = append(ratioW, float64(whole)/wire)
			msg += fmt.Sprintf("; rsync delta sent %6d B + received %5d B (sent/wire %.3f), whole file sent %7d B", sent, recv, ratioB[i], whole)
		}
		detail(b, "%s", msg)
		detail(b, "%s run: %s", c.name, explainRun(c.wire.runBody(b, run.ID)))
	}
	b.ReportMetric(float64(total), "wire-B/round")
	b.ReportMetric(reimport.Seconds()/float64(b.N), "reimport-s")
	b.ReportMetric(float64(b.Elapsed())/float64(reimport), "round/reimport")
	spread(b, ratioA, "wire/changed-zstd")
	if rsyncErr == nil {
		spread(b, ratioB, "rsync-sent/wire")
		spread(b, ratioBR, "rsync-sent+recv/wire")
		spread(b, ratioW, "rsync-wholefile/wire")
	}
}

// BenchmarkReplicateNoop times a differential run to ten children when nothing changed. Besides
// the run bodies (bytes_wire) it reports every byte on each child's connections to the parent
// during the round: requests, headers, the run and the acknowledgement.
func BenchmarkReplicateNoop(b *testing.B) {
	h := newHierarchyBench(b)
	k := len(h.children)
	wire, tcp, down, up := make([]float64, k), make([]float64, k), make([]int64, k), make([]int64, k)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, c := range h.children {
			down[j], up[j] = c.wire.down.Load(), c.wire.up.Load()
		}
		runs := h.replicate(b, hierarchy.ModeDifferential)
		for j, c := range h.children {
			r := runs[c.name]
			if r.Records+r.Deletes != 0 {
				b.Fatalf("%s: no-op run carried %d records and %d deletes", c.name, r.Records, r.Deletes)
			}
			down[j], up[j] = c.wire.down.Load()-down[j], c.wire.up.Load()-up[j]
			wire[j], tcp[j] = wire[j]+float64(r.BytesWire)/float64(b.N), tcp[j]+float64(down[j]+up[j])/float64(b.N)
		}
	}
	b.StopTimer()
	for j, c := range h.children {
		detail(b, "%s %-6s: run body %4.0f B; TCP to and from the parent during the round %6.0f B (last round: down %d, up %d)",
			c.name, benchRanges[j], wire[j], tcp[j], down[j], up[j])
	}
	spread(b, wire, "wire-B/child")
	spread(b, tcp, "tcp-B/child")
}
