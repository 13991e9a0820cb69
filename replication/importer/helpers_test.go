package importer

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"patchtree/store"

	"patchtree/integration/shareddata"
)

// fakeBackend applies the importer's writes straight to a real store with increasing indexes:
// the same store code the FSM calls, without Raft.
type fakeBackend struct {
	mu  sync.Mutex
	s   *store.Store
	idx uint64
	// failStage makes the n-th batch staged (StageCatalog, or PublishCatalog with a batch)
	// fail (0: never), to test aborts.
	failStage int
	stages    int
	publishes int
	maxRows   int // the most rows one publish entry wrote
}

func newFakeBackend(t testing.TB, ranges ...string) *fakeBackend {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{s: s}
	if err := s.SetLanguages(f.next(), store.LanguagesSite, ranges); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeBackend) next() uint64 { f.idx++; return f.idx }

func (f *fakeBackend) State() *store.Store { return f.s }

func (f *fakeBackend) StageCatalog(runID string, b *store.CatalogBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stages++
	if f.failStage > 0 && f.stages == f.failStage {
		return io.ErrUnexpectedEOF
	}
	raw, err := store.EncodeBatch(b)
	if err != nil {
		return err
	}
	return f.s.StageCatalog(f.next(), runID, raw)
}

func (f *fakeBackend) CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.CommitCatalog(idx, run, src)
}

func (f *fakeBackend) PublishCatalog(runID string, b *store.CatalogBatch) (*store.PublishProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var raw []byte
	if b != nil {
		f.stages++
		if f.failStage > 0 && f.stages == f.failStage {
			return nil, io.ErrUnexpectedEOF
		}
		var err error
		if raw, err = store.EncodeBatch(b); err != nil {
			return nil, err
		}
	}
	f.publishes++
	p, err := f.s.PublishCatalog(f.next(), runID, raw)
	if err == nil {
		f.maxRows = max(f.maxRows, p.Rows)
	}
	return p, err
}

func (f *fakeBackend) UnpublishCatalog(runID string) (*store.PublishProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s.UnpublishCatalog(f.next(), runID)
}

func (f *fakeBackend) SwitchCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.SwitchCatalog(idx, run, src)
}

func (f *fakeBackend) AbortCatalog(runID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s.AbortCatalog(f.next(), runID)
}

func (f *fakeBackend) setLanguages(t testing.TB, ranges ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.s.SetLanguages(f.next(), store.LanguagesSite, ranges); err != nil {
		t.Fatal(err)
	}
}

// newTestImporter returns an importer that leads until the test ends.
func newTestImporter(t testing.TB, b Backend, cfg Config) *Importer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	im := New(cfg)
	im.SetBackend(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { im.LeaderLoop(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		im.mu.Lock()
		ready := im.leaderCtx != nil
		im.mu.Unlock()
		if ready {
			return im
		}
		if time.Now().After(deadline) {
			t.Fatal("importer never became leader")
		}
		time.Sleep(time.Millisecond)
	}
}

// runImport starts an import and waits for it to finish.
func runImport(t testing.TB, im *Importer, req Request) *Progress {
	t.Helper()
	p, err := im.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err = im.Wait(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sharedData returns the path of a file under ../shared/data, or skips the test.
func sharedData(t testing.TB, rel string) string {
	t.Helper()
	return shareddata.Path(t, rel)
}

// catalogDigest hashes the bulletins and updates tables (rows with their Raft indexes).
func catalogDigest(t testing.TB, s *store.Store) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Tables["bulletins"].Digest + d.Tables["updates"].Digest
}

func stateDigest(t testing.TB, s *store.Store) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}
