package hierarchy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"patchtree/store"
)

// failingParentBackend is a parent backend whose garbage collection writes fail.
type failingParentBackend struct {
	fakeParentBackend
	err error
}

func (f failingParentBackend) CollectTombstones(upTo uint64) (uint64, error) { return 0, f.err }
func (f failingParentBackend) PruneRuns(child string, keep int) (uint64, error) {
	return 0, f.err
}

// TestParentReadErrorsAreReturned: a tombstone horizon that cannot be read fails the pull
// instead of reading as 0, and the garbage collection's failures reach the caller wrapped.
// WaitRuns and logAlerts now return their read errors too; the memory store cannot be made to
// fail a read, so for them this test checks only that the readable path still answers.
func TestParentReadErrorsAreReturned(t *testing.T) {
	site := newMemSite(t)
	boom := errors.New("boom")
	be := failingParentBackend{fakeParentBackend{site}, boom}
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(be)
	p.leading.Store(true)
	model := &parentModel{site: site, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "u1", Language: "de"}, Feed: "f", Hash: "h1"}}})
	model.commit(t, &store.CatalogBatch{DeleteUpdates: []string{"u1"}})
	info, _ := site.s.Catalog(nil)
	if err := site.s.AddChild(site.next(), &store.Child{Name: "c", JoinTokenHash: "x"}); err != nil {
		t.Fatal(err)
	}
	be.UpdateChild("c", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &info.Version, CursorRanges: &[]string{"de"}})

	t.Run("collect tombstones", func(t *testing.T) {
		if err := p.collectTombstones(time.Now()); !errors.Is(err, boom) {
			t.Fatalf("collect tombstones: %v, want %v", err, boom)
		}
	})
	t.Run("prune runs", func(t *testing.T) {
		for i := 0; i < KeepRunsPerChild+101; i++ {
			run := store.ReplicationRun{ID: time.Unix(int64(i), 0).UTC().Format("20060102T150405") + "-r", Child: "c"}
			if _, err := be.RecordReplicationRun(run, store.ChildUpdate{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.pruneRuns(); !errors.Is(err, boom) {
			t.Fatalf("prune runs: %v, want %v", err, boom)
		}
	})
	t.Run("wait runs still finds the run", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		runs, err := p.WaitRuns(ctx, []string{"c"}, time.Time{})
		if err != nil || runs["c"] == nil {
			t.Fatalf("wait runs: %v, %v", runs, err)
		}
	})
	t.Run("alerts still log without error", func(t *testing.T) {
		if err := p.logAlerts(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unreadable horizon", func(t *testing.T) {
		if err := site.s.PutSetting(site.next(), store.SettingTombstoneHorizon, []byte(`"not an object"`)); err != nil {
			t.Fatal(err)
		}
		v, _ := site.s.CatalogView(nil)
		if _, err := v.TombstoneHorizon(); err == nil {
			t.Fatal("an unreadable horizon read without error")
		}
		_, err := p.Pull(context.Background(), PullRequest{Child: "c", Cursor: info.Version, CursorRanges: []string{"de"}, Wait: time.Second})
		if err == nil {
			t.Fatal("a pull with an unreadable tombstone horizon answered without error")
		}
	})
}
