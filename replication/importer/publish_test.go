package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"patchtree/replication/feedgen"
	"patchtree/store"
)

// genFeed writes a generated feed of n updates in 3 languages (seed picks the content).
func genFeed(t *testing.T, path string, n int, seed int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := feedgen.Generate(f, feedgen.Options{Updates: n, Languages: 3, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestImportPublishesInBoundedBatches(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{MaxBatchRows: 50})
	src := filepath.Join(t.TempDir(), "feed.json")
	genFeed(t, src, 1200, 1)
	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportSucceeded {
		t.Fatalf("import: %s %s", p.State, p.Error)
	}
	rows := p.Result.Updates.Added + p.Result.Bulletins.Added
	if p.Batches < rows/50 {
		t.Fatalf("%d rows in %d batches: want batches of at most 50 rows", rows, p.Batches)
	}
	f.mu.Lock()
	publishes, maxRows := f.publishes, f.maxRows
	f.mu.Unlock()
	if publishes != p.Batches || maxRows > 50 || maxRows == 0 {
		t.Fatalf("%d publish entries for %d batches, largest %d rows: want one entry per batch of at most 50", publishes, p.Batches, maxRows)
	}
	info, err := f.s.Catalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != p.CatalogVersion || info.Updates != p.Result.Updates.Added || !info.UpdatedAt.Equal(p.FinishedAt) {
		t.Fatalf("catalog %+v after run %+v", info, p.ImportRun)
	}
	if run, _ := f.s.Publishing(); run != "" {
		t.Fatalf("still publishing %q", run)
	}
}

func TestFailedPublishIsRolledBack(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{MaxBatchRows: 40})
	src := filepath.Join(t.TempDir(), "feed.json")
	genFeed(t, src, 400, 1)
	if p := runImport(t, im, Request{Source: src}); p.State != store.ImportSucceeded {
		t.Fatalf("first import: %s %s", p.State, p.Error)
	}
	before := catalogDigest(t, f.s)
	infoBefore, _ := f.s.Catalog(nil)

	genFeed(t, src, 600, 2) // every record changes
	f.mu.Lock()
	f.failStage = f.stages + 4 // the fourth batch of the next run
	f.mu.Unlock()
	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "stage batch") {
		t.Fatalf("import with a failing publish: %s %q, want failed staging a batch", p.State, p.Error)
	}
	if p.Batches < 3 {
		t.Fatalf("batches published before the failure = %d, want at least 3", p.Batches)
	}
	if catalogDigest(t, f.s) != before {
		t.Fatal("the failed publish changed the catalog tables")
	}
	if info, _ := f.s.Catalog(nil); *info != *infoBefore {
		t.Fatalf("catalog %+v, before %+v", info, infoBefore)
	}
	if run, _ := f.s.Publishing(); run != "" {
		t.Fatalf("still publishing %q after the abort", run)
	}
	if staged, _ := f.s.StagedRuns(); len(staged) != 0 {
		t.Fatalf("staged runs after the abort: %v", staged)
	}
	if again := runImport(t, im, Request{Source: src}); again.State != store.ImportSucceeded || again.Result.Updates.Added == 0 {
		t.Fatalf("retry: %s %q %+v", again.State, again.Error, again.Result)
	}
}

// TestLeaderDropsAnUnfinishedPublish: a leader that stopped mid-publish leaves published
// batches; the next term takes them back out and drops them, and the version stays.
func TestLeaderDropsAnUnfinishedPublish(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{MaxBatchRows: 40})
	src := filepath.Join(t.TempDir(), "feed.json")
	genFeed(t, src, 300, 1)
	if p := runImport(t, im, Request{Source: src}); p.State != store.ImportSucceeded {
		t.Fatalf("first import: %s %s", p.State, p.Error)
	}
	before := catalogDigest(t, f.s)
	batch := &store.CatalogBatch{Tombstones: true, DeleteUpdates: []string{"gone"}}
	for i := 0; i < 3; i++ {
		if err := f.StageCatalog("orphan", batch); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := f.PublishCatalog("orphan", nil); err != nil {
			t.Fatal(err)
		}
	}
	newTestImporter(t, f, Config{}) // a new leader term drops leftovers as it starts
	waitDropped(t, f.s, "after a new term")
	if catalogDigest(t, f.s) != before {
		t.Fatal("the dropped publish changed the catalog")
	}
}

// TestOrphanPublishIsDropped: a publish that no import of this term owns (a backup restored
// mid-publish) is taken back out on the importer's next tick.
func TestOrphanPublishIsDropped(t *testing.T) {
	f := newFakeBackend(t, "*")
	newTestImporter(t, f, Config{ScheduleTick: 20 * time.Millisecond})
	before := catalogDigest(t, f.s)
	for i := 0; i < 2; i++ {
		b := &store.CatalogBatch{Tombstones: true, Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: fmt.Sprintf("u%d", i), Title: "u"}, Feed: "f", Hash: "h"}}}
		if _, err := f.PublishCatalog("restored", b); err != nil {
			t.Fatal(err)
		}
	}
	waitDropped(t, f.s, "the orphan publish was not dropped")
	if catalogDigest(t, f.s) != before {
		t.Fatal("dropping the orphan publish changed the catalog")
	}
}

// waitDropped waits until nothing is being published or staged on s, failing with what after
// 5 s.
func waitDropped(t *testing.T, s *store.Store, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		run, err := s.Publishing()
		if err != nil {
			t.Fatal(err)
		}
		staged, err := s.StagedRuns()
		if err != nil {
			t.Fatal(err)
		}
		if run == "" && len(staged) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: publishing %q, staged runs %v", what, run, staged)
		}
	}
}
