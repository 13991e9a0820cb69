package hierarchy

import (
	"io"
	"log/slog"
	"testing"
	"time"

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

// tombstones counts the tombstones a store holds.
func tombstones(t *testing.T, s *store.Store) int {
	t.Helper()
	v, err := s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := v.Tombstones(0, func(*store.Tombstone) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
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
	be.UpdateChild("old", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &first.Version, CursorRanges: &[]string{"de"}, CursorAt: time.Now()})
	be.UpdateChild("new", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &deleted.Version, CursorRanges: &[]string{"de"}, CursorAt: time.Now()})

	if err := p.collectTombstones(time.Now()); err != nil {
		t.Fatal(err)
	}
	if tombstones(t, site.s) != 1 {
		t.Fatalf("tombstone collected while child old (cursor %d) has not passed it", first.Version)
	}
	be.UpdateChild("old", store.ChildUpdate{Cursor: &deleted.Version, CursorAt: time.Now()})
	if err := p.collectTombstones(time.Now()); err != nil {
		t.Fatal(err)
	}
	if tombstones(t, site.s) != 0 {
		t.Fatal("tombstone kept after every child passed it")
	}

	// A child whose cursor is older than the horizon cannot be told about that deletion.
	v, _ := site.s.CatalogView(nil)
	if h, err := v.TombstoneHorizon(); err != nil || h < deleted.Version {
		t.Fatalf("horizon %d (%v) below the collected tombstone %d", h, err, deleted.Version)
	}
	c, _ := site.s.Child(nil, "old")
	tr, due, err := dueCatalog(DefaultRules(), c, PullRequest{Child: "old", Cursor: first.Version, CursorRanges: []string{"de"}}, v, nil)
	if err != nil || !due || tr.mode != ModeComplete || tr.reason != "horizon" {
		t.Fatalf("child behind the horizon: due %v, trigger %+v", due, tr)
	}
	c, _ = site.s.Child(nil, "new")
	if _, due, err := dueCatalog(DefaultRules(), c, PullRequest{Child: "new", Cursor: deleted.Version, CursorRanges: []string{"de"}}, v, nil); err != nil || due {
		t.Fatal("an up-to-date child got a run with nothing to do")
	}
}

// TestTombstoneHorizonBounded: a child that never acknowledged a catalog run (enrolled, never
// joined) and one that has been behind and silent for longer than TombstoneHoldLimit do not
// hold tombstones back; a child behind but recently in contact does. The silent one, when it
// pulls again, gets a complete run.
func TestTombstoneHorizonBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	setup := func(t *testing.T) (*Parent, fakeParentBackend, *store.CatalogInfo, *store.CatalogInfo) {
		site := newMemSite(t)
		be := fakeParentBackend{site}
		p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
		p.SetBackend(be)
		model := &parentModel{site: site, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
		model.commit(t, &store.CatalogBatch{Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "u1", Language: "de"}, Feed: "f", Hash: "h1"}}})
		first, _ := site.s.Catalog(nil)
		model.commit(t, &store.CatalogBatch{DeleteUpdates: []string{"u1"}})
		deleted, _ := site.s.Catalog(nil)
		for _, name := range []string{"never", "current"} {
			if err := site.s.AddChild(site.next(), &store.Child{Name: name, JoinTokenHash: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		be.UpdateChild("current", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &deleted.Version, CursorRanges: &[]string{"de"}, CursorAt: now})
		return p, be, first, deleted
	}

	t.Run("not joined", func(t *testing.T) {
		p, be, _, _ := setup(t)
		if err := p.collectTombstones(now); err != nil {
			t.Fatal(err)
		}
		if n := tombstones(t, be.s); n != 0 {
			t.Fatalf("%d tombstones kept for a child that never joined", n)
		}
	})
	for _, tc := range []struct {
		name   string
		ackAt  time.Time
		seenAt time.Time
		holds  bool
	}{
		{"behind, acknowledged recently", now.Add(-time.Hour), time.Time{}, true},
		{"behind, pulled recently", now.Add(-TombstoneHoldLimit - time.Hour), now.Add(-time.Minute), true},
		{"behind and silent past the limit", now.Add(-TombstoneHoldLimit - time.Hour), time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, be, first, _ := setup(t)
			if err := be.s.AddChild(be.next(), &store.Child{Name: "late", JoinTokenHash: "x"}); err != nil {
				t.Fatal(err)
			}
			be.UpdateChild("late", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &first.Version, CursorRanges: &[]string{"de"}, CursorAt: tc.ackAt})
			if !tc.seenAt.IsZero() {
				p.polls.seen["late"] = tc.seenAt
			}
			if err := p.collectTombstones(now); err != nil {
				t.Fatal(err)
			}
			if kept := tombstones(t, be.s) == 1; kept != tc.holds {
				t.Fatalf("tombstone kept %v, want %v", kept, tc.holds)
			}
			v, _ := be.s.CatalogView(nil)
			c, _ := be.s.Child(nil, "late")
			tr, due, err := dueCatalog(DefaultRules(), c, PullRequest{Child: "late", Cursor: first.Version, CursorRanges: []string{"de"}}, v, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.holds {
				if due {
					t.Fatalf("a child holding its tombstones got a run with nothing asked: %+v", tr)
				}
				return
			}
			if !due || tr.mode != ModeComplete || tr.reason != "horizon" {
				t.Fatalf("a child back after its tombstones were collected: due %v, trigger %+v", due, tr)
			}
		})
	}
}
