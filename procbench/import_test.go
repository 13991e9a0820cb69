package procbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/replication/feedgen"
	"patchtree/store"
)

// importSample is one run of the 500k import through `patchtree serve`.
type importSample struct {
	visible    time.Duration // POST /v1/catalog/import → the new version in GET /v1/catalog
	reported   time.Duration // the run's finished_at - started_at
	floor      time.Duration // encoding/json decode + zstd of the same bytes, in this process
	peakRSS    int64         // the server's VmHWM
	maxApply   float64       // upper bound of the slowest Raft apply, seconds (histogram bucket)
	slowApply  int           // "slow raft apply" lines (applies over 1 s) in the server's log
	slowTypes  string        // the slowest apply's bound per entry type
	slowLines  []string      // the server's "slow raft apply" lines
	writeP99   time.Duration // small writes every 200 ms during the import
	writeMax   time.Duration
	writes     int
	entries    int // publish entries
	readsWhole int // catalog reads during the import, every one a whole version
}

// BenchmarkImport500kServe imports a generated feed of 500,000 updates in 30 languages through
// a real `patchtree serve` and reports, over three runs (min/median/max): wall time from the
// request to the new version in GET /v1/catalog and its ratio to the floor (encoding/json decode
// plus zstd of the same bytes, measured in the same run), the server's peak RSS, the slowest
// Raft apply, and the latency of a small write (a token) every 200 ms during the import.
func BenchmarkImport500kServe(b *testing.B) {
	binary(b)
	// 500,000 updates, or PATCHTREE_BENCH_UPDATES; imported PATCHTREE_BENCH_RUNS times (3), a
	// fresh server each.
	path := generateFeed(b, b.TempDir(), feedgen.Options{Updates: envInt("PATCHTREE_BENCH_UPDATES", 500_000), Languages: 30, Seed: 1})
	runs := envInt("PATCHTREE_BENCH_RUNS", 3)
	b.ResetTimer()
	var samples []importSample
	for run := 0; run < runs; run++ {
		s := importOnce(b, path)
		b.Logf("run %d: visible %.1f s (reported %.1f s), floor %.1f s = %.2fx; peak RSS %.0f MiB; slowest apply <= %.2f s (%d over 1 s); "+
			"writes %d, p99 %v, max %v; %d publish entries; %d whole reads",
			run+1, s.visible.Seconds(), s.reported.Seconds(), s.floor.Seconds(), s.visible.Seconds()/s.floor.Seconds(),
			MiB(s.peakRSS), s.maxApply, s.slowApply, s.writes, s.writeP99.Round(time.Millisecond), s.writeMax.Round(time.Millisecond),
			s.entries, s.readsWhole)
		b.Logf("run %d: applies by type: %s", run+1, s.slowTypes)
		for _, line := range s.slowLines {
			b.Logf("run %d: %s", run+1, line)
		}
		samples = append(samples, s)
	}
	b.StopTimer()
	report := func(unit string, v func(importSample) float64) {
		vals := make([]float64, len(samples))
		for i, s := range samples {
			vals[i] = v(s)
		}
		sort.Float64s(vals)
		b.ReportMetric(vals[0], unit+"-min")
		b.ReportMetric(vals[len(vals)/2], unit+"-median")
		b.ReportMetric(vals[len(vals)-1], unit+"-max")
	}
	report("visible-s", func(s importSample) float64 { return s.visible.Seconds() })
	report("floor-s", func(s importSample) float64 { return s.floor.Seconds() })
	report("visible/floor", func(s importSample) float64 { return s.visible.Seconds() / s.floor.Seconds() })
	report("peak-RSS-MiB", func(s importSample) float64 { return MiB(s.peakRSS) })
	report("max-apply-s", func(s importSample) float64 { return s.maxApply })
	report("write-p99-ms", func(s importSample) float64 { return float64(s.writeP99.Microseconds()) / 1000 })
	report("write-max-ms", func(s importSample) float64 { return float64(s.writeMax.Microseconds()) / 1000 })
}

// importOnce runs one import into a fresh server.
func importOnce(b *testing.B, path string) importSample {
	srv := StartServer(b, ServerOpts{Languages: []string{"*"}})
	defer srv.Stop(b)
	ctx := context.Background()
	var before catalogInfo
	if _, err := srv.Do(ctx, "GET", "/v1/catalog", nil, &before); err != nil {
		b.Fatal(err)
	}

	// Small writes every 200 ms, and whole-version reads, until the version is visible.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lat []time.Duration
	var writeErr, readErr error
	reads := 0
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			if _, err := srv.Do(ctx, "POST", "/v1/tokens", map[string]any{"role": "auditor", "name": fmt.Sprintf("w%d", i)}, nil); err != nil {
				writeErr = err
				return
			}
			lat = append(lat, time.Since(start))
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if err := wholeVersion(ctx, srv, before.Version); err != nil {
				readErr = err
				return
			}
			reads++
		}
	}()

	start := time.Now()
	var run ImportRun
	if _, err := srv.Do(ctx, "POST", "/v1/catalog/import", map[string]any{"source": path}, &run); err != nil {
		b.Fatalf("start import: %v", err)
	}
	var after catalogInfo
	for {
		if _, err := srv.Do(ctx, "GET", "/v1/catalog", nil, &after); err != nil {
			b.Fatal(err)
		}
		if after.Version != before.Version {
			break
		}
		if time.Since(start) > 20*time.Minute {
			b.Fatalf("no new version after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	visible := time.Since(start)
	close(stop)
	wg.Wait()
	if writeErr != nil || readErr != nil {
		b.Fatalf("during the import: write %v, read %v", writeErr, readErr)
	}
	st := srv.Stats(b)
	if _, err := srv.Do(ctx, "GET", "/v1/catalog/imports/"+run.ID, nil, &run); err != nil {
		b.Fatal(err)
	}
	if run.State != store.ImportSucceeded || after.Updates < 1 {
		b.Fatalf("import %s: %s %s, catalog %+v", run.ID, run.State, run.Error, after)
	}
	maxApply, entries, slowTypes := applyHistogram(b, srv)
	s := importSample{visible: visible, reported: run.FinishedAt.Sub(run.StartedAt), peakRSS: st.PeakRSS, slowTypes: slowTypes,
		maxApply: maxApply, entries: entries,
		readsWhole: reads, writes: len(lat)}
	s.writeP99, s.writeMax = percentile(lat, 0.99), percentile(lat, 1)
	if lines := srv.LogLines("slow raft apply", math.MaxInt); lines != "" {
		s.slowLines = strings.Split(lines, "\n")
	}
	s.slowApply = len(s.slowLines)
	srv.Stop(b)
	s.floor = importFloor(b, path)
	return s
}

// catalogInfo is GET /v1/catalog's version and counts.
type catalogInfo struct {
	Version   uint64 `json:"version"`
	Bulletins int    `json:"bulletins"`
	Updates   int    `json:"updates"`
}

// wholeVersion reads the catalog's first page of bulletins and its counts and checks that they
// belong to one version: the published one (before) with no bulletins, or a later, complete one.
func wholeVersion(ctx context.Context, srv *Server, before uint64) error {
	var info catalogInfo
	if _, err := srv.Do(ctx, "GET", "/v1/catalog", nil, &info); err != nil {
		return err
	}
	var page struct {
		Total int `json:"total"`
	}
	if _, err := srv.Do(ctx, "GET", "/v1/catalog/bulletins?per_page=1", nil, &page); err != nil {
		return err
	}
	if info.Version == before && (info.Bulletins != 0 || info.Updates != 0) {
		return fmt.Errorf("catalog at the old version %d has %d bulletins and %d updates", before, info.Bulletins, info.Updates)
	}
	if info.Version == before && page.Total != 0 {
		// The bulletins read may be of the next version only if the version moved meanwhile.
		var again catalogInfo
		if _, err := srv.Do(ctx, "GET", "/v1/catalog", nil, &again); err != nil {
			return err
		}
		if again.Version == before {
			return fmt.Errorf("%d bulletins listed under the old version %d", page.Total, before)
		}
	}
	return nil
}

// applyHistogram reads patchtree_raft_apply_duration_seconds from /metrics: the upper bound of
// the slowest apply of any type (the smallest bucket holding every observation), and how many
// publish entries there were (of either type), and the bound per type.
func applyHistogram(b *testing.B, srv *Server) (float64, int, string) {
	req, err := newRequest(srv, "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	resp, err := srv.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	type hist struct {
		count   float64
		buckets map[float64]float64
	}
	byType := map[string]*hist{}
	get := func(t string) *hist {
		if byType[t] == nil {
			byType[t] = &hist{buckets: map[float64]float64{}}
		}
		return byType[t]
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "patchtree_raft_apply_duration_seconds_") {
			continue
		}
		typ := labelValue(line, "type")
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "patchtree_raft_apply_duration_seconds_bucket"):
			le, err := strconv.ParseFloat(labelValue(line, "le"), 64)
			if err == nil {
				get(typ).buckets[le] = v
			}
		case strings.HasPrefix(line, "patchtree_raft_apply_duration_seconds_count"):
			get(typ).count = v
		}
	}
	if len(byType) == 0 {
		b.Fatal("no patchtree_raft_apply_duration_seconds in /metrics")
	}
	slowest := 0.0
	var perType []string
	for typ, h := range byType {
		bound := math.Inf(1)
		for le, n := range h.buckets {
			if n >= h.count && le < bound {
				bound = le
			}
		}
		slowest = math.Max(slowest, bound)
		perType = append(perType, fmt.Sprintf("%s %.0f<=%gs", typ, h.count, bound))
	}
	sort.Strings(perType)
	entries := 0
	for _, typ := range []string{"catalog-publish", "catalog-publish-rows"} { // JSON, row codec
		if h := byType[typ]; h != nil {
			entries += int(h.count)
		}
	}
	return slowest, entries, strings.Join(perType, ", ")
}

func labelValue(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// importFloor is the least any import of the feed must do, measured here: decode its JSON with
// encoding/json and compress its bytes with zstd.
func importFloor(b *testing.B, path string) time.Duration {
	buf, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var feed struct {
		Format    string                  `json:"format"`
		Feed      string                  `json:"feed"`
		Bulletins []store.BulletinContent `json:"bulletins"`
		Updates   []store.UpdateContent   `json:"updates"`
	}
	if err := json.Unmarshal(buf, &feed); err != nil {
		b.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	out := enc.EncodeAll(buf, nil)
	d := time.Since(start)
	if len(feed.Updates) == 0 || len(out) == 0 {
		b.Fatal("the floor decoded nothing")
	}
	return d
}

// newRequest is a GET of path with the server's admin token, for answers that are not JSON.
func newRequest(srv *Server, path string) (*http.Request, error) {
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	return req, nil
}
