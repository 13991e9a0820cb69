package importer

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"patchtree/node"
	"patchtree/replication/feedgen"
	"patchtree/store"
)

// benchSite starts a real, durable single-server site (raft-boltdb with fsync) managing ranges,
// with an importer wired to it as in patchtree serve.
func benchSite(b *testing.B, ranges ...string) (*node.Node, *Importer) {
	b.Helper()
	return raftSite(b, Config{}, ranges...)
}

// raftSite is benchSite with the importer's configuration.
func raftSite(b testing.TB, cfg Config, ranges ...string) (*node.Node, *Importer) {
	b.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Logger = logger
	im := New(cfg)
	n, err := node.New(node.Config{
		Name: "hq", Role: node.RoleParent, DataDir: b.TempDir(), RaftBind: "127.0.0.1:0",
		APIAddr: "http://127.0.0.1:1", Languages: ranges, Logger: logger,
		LeaderLoops: []node.LeaderLoop{{Name: "catalog-import", Run: im.LeaderLoop}},
	})
	if err != nil {
		b.Fatal(err)
	}
	im.SetBackend(n)
	b.Cleanup(func() { n.Shutdown() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		im.mu.Lock()
		ready := im.leaderCtx != nil
		im.mu.Unlock()
		if ready && n.Ready() {
			return n, im
		}
		if time.Now().After(deadline) {
			b.Fatal("site never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// peakRSS reads the process's peak resident set size (VmHWM) in MiB; 0 where /proc is absent.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// benchImport measures a full import of src into a fresh site, then a no-op re-import. Peak RSS
// is the process's high-water mark, so it is reported only for the full import, which runs first.
func benchImport(b *testing.B, src string, ranges ...string) {
	b.Run("full", func(b *testing.B) {
		var last *Progress
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			_, im := benchSite(b, ranges...)
			b.StartTimer()
			last = runImport(b, im, Request{Source: src})
			if last.State != store.ImportSucceeded {
				b.Fatalf("import %s: %s", last.State, last.Error)
			}
		}
		b.ReportMetric(float64(last.Result.Updates.Added), "updates")
		b.ReportMetric(float64(last.Batches), "raft-entries")
		b.ReportMetric(peakRSS(), "peak-RSS-MiB")
	})
	b.Run("noop", func(b *testing.B) {
		_, im := benchSite(b, ranges...)
		if p := runImport(b, im, Request{Source: src}); p.State != store.ImportSucceeded {
			b.Fatalf("first import %s: %s", p.State, p.Error)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if p := runImport(b, im, Request{Source: src}); p.State != store.ImportUnchanged {
				b.Fatalf("re-import %s: %s %+v", p.State, p.Error, p.Result)
			}
		}
	})
	// The same bytes again in complete mode: the content shortcut is off, so every record is
	// parsed, hashed and found unchanged.
	b.Run("unchanged-complete", func(b *testing.B) {
		_, im := benchSite(b, ranges...)
		if p := runImport(b, im, Request{Source: src}); p.State != store.ImportSucceeded {
			b.Fatalf("first import %s: %s", p.State, p.Error)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if p := runImport(b, im, Request{Source: src, Mode: "complete"}); p.State != store.ImportUnchanged {
				b.Fatalf("re-import %s: %s %+v", p.State, p.Error, p.Result)
			}
		}
	})
}

// BenchmarkImportMozilla imports the real Mozilla catalog (1,118 bulletins, 40,693 updates) into
// a durable site managing every language, and re-imports it unchanged.
func BenchmarkImportMozilla(b *testing.B) {
	benchImport(b, sharedData(b, mozilla), "*")
}

// BenchmarkImportGenerated500k imports a generated feed of 500,000 updates in 30 languages.
func BenchmarkImportGenerated500k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "feed500k.json")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	stats, err := feedgen.Generate(f, feedgen.Options{Updates: benchUpdates(), Languages: 30, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d bulletins, %d updates, %.0f MiB", stats.Bulletins, stats.Updates, float64(stats.Bytes)/(1<<20))
	benchImport(b, path, "*")
}

// benchUpdates is the size of the generated feed: 500,000, or PATCHTREE_BENCH_UPDATES for
// profiling at other sizes.
func benchUpdates() int {
	if n, err := strconv.Atoi(os.Getenv("PATCHTREE_BENCH_UPDATES")); err == nil && n > 0 {
		return n
	}
	return 500_000
}
