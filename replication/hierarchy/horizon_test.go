package hierarchy

import (
	"io"
	"log/slog"
	"testing"

	"patchtree/store"
)

// fakeParentBackend is a ParentBackend over a memSite.
type fakeParentBackend struct{ *memSite }

func (f fakeParentBackend) JoinChild(name, joinToken string) (string, error) { return "", nil }
func (f fakeParentBackend) UpdateChild(name string, u store.ChildUpdate) (uint64, error) {
	idx := f.next()
	return idx, f.s.UpdateChild(idx, name, &u)
}
func (f fakeParentBackend) RecordReplicationRun(run store.ReplicationRun, u store.ChildUpdate) (uint64, error) {
	idx := f.next()
	return idx, f.s.RecordReplicationRun(idx, &run, &u)
}
func (f fakeParentBackend) PutChildSummary(s *store.ChildSummary, run *store.ReplicationRun) (bool, string, error) {
	return f.s.PutChildSummary(f.next(), s, run)
}
func (f fakeParentBackend) PruneRuns(child string, keep int) (uint64, error) {
	idx := f.next()
	_, err := f.s.PruneReplicationRuns(idx, child, keep)
	return idx, err
}
func (f fakeParentBackend) CollectTombstones(upTo uint64) (uint64, error) {
	idx := f.next()
	return idx, f.s.CollectTombstones(idx, upTo)
}

// TestTombstonesCollectedPastEveryChild: tombstones are dropped only once every child's
// cursor has passed them, and a child older than the horizon gets a complete run.
func TestTombstonesCollectedPastEveryChild(t *testing.T) {
	site := newMemSite(t)
	be := fakeParentBackend{site}
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(be)
	model := &parentModel{site: site, rng: nil, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	u := &store.Update{UpdateContent: store.UpdateContent{ID: "u1", Language: "de"}, Feed: "f", Hash: "h1"}
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{u}})
	first, _ := site.s.Catalog(nil)
	model.commit(t, &store.CatalogBatch{DeleteUpdates: []string{"u1"}})
	deleted, _ := site.s.Catalog(nil)

	for _, name := range []string{"old", "new"} {
		if err := site.s.AddChild(site.next(), &store.Child{Name: name, JoinTokenHash: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	be.UpdateChild("old", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &first.Version, CursorRanges: &[]string{"de"}})
	be.UpdateChild("new", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &deleted.Version, CursorRanges: &[]string{"de"}})

	count := func() int {
		n := 0
		v, _ := site.s.CatalogView(nil)
		v.Tombstones(0, func(*store.Tombstone) bool { n++; return true })
		return n
	}
	if err := p.collectTombstones(); err != nil {
		t.Fatal(err)
	}
	if count() != 1 {
		t.Fatalf("tombstone collected while child old (cursor %d) has not passed it", first.Version)
	}
	be.UpdateChild("old", store.ChildUpdate{Cursor: &deleted.Version})
	if err := p.collectTombstones(); err != nil {
		t.Fatal(err)
	}
	if count() != 0 {
		t.Fatal("tombstone kept after every child passed it")
	}

	// A child whose cursor is older than the horizon cannot be told about that deletion.
	v, _ := site.s.CatalogView(nil)
	if h, err := v.TombstoneHorizon(); err != nil || h < deleted.Version {
		t.Fatalf("horizon %d (%v) below the collected tombstone %d", h, err, deleted.Version)
	}
	c, _ := site.s.Child(nil, "old")
	tr, due, err := p.dueCatalog(DefaultRules(), c, PullRequest{Child: "old", Cursor: first.Version, CursorRanges: []string{"de"}}, v, &runSpec{})
	if err != nil || !due || tr.mode != ModeComplete || tr.reason != "horizon" {
		t.Fatalf("child behind the horizon: due %v, trigger %+v", due, tr)
	}
	c, _ = site.s.Child(nil, "new")
	if _, due, err := p.dueCatalog(DefaultRules(), c, PullRequest{Child: "new", Cursor: deleted.Version, CursorRanges: []string{"de"}}, v, &runSpec{}); err != nil || due {
		t.Fatal("an up-to-date child got a run with nothing to do")
	}
}
