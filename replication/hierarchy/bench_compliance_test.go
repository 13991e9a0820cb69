package hierarchy_test

// BenchmarkComplianceRollup: agents' scans ingested at ten children, their compliance summaries
// sent up, and the rollup reports read at the parent while the scans arrive. Every site runs in
// this one process (see bench_test.go), so CPU and memory figures are the whole tree's.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"patchtree/replication/compliance"
	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// The scale, configurable for machines where the full one does not fit:
// PATCHTREE_BENCH_COMPUTERS computers per child (default 10,000), each reporting
// PATCHTREE_BENCH_UPDATES updates of its child's catalog (default 1,000; all of them when the
// child's view holds fewer), posted PATCHTREE_BENCH_BATCH computers per request (default 200).
// PATCHTREE_BENCH_SUMMARY_EVERY is how often each child sends its summary during ingest
// (default 5s), after a first one at 20 % of its scans.
func complianceScale() (computers, updates, batch int, every time.Duration) {
	num := func(name string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
			return v
		}
		return def
	}
	every = 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PATCHTREE_BENCH_SUMMARY_EVERY")); err == nil && d > 0 {
		every = d
	}
	return num("PATCHTREE_BENCH_COMPUTERS", 10000), num("PATCHTREE_BENCH_UPDATES", 1000), num("PATCHTREE_BENCH_BATCH", 200), every
}

// complianceClient carries every request of the benchmark (connections kept alive per site).
var complianceClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// fetch sends one request with a bearer token and returns the status, the body and how long the
// whole exchange took (body read included). Safe from any goroutine: it never fails the test.
func fetch(method, u, token string, body []byte) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := complianceClient.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, out, time.Since(start), err
}

// scanGen writes NDJSON scans for one child: each computer reports k updates of the child's
// view (all of them when it holds fewer), a subset drawn by a generator seeded with the child
// and computer numbers, in states 70 % installed, 10 % required, 15 % not_required, 5 % unknown.
type scanGen struct {
	child int
	keys  [][]byte // `"<update id>":` for every update of the view, sorted by id
	k     int
	mark  []uint32 // Floyd's sampling: mark[j] == stamp when j is drawn
	stamp uint32
	at    string
}

var scanStates = [...]string{`"installed"`, `"required"`, `"not_required"`, `"unknown"`}

func scanState(r int) int {
	switch {
	case r < 70:
		return store.StateInstalled
	case r < 80:
		return store.StateRequired
	case r < 95:
		return store.StateNotRequired
	}
	return store.StateUnknown
}

func newScanGen(child int, ids []string, k int, at string) *scanGen {
	g := &scanGen{child: child, k: min(k, len(ids)), mark: make([]uint32, len(ids)), at: at}
	for _, id := range ids {
		key, _ := json.Marshal(id)
		g.keys = append(g.keys, append(key, ':'))
	}
	return g
}

// computer appends one computer's scan line.
func (g *scanGen) computer(buf []byte, name string, c int) []byte {
	rng := rand.New(rand.NewPCG(uint64(g.child+1), uint64(c+1)))
	buf = fmt.Appendf(buf, `{"computer_id":"%s-pc-%06d","scanned_at":"%s","results":{`, name, c, g.at)
	n := len(g.keys)
	g.stamp++
	for j := n - g.k; j < n; j++ { // Floyd: k distinct of n
		t := j
		if g.k < n {
			if x := rng.IntN(j + 1); g.mark[x] != g.stamp {
				t = x
			}
		}
		g.mark[t] = g.stamp
		if j > n-g.k {
			buf = append(buf, ',')
		}
		buf = append(append(buf, g.keys[t]...), scanStates[scanState(rng.IntN(100))]...)
	}
	return append(buf, "}}\n"...)
}

// summaryCall is one firing of a child's summary rule through replicate now.
type summaryCall struct {
	res  hierarchy.SummaryResult
	took time.Duration
}

// triggerSummary fires a child's compliance summary rule (replicate now, scope compliance).
func triggerSummary(c *site) (summaryCall, error) {
	status, body, took, err := fetch(http.MethodPost, c.srv.URL+"/v1/replication/now", c.admin, []byte(`{"scope":"compliance"}`))
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", status, body)
	}
	var out struct{ Summary hierarchy.SummaryResult }
	if err == nil {
		err = json.Unmarshal(body, &out)
	}
	if err == nil && !out.Summary.Sent && out.Summary.Reason != "unchanged" {
		err = fmt.Errorf("summary not accepted: %+v", out.Summary)
	}
	return summaryCall{out.Summary, took}, err
}

// rollupQuery is one of the reports the benchmark reads at the parent.
type rollupQuery struct {
	name, path string
	lat        []float64 // ms
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.999999)
	return sorted[max(0, min(len(sorted), i)-1)]
}

// procStatusKiB reads a field of /proc/self/status (VmHWM: peak resident set; VmRSS: now).
func procStatusKiB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	return 0
}

func liveHeapMiB() float64 {
	runtime.GC()
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(m)
	return float64(m[0].Value.Uint64()) / (1 << 20)
}

// childIngest is what one child's ingest did.
type childIngest struct {
	updates   int // updates in the child's view
	perComp   int // updates each computer reports
	results   int64
	reqBytes  int64
	took      time.Duration
	gen       time.Duration // generating the NDJSON (client side, inside took)
	post      time.Duration // the requests (inside took)
	postMax   time.Duration
	postFirst time.Duration // the first request (it interns the update ids scans name)
	summaries []summaryCall // accepted during ingest
	firstOK   atomic.Bool   // the first summary during ingest reached the parent
	refused   int           // summaries during ingest that the child could not deliver
	sumErr    error         // the last of those errors
	err       error         // of the ingest
}

// BenchmarkComplianceRollup ingests scans at ten children concurrently (computers × updates as
// complianceScale says), reads the three rollup reports at the parent in a loop meanwhile
// (against GET /v1/health as the baseline), then sends every child's summary and times until
// the parent's GET /v1/compliance shows every computer of every child.
func BenchmarkComplianceRollup(b *testing.B) {
	computers, perComputer, batch, every := complianceScale()
	h := newHierarchyBench(b)
	parent, k := h.parent, len(h.children)

	// Per child: an agent token and the updates of its view.
	agents := make([]string, k)
	gens := make([]*scanGen, k)
	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	stats := make([]*childIngest, k)
	for i, c := range h.children {
		var tok struct{ Token string }
		c.call(b, http.MethodPost, "/v1/tokens", map[string]any{"role": "agent", "name": "bench-agents"}, &tok)
		agents[i] = tok.Token
		v, err := c.n.State().CatalogView(nil)
		if err != nil {
			b.Fatal(err)
		}
		var ids []string
		v.EachUpdate(func(u *store.Update) bool { ids = append(ids, u.ID); return true })
		slices.Sort(ids)
		gens[i] = newScanGen(i, ids, perComputer, at)
		stats[i] = &childIngest{updates: len(ids), perComp: gens[i].k}
		if gens[i].k < perComputer {
			detail(b, "%s %-6s: its view holds %d updates (< %d): each computer reports all of them", c.name, benchRanges[i], len(ids), perComputer)
		}
	}

	// The bulletin of the one-bulletin query: in every child's view, with the most languages.
	bulletin, bestTags := "", -1
	pv, _ := parent.n.State().CatalogView(nil)
	pv.EachBulletin(func(x *store.Bulletin) bool {
		for _, c := range h.children {
			if cv, _ := c.n.State().CatalogView(nil); cv.Bulletin(x.ID) == nil {
				return true
			}
		}
		tags := map[string]bool{}
		for _, t := range x.UpdateTags {
			tags[t] = true
		}
		if len(tags) > bestTags || (len(tags) == bestTags && x.ID < bulletin) {
			bulletin, bestTags = x.ID, len(tags)
		}
		return true
	})
	if bulletin == "" {
		b.Fatal("no bulletin is in every child's view")
	}
	queries := []*rollupQuery{
		{name: "health", path: "/v1/health"},
		{name: "bulletin", path: "/v1/compliance/bulletins?bulletin=" + url.QueryEscape(bulletin)},
		{name: "site"}, // the largest child whose first summary reached the parent
		{name: "full", path: "/v1/compliance"},
	}
	setupHWM, setupHeap := procStatusKiB("VmHWM"), liveHeapMiB()
	detail(b, "setup: parent import %.2f s; one-bulletin query %s; peak RSS after setup %.0f MiB, live heap %.0f MiB",
		h.imported.Seconds(), bulletin, setupHWM/1024, setupHeap)

	// The query loop: from the moment every child's first summary is at the parent until ingest
	// ends; each round reads the baseline and the three reports (in rotating order), then pauses
	// 20 ms.
	var firstSummaries sync.WaitGroup
	firstSummaries.Add(k)
	ingestDone := make(chan struct{})
	var queryErr atomic.Value
	queryDone := make(chan struct{})
	runQueries := func(stop <-chan struct{}, rounds int) {
		for r := 0; rounds <= 0 || r < rounds; r++ {
			select {
			case <-stop:
				return
			default:
			}
			for j := range queries { // each round starts with the next query: none is always first after the pause
				q := queries[(r+j)%len(queries)]
				status, body, took, err := fetch(http.MethodGet, parent.srv.URL+q.path, parent.admin, nil)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("HTTP %d: %.200s", status, body)
				}
				if err != nil {
					queryErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", q.path, err))
					return
				}
				q.lat = append(q.lat, float64(took)/float64(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	gcBefore := complianceGCs()

	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(queryDone)
		firstSummaries.Wait()
		big := -1
		for i, st := range stats {
			if st.firstOK.Load() && (big < 0 || st.updates > stats[big].updates) {
				big = i
			}
		}
		if big < 0 {
			queryErr.CompareAndSwap(nil, fmt.Errorf("no child's first summary reached the parent"))
			return
		}
		queries[2].path = "/v1/compliance/bulletins?site=" + h.children[big].name
		runQueries(ingestDone, 0)
	}()
	var wg sync.WaitGroup
	var sumWG sync.WaitGroup
	for i, c := range h.children {
		st, g := stats[i], gens[i]
		reached := make(chan struct{}) // 20 % of the child's scans are in
		done := make(chan struct{})    // the child's ingest is over
		sumWG.Add(1)
		go func() { // the child's summaries during its ingest
			defer sumWG.Done()
			first := true
			select {
			case <-reached:
			case <-done:
			}
			for {
				call, err := triggerSummary(c)
				if err != nil {
					st.refused, st.sumErr = st.refused+1, err
				} else {
					st.summaries = append(st.summaries, call)
				}
				if first {
					st.firstOK.Store(err == nil)
					firstSummaries.Done()
					first = false
				}
				select {
				case <-done:
					return
				case <-time.After(every):
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			t0 := time.Now()
			var buf []byte
			signalled := false
			for from := 0; from < computers; from += batch {
				g0 := time.Now()
				buf = buf[:0]
				to := min(from+batch, computers)
				for pc := from; pc < to; pc++ {
					buf = g.computer(buf, c.name, pc)
				}
				st.gen += time.Since(g0)
				status, body, took, err := fetch(http.MethodPost, c.srv.URL+"/v1/scans?format=ndjson", agents[i], buf)
				st.post += took
				if from == 0 {
					st.postFirst = took
				}
				st.postMax = max(st.postMax, took)
				st.reqBytes += int64(len(buf))
				var resp struct {
					Received, Stored, Rejected int
					ResultsStored              int64 `json:"results_stored"`
				}
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("HTTP %d: %.300s", status, body)
				}
				if err == nil {
					err = json.Unmarshal(body, &resp)
				}
				if err == nil && (resp.Stored != to-from || resp.Rejected != 0 || resp.ResultsStored != int64((to-from)*g.k)) {
					err = fmt.Errorf("scans %d..%d: %s", from, to, body)
				}
				if err != nil {
					st.err = err
					if !signalled {
						close(reached)
					}
					return
				}
				st.results += resp.ResultsStored
				if !signalled && to*5 >= computers {
					close(reached)
					signalled = true
				}
			}
			st.took = time.Since(t0)
		}()
	}
	wg.Wait()
	ingest := time.Since(start)
	close(ingestDone)
	sumWG.Wait()
	<-queryDone
	for i, st := range stats {
		if st.err != nil {
			b.Fatalf("%s: %v", h.children[i].name, st.err)
		}
	}
	if err, _ := queryErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	during := make([][]float64, len(queries))
	for j, q := range queries {
		during[j] = slices.Clone(q.lat)
		slices.Sort(during[j])
		q.lat = nil
	}

	// Every child's summary of all its scans, then until the parent shows all of them.
	t0 := time.Now()
	final := make([]summaryCall, k)
	errs := make([]error, k)
	for i, c := range h.children {
		wg.Add(1)
		go func() { defer wg.Done(); final[i], errs[i] = triggerSummary(c) }()
	}
	wg.Wait()
	// A child whose summary the parent refuses is reported, not fatal: the rest is measured.
	accepted, refused := 0, []string{}
	for i, err := range errs {
		if err != nil {
			refused = append(refused, h.children[i].name)
			detail(b, "%s %-6s: final summary NOT delivered: %v", h.children[i].name, benchRanges[i], err)
		} else {
			accepted++
		}
	}
	var overview compliance.Overview
	for polls := 0; ; polls++ {
		status, body, _, err := fetch(http.MethodGet, parent.srv.URL+"/v1/compliance", parent.admin, nil)
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &overview) != nil {
			b.Fatalf("GET /v1/compliance: %d %v %.200s", status, err, body)
		}
		n := 0 // children showing every computer (a refused child may show an older summary)
		for _, s := range overview.Sites {
			if !s.Local && !slices.Contains(refused, s.Site) && s.Computers == int64(computers) {
				n++
			}
		}
		all := n == accepted
		if all {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("parent never showed every computer: %+v", overview.Totals)
		}
		time.Sleep(5 * time.Millisecond)
	}
	propagate := time.Since(t0)
	for _, s := range overview.Sites {
		if slices.Contains(refused, s.Site) {
			detail(b, "%s at the parent: an older summary, seq %d, %d computers, as of %s", s.Site, s.Seq, s.Computers, s.AsOf.Format(time.RFC3339))
		}
	}
	b.StopTimer()
	gcDuring := complianceGCs() - gcBefore
	peakHWM := procStatusKiB("VmHWM")

	// Summary runs as the parent recorded them: the newest per child.
	var list struct{ Runs []*store.ReplicationRun }
	parent.call(b, http.MethodGet, "/v1/replication/runs?limit=1000000", nil, &list)
	runs := map[string]*store.ReplicationRun{}
	nsum := map[string]int{}
	for _, r := range list.Runs {
		if r.Scope != hierarchy.ScopeCompliance {
			continue
		}
		nsum[r.Child]++
		if cur := runs[r.Child]; cur == nil || r.To > cur.To {
			runs[r.Child] = r
		}
	}

	// The same queries once ingest is over and the parent holds everything: 200 rounds.
	runQueries(nil, 200)
	if err, _ := queryErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	after := make([][]float64, len(queries))
	for j, q := range queries {
		after[j] = slices.Clone(q.lat)
		slices.Sort(after[j])
	}
	var rows struct{ Bulletins []compliance.BulletinRow }
	parent.call(b, http.MethodGet, queries[1].path, nil, &rows)
	if len(rows.Bulletins) != 1 || rows.Bulletins[0].Sites < accepted {
		b.Fatalf("one-bulletin report: %+v", rows.Bulletins)
	}

	var results, reqBytes int64
	var wire, raw []float64
	var sent, notSent int
	for i, c := range h.children {
		st, run := stats[i], runs[c.name]
		results, reqBytes = results+st.results, reqBytes+st.reqBytes
		sent, notSent = sent+len(st.summaries), notSent+st.refused
		var took []float64
		for _, s := range st.summaries {
			took = append(took, float64(s.took)/float64(time.Millisecond))
		}
		slices.Sort(took)
		// The child's summary as the rule builds it, and what decoding it costs the parent's
		// reports (once per new summary: the first report after it arrives pays it).
		sum, err := compliance.Build(c.n.State(), c.name, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(sum)
		d0 := time.Now()
		compliance.Decode(body)
		decode := time.Since(d0)
		line := fmt.Sprintf("%s %-6s: view %5d updates, %d per computer; %d computers, %d results in %.1f s (%.0f computers/s, %.0f results/s; "+
			"generating %.1f s, requests %.1f s, first request %.0f ms, slowest %.0f ms), %.0f MB NDJSON; %d summaries during ingest (replicate now p50 %.0f ms, max %.0f ms), %d not delivered; "+
			"summary %d bulletins, decoding it %.1f ms; ",
			c.name, benchRanges[i], st.updates, st.perComp, computers, st.results, st.took.Seconds(),
			float64(computers)/st.took.Seconds(), float64(st.results)/st.took.Seconds(), st.gen.Seconds(), st.post.Seconds(),
			float64(st.postFirst)/float64(time.Millisecond), float64(st.postMax)/float64(time.Millisecond), float64(st.reqBytes)/1e6,
			len(st.summaries), pct(took, .5), pct(took, 1), st.refused, len(sum.Bulletins), float64(decode)/float64(time.Millisecond))
		if errs[i] != nil {
			detail(b, "%sfinal summary not delivered: %d bulletins, %d B raw, %d B zstd; %d summary runs at the parent",
				line, len(sum.Bulletins), len(body), zstdSize(body), nsum[c.name])
			continue
		}
		// A final summary whose numbers did not change since the last one sent (small scales
		// finish ingest between two summaries) goes up as an "unchanged" report of that
		// sequence: the run at the parent is the earlier full summary's, with its own bytes.
		sentInFull := final[i].res.Reason != "unchanged"
		if run == nil || run.To != final[i].res.Seq || (sentInFull && run.BytesWire != final[i].res.BytesWire) {
			b.Fatalf("%s: newest summary run at the parent %+v, the child's last summary %+v", c.name, run, final[i].res)
		}
		wire, raw = append(wire, float64(run.BytesWire)), append(raw, float64(run.BytesRaw))
		detail(b, "%sfinal summary: %d bulletins, %d B wire, %d B raw (%.1f %%), replicate now %.0f ms; %d summary runs at the parent",
			line, run.Records, run.BytesWire, run.BytesRaw, 100*float64(run.BytesWire)/float64(run.BytesRaw),
			float64(final[i].took)/float64(time.Millisecond), nsum[c.name])
	}
	for j, q := range queries {
		detail(b, "%-8s %-60s during ingest: %4d samples, p50 %7.2f ms, p99 %7.2f ms, max %7.2f ms; after: p50 %6.2f ms, p99 %6.2f ms",
			q.name, q.path, len(during[j]), pct(during[j], .5), pct(during[j], .99), pct(during[j], 1), pct(after[j], .5), pct(after[j], .99))
	}
	heap := liveHeapMiB()
	detail(b, "one-site query: %s", queries[2].path)
	detail(b, "ingest %.1f s, %d results (%.0f MB NDJSON); parent shows all %.2f s after the final summaries were asked for; "+
		"%d GCs; peak RSS %.0f MiB (after setup %.0f MiB); live heap afterwards %.0f MiB (after setup %.0f MiB); parent totals: %d sites, %d computers, %d compliant, cells %v",
		ingest.Seconds(), results, float64(reqBytes)/1e6, propagate.Seconds(), gcDuring, peakHWM/1024, setupHWM/1024, heap, setupHeap,
		overview.Totals.Sites, overview.Totals.Computers, overview.Totals.Compliant, overview.Totals.Cells)

	b.ReportMetric(float64(computers), "computers/child")
	b.ReportMetric(ingest.Seconds(), "ingest-s")
	b.ReportMetric(float64(computers*k)/ingest.Seconds(), "computers/s")
	b.ReportMetric(float64(results)/ingest.Seconds(), "results/s")
	b.ReportMetric(propagate.Seconds(), "to-parent-s")
	spread(b, wire, "summary-wire-B")
	b.ReportMetric(slices.Max(raw), "summary-raw-B-max")
	b.ReportMetric(float64(sent), "summaries-during-ingest")
	b.ReportMetric(float64(notSent), "summaries-not-delivered")
	b.ReportMetric(float64(len(refused)), "children-missing-at-parent")
	base := pct(during[0], .5)
	for j, q := range queries {
		b.ReportMetric(pct(during[j], .5), q.name+"-p50-ms")
		b.ReportMetric(pct(during[j], .99), q.name+"-p99-ms")
		if j > 0 && base > 0 {
			b.ReportMetric(pct(during[j], .5)/base, q.name+"-p50/health")
		}
	}
	b.ReportMetric(peakHWM/1024, "peak-RSS-MiB")
}

func complianceGCs() uint64 {
	m := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}
