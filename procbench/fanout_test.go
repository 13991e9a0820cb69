package procbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/replication/feedgen"
	"patchtree/replication/hierarchy"
)

// The fan-out benchmarks: one real `patchtree serve` parent managing `*`, and N light children
// (client_test.go) cycling through ten distinct language filters, as replication/hierarchy's
// in-process benchmarks use them. A round is POST /v1/replication/now for the catalog, then
// every child pulls its run, applies it, checks its digest and acknowledges it; the parent's
// CPU time and peak RSS come from /proc.

// fanoutFilters are the ten distinct filters the children cycle through.
var fanoutFilters = [][]string{{"en"}, {"de", "fr"}, {"ja"}, {"es", "it"}, {"pt", "ru"}, {"pl"}, {"zh"}, {"ko"}, {"nl", "sv"}, {"*"}}

// fanoutCounts are the numbers of children measured: 10, 50, 100 and 200, or the
// comma-separated list in PATCHTREE_BENCH_CHILDREN (a shorter benchmark; the first count is
// the ratios' baseline).
func fanoutCounts(b *testing.B) []int {
	env := os.Getenv("PATCHTREE_BENCH_CHILDREN")
	if env == "" {
		return []int{10, 50, 100, 200}
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("PATCHTREE_BENCH_CHILDREN=%q: %q is not a count of children", env, f)
		}
		out = append(out, n)
	}
	return out
}

// fanout is a parent and its light children.
type fanout struct {
	parent     *Server
	children   []*lightChild
	digestOnly bool
	feed       string
	// viewZstd is, per filter, the zstd size of the view's records (one JSON line each, Raft
	// indexes zeroed, in the run's order), from the first complete run of the filter.
	viewZstd map[string]int
}

func filterName(r []string) string { return strings.Join(r, ",") }

// newFanout starts the parent and imports feed.
func newFanout(b *testing.B, feed string, digestOnly bool) *fanout {
	b.Helper()
	p := StartServer(b, ServerOpts{Name: "hq", Languages: []string{"*"}, Extra: []string{"--log-level", "info",
		"--http-max-conns-per-client", "0", "--join-burst", "1000", "--join-rate", "0"}})
	ctx := context.Background()
	// Runs only when asked for (the default daily 23:00 could fire during a round).
	if _, err := p.Do(ctx, "PUT", "/v1/replication/rules", map[string]any{"catalog": "24h"}, nil); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	run := p.Import(b, map[string]any{"source": feed}, 20*time.Minute)
	ps := p.Stats(b)
	fmt.Printf("    parent: imported %s in %v (version %d); CPU %v, RSS %.0f MiB, peak %.0f MiB\n",
		filepath.Base(feed), time.Since(start).Round(time.Millisecond), run.CatalogVersion, ps.CPU, MiB(ps.RSS), MiB(ps.PeakRSS))
	return &fanout{parent: p, digestOnly: digestOnly, feed: feed, viewZstd: map[string]int{}}
}

// grow enrols children up to n and brings each new one in sync (its first, complete run).
func (f *fanout) grow(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	var fresh []*lightChild
	for i := len(f.children); i < n; i++ {
		c := newLightChild(f.parent, fmt.Sprintf("c%03d", i), fanoutFilters[i%len(fanoutFilters)], f.digestOnly)
		f.children = append(f.children, c)
		fresh = append(fresh, c)
	}
	if err := each(fresh, 8, func(c *lightChild) error {
		if err := c.enrol(ctx); err != nil {
			return err
		}
		c.keepRecords = !f.digestOnly && f.viewZstd[filterName(c.ranges)] == 0
		res, err := c.pullApplyAck(ctx, 30*time.Second)
		if err == nil && res == nil {
			err = fmt.Errorf("child %s: no first run within 30 s", c.name)
		}
		if err == nil && res.header.Mode != hierarchy.ModeComplete {
			err = fmt.Errorf("child %s: first run is %s, want complete", c.name, res.header.Mode)
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	for _, c := range fresh {
		if c.keepRecords {
			f.viewZstd[filterName(c.ranges)] = zstdSize(joinLines(c.records))
			c.keepRecords, c.records = false, nil
		}
	}
}

// each runs fn for every child, at most par at a time, and returns the first error.
func each(children []*lightChild, par int, fn func(*lightChild) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	work := make(chan *lightChild)
	for range min(par, max(len(children), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := fn(c); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range children {
		work <- c
	}
	close(work)
	wg.Wait()
	return first
}

// roundStats is one round to every child.
type roundStats struct {
	cpu     time.Duration // parent CPU during the round
	wall    time.Duration
	peakRSS int64 // parent peak RSS during the round (since the start if it cannot be reset)
	runs    []*runResult
	tcp     []int64 // per child: bytes on its connections during the round, both ways
}

// noopRounds is how many no-op rounds noopRound measures. One round of 200 no-op pulls is a
// few dozen ticks of the parent's CPU clock, and a garbage collection that lands in it (the
// parent holds 0.7 GiB at 500k) tripled it in one run: 2.95 ms per child, against 0.90 and
// 1.10 in the runs before and after.
const noopRounds = 3

// noopRound runs noopRounds no-op rounds (differential, nothing changed), checks that every
// run carried nothing, and returns the round of median parent CPU.
func (f *fanout) noopRound(b *testing.B) roundStats {
	b.Helper()
	var rounds []roundStats
	for i := 0; i < noopRounds; i++ {
		st := f.round(b, hierarchy.ModeDifferential, false)
		for j := range f.children {
			if r := st.runs[j].header; r.Records+r.Deletes != 0 {
				b.Fatalf("no-op run to %s carried %d records, %d deletes", f.children[j].name, r.Records, r.Deletes)
			}
		}
		rounds = append(rounds, st)
	}
	sort.Slice(rounds, func(i, j int) bool { return rounds[i].cpu < rounds[j].cpu })
	cpus := make([]string, len(rounds))
	for i, r := range rounds {
		cpus[i] = fmt.Sprintf("%.2f", r.cpu.Seconds()*1000/float64(len(f.children)))
	}
	fmt.Printf("    no-op rounds: %s ms parent CPU per child\n", strings.Join(cpus, " / "))
	return rounds[len(rounds)/2]
}

// settle waits until the parent is idle (under one clock tick of CPU in 300 ms, at most 60 s),
// so that a round's CPU is not an import's aftermath (its garbage collection, a snapshot).
func (f *fanout) settle(b *testing.B) {
	b.Helper()
	prev := f.parent.Stats(b).CPU
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		cur := f.parent.Stats(b).CPU
		if cur-prev <= time.Second/clockTick {
			return
		}
		prev = cur
	}
	b.Logf("the parent never went idle for 300 ms within 60 s; measuring anyway")
}

// round asks for a catalog run of mode to every child and waits until each applied and
// acknowledged one; keep asks the children to keep the run's records.
func (f *fanout) round(b *testing.B, mode string, keep bool) roundStats {
	b.Helper()
	ctx := context.Background()
	f.settle(b)
	resetErr := f.parent.ResetPeakRSS()
	before := f.parent.Stats(b)
	tcp0 := make([]int64, len(f.children))
	for i, c := range f.children {
		tcp0[i] = c.wireBytes()
		c.keepRecords = keep
	}
	start := time.Now()
	if _, err := f.parent.Do(ctx, "POST", "/v1/replication/now", map[string]any{"scope": "catalog", "mode": mode}, nil); err != nil {
		b.Fatal(err)
	}
	st := roundStats{runs: make([]*runResult, len(f.children)), tcp: make([]int64, len(f.children))}
	idx := map[*lightChild]int{}
	for i, c := range f.children {
		idx[c] = i
	}
	if err := each(f.children, 16, func(c *lightChild) error {
		res, err := c.pullApplyAck(ctx, 30*time.Second)
		switch {
		case err != nil:
			return err
		case res == nil:
			return fmt.Errorf("child %s: no run within 30 s of the request", c.name)
		case res.header.Mode != mode:
			return fmt.Errorf("child %s: a %s run (%s, from %d to %d), want %s; the parent's log of the child:\n%s",
				c.name, res.header.Mode, res.header.Trigger, res.header.From, res.header.To, mode, f.parent.LogLines(c.name, 20))
		}
		st.runs[idx[c]] = res
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	st.wall = time.Since(start)
	after := f.parent.Stats(b)
	st.cpu = after.CPU - before.CPU
	st.peakRSS = after.PeakRSS
	if resetErr != nil {
		b.Logf("peak RSS covers the whole process: %v", resetErr)
	}
	for i, c := range f.children {
		st.tcp[i] = c.wireBytes() - tcp0[i]
	}
	return st
}

func joinLines(lines [][]byte) []byte {
	var out []byte
	for _, l := range lines {
		out = append(append(out, l...), '\n')
	}
	return out
}

// zstdSize is data compressed as a run was before this benchmark existed: klauspost/compress
// at its default level and window.
func zstdSize(data []byte) int {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Sprintf("zstd: %v", err))
	}
	if _, err := enc.Write(data); err != nil {
		panic(fmt.Sprintf("zstd: %v", err))
	}
	if err := enc.Close(); err != nil {
		panic(fmt.Sprintf("zstd: %v", err))
	}
	return buf.Len()
}

// spread reports the mean and greatest of per-child figures.
func spread(b *testing.B, xs []float64, unit string) {
	if len(xs) == 0 {
		return
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	b.ReportMetric(sum/float64(len(xs)), unit+"-mean")
	b.ReportMetric(slices.Max(xs), unit+"-max")
}

// writeRevisedFeed writes a copy of the feed where a fixed 1% of the updates (chosen with a
// fixed seed) have a new title; rev makes each call's titles differ from the previous call's.
func writeRevisedFeed(b *testing.B, src, dst string, rev int) int {
	b.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // sizes stay integers
	var feed map[string]any
	if err := dec.Decode(&feed); err != nil {
		b.Fatalf("read %s: %v", src, err)
	}
	updates := feed["updates"].([]any)
	rng := rand.New(rand.NewPCG(1, 1))
	n := len(updates) / 100
	for _, i := range rng.Perm(len(updates))[:n] {
		u := updates[i].(map[string]any)
		u["title"] = fmt.Sprintf("%s (revision %d)", u["title"], rev)
	}
	out, err := json.Marshal(feed)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkFanoutMozilla: the Mozilla catalog (40,693 updates) to 10, 50, 100 and 200 children.
// Per count: complete rounds, each after a new catalog version (parent CPU per round, and its
// ratio to the first count; parent peak RSS; each child's wire bytes against its view's zstd,
// the view as of the child's first run: a revision retitles 1 % of the updates, which moves
// the ratio by well under 0.1 %), one no-op round (parent CPU and every
// byte on the child's connections, per child) and one differential round after a re-import
// with 1 % of the updates retitled (wire against the changed records' zstd; parent CPU per
// child against the benchmark's own CPU to encode those records).
func BenchmarkFanoutMozilla(b *testing.B) {
	feed := sharedData(b, "catalogs/mozilla-2005-2019.catalog.json")
	f := newFanout(b, feed, false)
	revised := filepath.Join(b.TempDir(), "revised.catalog.json")
	var cpu10 float64
	rev := 0
	counts := fanoutCounts(b)
	for _, n := range counts {
		f.grow(b, n)
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			var cpu, wall float64
			var peak int64
			var ratios []float64
			for i := 0; i < b.N; i++ {
				// A new catalog version first: the round builds each filter's section (the cache
				// holds the previous version's), as when a new catalog reaches the children.
				rev++
				writeRevisedFeed(b, feed, revised, rev)
				f.parent.Import(b, map[string]any{"source": revised}, 10*time.Minute)
				st := f.round(b, hierarchy.ModeComplete, false)
				cpu += st.cpu.Seconds() / float64(b.N)
				wall += st.wall.Seconds() / float64(b.N)
				peak = max(peak, st.peakRSS)
				if i == b.N-1 {
					for j, c := range f.children {
						ratios = append(ratios, float64(st.runs[j].wire)/float64(f.viewZstd[filterName(c.ranges)]))
					}
				}
			}
			if n == counts[0] {
				cpu10 = cpu
			}
			b.ReportMetric(cpu, "parent-cpu-s/complete-round")
			b.ReportMetric(wall, "wall-s/complete-round")
			b.ReportMetric(cpu/cpu10, "cpu-vs-10-children")
			b.ReportMetric(MiB(peak), "parent-peak-MiB")
			spread(b, ratios, "complete-wire/view-zstd")

			noop := f.noopRound(b)
			var tcp []float64
			for j := range f.children {
				tcp = append(tcp, float64(noop.tcp[j]))
			}
			b.ReportMetric(noop.cpu.Seconds()*1000/float64(n), "noop-parent-cpu-ms/child")
			spread(b, tcp, "noop-B/child")

			rev++
			changed := writeRevisedFeed(b, feed, revised, rev)
			f.parent.Import(b, map[string]any{"source": revised}, 10*time.Minute)
			diff := f.round(b, hierarchy.ModeDifferential, true)
			var dratio []float64
			var encode time.Duration
			for j, c := range f.children {
				t0 := time.Now()
				z := zstdSize(joinLines(c.records))
				encode += time.Since(t0) + c.encodeTime
				c.encodeTime = 0
				if len(c.records) > 0 { // else no changed record in this filter: a no-op run
					dratio = append(dratio, float64(diff.runs[j].wire)/float64(z))
				}
				if j < len(fanoutFilters) {
					h := diff.runs[j].header
					fmt.Printf("    %s: differential to %s (%s): %d records, %d deletes, wire %d B, changed records zstd %d B\n",
						b.Name(), c.name, filterName(c.ranges), h.Records, h.Deletes, diff.runs[j].wire, z)
				}
				c.keepRecords, c.records = false, nil
			}
			b.ReportMetric(float64(changed), "diff-changed-updates")
			spread(b, dratio, "diff-wire/changed-zstd")
			b.ReportMetric(diff.cpu.Seconds()*1000/float64(n), "diff-parent-cpu-ms/child")
			// What a differential run costs the parent beyond a no-op run, against encoding its
			// records (json.Marshal and zstd in this process, for every child).
			b.ReportMetric((diff.cpu-noop.cpu).Seconds()/encode.Seconds(), "diff-extra-cpu/changed-encode-cpu")
			fmt.Printf("    %s: complete round %.2f s CPU (%.2f× 10 children), %.1f s wall, peak %.0f MiB; no-op %.2f ms CPU/child; differential (%d updates retitled) %.2f ms CPU/child\n",
				b.Name(), cpu, cpu/cpu10, wall, MiB(peak), noop.cpu.Seconds()*1000/float64(n), changed, diff.cpu.Seconds()*1000/float64(n))
		})
	}
}

// generateFeed writes the synthetic feed of o into dir (feedgen, as `patchtree catalog
// generate` writes it) and returns its path.
func generateFeed(b *testing.B, dir string, o feedgen.Options) string {
	b.Helper()
	out := filepath.Join(dir, "generated.catalog.json")
	start := time.Now()
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	stats, err := feedgen.Generate(f, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatalf("generate a feed %+v: %v", o, err)
	}
	fmt.Printf("    generated %d updates in %d languages (%v): %.0f MB in %v\n",
		stats.Updates, stats.Languages, out, float64(stats.Bytes)/1e6, time.Since(start).Round(time.Millisecond))
	return out
}

// BenchmarkFanout500k: a generated catalog of 500,000 updates in 30 languages to 200 children
// (the ten filters, `*` included: 20 children receive all 500,000). The children keep only their
// replica's digest (a digest-only client verifies complete and empty runs; a per-record replica
// for each of 200 children would be this process's memory, not the parent's). The parent is
// restarted after the import. Reported: its RSS then, its peak RSS from the first child's
// enrolment to the end (each child's first, complete
// run, which builds each filter's section; then complete rounds, served from the cache: same
// version; then a no-op round), the CPU of the first runs and of a complete round, and the
// parent's CPU per child in the no-op round.
func BenchmarkFanout500k(b *testing.B) {
	binary(b) // skips (-short, not Linux) before generating the feed
	n := 200
	if counts := fanoutCounts(b); os.Getenv("PATCHTREE_BENCH_CHILDREN") != "" {
		n = counts[len(counts)-1]
	}
	feed := generateFeed(b, b.TempDir(), feedgen.Options{Updates: 500_000, Languages: 30, Seed: 1})
	f := newFanout(b, feed, true)
	os.Remove(feed) // 242 MB of temp space; the parent holds the catalog now
	// A restart leaves the process holding what the catalog needs, not the import's heap (the
	// import's own peak is BenchmarkImport500kServe's): the fan-out's peak is then its own.
	imported := f.parent.Stats(b)
	f.parent.Restart(b, 10*time.Minute)
	restarted := f.parent.Stats(b)
	fmt.Printf("    parent: RSS %.0f MiB after the import, %.0f MiB after a restart\n", MiB(imported.RSS), MiB(restarted.RSS))
	resetErr := f.parent.ResetPeakRSS()
	if resetErr != nil {
		b.Logf("peak RSS covers the import too: %v", resetErr)
	}
	cpu0 := f.parent.Stats(b).CPU
	start := time.Now()
	f.grow(b, n)
	first := f.parent.Stats(b)
	firstCPU, firstWall := first.CPU-cpu0, time.Since(start)
	b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
		var cpu float64
		peak := first.PeakRSS // the first runs' peak: round() resets it
		for i := 0; i < b.N; i++ {
			st := f.round(b, hierarchy.ModeComplete, false)
			cpu += st.cpu.Seconds() / float64(b.N)
			peak = max(peak, st.peakRSS)
		}
		noop := f.noopRound(b)
		var tcp []float64
		for j := range f.children {
			tcp = append(tcp, float64(noop.tcp[j]))
		}
		peak = max(peak, noop.peakRSS)
		b.ReportMetric(firstCPU.Seconds(), "parent-cpu-s/first-runs")
		b.ReportMetric(cpu, "parent-cpu-s/complete-round")
		b.ReportMetric(MiB(peak), "parent-peak-MiB")
		b.ReportMetric(MiB(f.parent.Stats(b).RSS), "parent-rss-MiB/end")
		b.ReportMetric(MiB(restarted.RSS), "parent-rss-MiB/before")
		b.ReportMetric(noop.cpu.Seconds()*1000/float64(n), "noop-parent-cpu-ms/child")
		spread(b, tcp, "noop-B/child")
		fmt.Printf("    %s: first runs (cold sections) %.1f s CPU, %.1f s wall; complete round %.2f s CPU, peak %.0f MiB; no-op %.2f ms CPU/child\n",
			b.Name(), firstCPU.Seconds(), firstWall.Seconds(), cpu, MiB(peak), noop.cpu.Seconds()*1000/float64(n))
	})
}
