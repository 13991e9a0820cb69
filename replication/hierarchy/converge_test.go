package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"patchtree/langalert"
	"patchtree/store"
)

// seeds is how many random seeds a randomised test runs: short by default, long with
// PATCHTREE_SOAK=1 (make soak).
func seeds(short, long uint64) uint64 {
	if os.Getenv("PATCHTREE_SOAK") == "1" {
		return long
	}
	return short
}

// waitFor polls cond until it holds, and fails the test if it does not within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// memSite is a store written directly with increasing indexes: a site without Raft.
type memSite struct {
	s   *store.Store
	idx uint64
}

func newMemSite(t *testing.T) *memSite {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return &memSite{s: s}
}

func (m *memSite) next() uint64 { m.idx++; return m.idx }

func (m *memSite) State() *store.Store { return m.s }

func (m *memSite) PutSetting(key string, v any) (uint64, error) {
	buf, _ := json.Marshal(v)
	idx := m.next()
	return idx, m.s.PutSetting(idx, key, buf)
}

func (m *memSite) StageCatalog(runID string, b *store.CatalogBatch) error {
	raw, err := store.EncodeBatch(b)
	if err != nil {
		return err
	}
	return m.s.StageCatalog(m.next(), runID, raw)
}

func (m *memSite) CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	idx := m.next()
	return idx, m.s.CommitCatalog(idx, run, src)
}

func (m *memSite) AbortCatalog(runID string) error { return m.s.AbortCatalog(m.next(), runID) }

// parentModel is the test's own copy of the parent's catalog, from which it writes rows the way
// the importer does (bulletins carry their updates' tags; a changed tag rewrites its bulletins).
type parentModel struct {
	site      *memSite
	rng       *rand.Rand
	updates   map[string]*store.Update
	bulletins map[string]*store.Bulletin
	seq       int
}

var testTags = []string{"de", "fr", "it", "ja", "", "en-US", "en-GB", "dsb", "pt-BR"}

func (p *parentModel) commit(t *testing.T, b *store.CatalogBatch) {
	t.Helper()
	b.Tombstones = true
	p.seq++
	run := fmt.Sprintf("r%d", p.seq)
	if err := p.site.StageCatalog(run, b); err != nil {
		t.Fatal(err)
	}
	if _, err := p.site.CommitCatalog(&store.ImportRun{ID: run, State: store.ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
}

// bulletinRow rebuilds a bulletin row from the model (fresh hash, current tags).
func (p *parentModel) bulletinRow(id string, ids []string) *store.Bulletin {
	b := &store.Bulletin{BulletinContent: store.BulletinContent{ID: id, Title: "b " + id, UpdateIDs: ids}, Feed: "f",
		Hash: fmt.Sprintf("h%d", p.rng.Int())}
	for _, u := range ids {
		b.UpdateTags = append(b.UpdateTags, strings.ToLower(p.updates[u].Language))
	}
	return b
}

func (p *parentModel) mutate(t *testing.T) {
	t.Helper()
	b := &store.CatalogBatch{}
	touchedB := map[string]bool{}
	for i := 0; i < 3+p.rng.IntN(6); i++ {
		switch op := p.rng.IntN(6); {
		case op <= 1 || len(p.updates) < 5: // new update, maybe in a new bulletin
			id := fmt.Sprintf("u%d", len(p.updates)+p.seq*1000+i)
			u := &store.Update{UpdateContent: store.UpdateContent{ID: id, Title: id, Language: testTags[p.rng.IntN(len(testTags))]},
				Feed: "f", Hash: fmt.Sprintf("h%d", p.rng.Int())}
			p.updates[id] = u
			b.Updates = append(b.Updates, u)
			bid := fmt.Sprintf("B%d", p.rng.IntN(12))
			ids := []string{id}
			if old, ok := p.bulletins[bid]; ok {
				ids = append(append([]string{}, old.UpdateIDs...), id)
			}
			p.bulletins[bid] = p.bulletinRow(bid, ids)
			touchedB[bid] = true
		case op == 2: // change an update, sometimes its language too
			u := *p.updates[p.anyUpdate()]
			u.Hash = fmt.Sprintf("h%d", p.rng.Int())
			langChanged := p.rng.IntN(3) == 0
			if langChanged {
				u.Language = testTags[p.rng.IntN(len(testTags))]
			}
			p.updates[u.ID] = &u
			b.Updates = append(b.Updates, &u)
			if langChanged {
				for bid, bl := range p.bulletins {
					if contains(bl.UpdateIDs, u.ID) {
						p.bulletins[bid] = p.bulletinRow(bid, bl.UpdateIDs)
						touchedB[bid] = true
					}
				}
			}
		case op == 3 && len(p.bulletins) > 2: // delete a bulletin
			bid := p.anyBulletin()
			delete(p.bulletins, bid)
			delete(touchedB, bid)
			b.DeleteBulletins = append(b.DeleteBulletins, bid)
		case op == 4: // delete an update (its bulletins are rewritten without it)
			id := p.anyUpdate()
			delete(p.updates, id)
			b.DeleteUpdates = append(b.DeleteUpdates, id)
			for bid, bl := range p.bulletins {
				if contains(bl.UpdateIDs, id) {
					var rest []string
					for _, x := range bl.UpdateIDs {
						if x != id {
							rest = append(rest, x)
						}
					}
					p.bulletins[bid] = p.bulletinRow(bid, rest)
					touchedB[bid] = true
				}
			}
		}
	}
	for bid := range touchedB {
		b.Bulletins = append(b.Bulletins, p.bulletins[bid])
	}
	// The importer never both deletes and writes one id in a run; a re-added bulletin is a write.
	var dels []string
	for _, id := range b.DeleteBulletins {
		if _, back := p.bulletins[id]; !back {
			dels = append(dels, id)
		}
	}
	b.DeleteBulletins = dels
	p.commit(t, b)
	if p.rng.IntN(3) == 0 && len(p.bulletins) > 0 { // an administrator's change
		dis := p.rng.IntN(2) == 0
		if err := p.site.s.SetBulletinAdmin(p.site.next(), p.anyBulletin(), nil, &dis); err != nil {
			t.Fatal(err)
		}
	}
}

func (p *parentModel) anyUpdate() string   { return sortedKey(p.updates, p.rng) }
func (p *parentModel) anyBulletin() string { return sortedKey(p.bulletins, p.rng) }

func sortedKey[V any](m map[string]V, rng *rand.Rand) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[rng.IntN(len(keys))]
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestRunsKeepReplicaEqualToView drives random catalog changes and random filter changes, and
// after every round checks that the run the parent builds, applied by the child, leaves a replica
// whose digest equals the parent's incrementally maintained view digest, and whose records are
// exactly the filtered view. 10 seeds; 40 with PATCHTREE_SOAK=1.
func TestRunsKeepReplicaEqualToView(t *testing.T) {
	for seed := uint64(1); seed <= seeds(10, 40); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			parent := &parentModel{site: newMemSite(t), rng: rng, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
			childSite := newMemSite(t)
			child := NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			child.SetBackend(childSite)
			rangeSets := [][]string{{"de", "fr"}, {"de", "it"}, {"en"}, {"*"}, {"ja"}, {}}
			ranges := rangeSets[0]
			for round := 0; round < 25; round++ {
				parent.mutate(t)
				if rng.IntN(4) == 0 {
					ranges = rangeSets[rng.IntN(len(rangeSets))]
				}
				src, _ := childSite.s.Source(nil, SourceParent)
				c := &store.Child{Name: "c", Ranges: ranges}
				mode := ModeComplete
				if src != nil {
					c.Cursor, c.CursorRanges, mode = src.Cursor, src.Ranges, ModeDifferential
				}
				if rng.IntN(8) == 0 {
					mode = ModeComplete
				}
				view, _ := parent.site.s.CatalogView(nil)
				plan := buildRun(view, c, mode)
				var buf bytes.Buffer
				if _, err := plan.WriteTo(&buf); err != nil {
					t.Fatal(err)
				}
				ack, cut := child.apply(context.Background(), &Link{Child: "c"}, &buf, time.Now())
				if cut != nil {
					t.Fatalf("round %d: run cut: %v", round, cut)
				}
				if !ack.Applied {
					t.Fatalf("round %d: child failed to apply: %s", round, ack.Error)
				}
				if ack.ChildDigest != plan.header.Digest {
					assertReplicaIsView(t, view, ranges, childSite.s)
					t.Fatalf("round %d (%s, ranges %v): child digest %s != view digest %s", round, mode, ranges, ack.ChildDigest, plan.header.Digest)
				}
				if bad := checkSample(view, ranges, ack.Sample); len(bad) > 0 {
					t.Fatalf("round %d: sampled records differ: %v", round, bad)
				}
				assertReplicaIsView(t, view, ranges, childSite.s)
			}
		})
	}
}

// assertReplicaIsView compares the child's records with the filtered view computed here.
func assertReplicaIsView(t *testing.T, v *store.CatalogView, ranges []string, child *store.Store) {
	t.Helper()
	want := map[string]string{}
	v.EachUpdate(func(u *store.Update) bool {
		if langalert.MatchAny(ranges, u.Language) {
			want["u/"+u.ID] = u.Hash
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		var ids []string
		for _, id := range b.UpdateIDs {
			if _, ok := want["u/"+id]; ok {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			want["b/"+b.ID] = fmt.Sprint(b.Hash, ids, b.Disabled)
		}
		return true
	})
	got := map[string]string{}
	cv, _ := child.CatalogView(nil)
	cv.EachUpdate(func(u *store.Update) bool { got["u/"+u.ID] = u.Hash; return true })
	cv.EachBulletin(func(b *store.Bulletin) bool {
		got["b/"+b.ID] = fmt.Sprint(b.Hash, b.UpdateIDs, b.Disabled)
		return true
	})
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("replica %s = %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("replica holds %s, which is not in its view", k)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 11, 21, 22, 30, 0, 0, time.UTC)
	cases := []struct {
		in   string
		next time.Time
		err  bool
	}{
		{"23:00", time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC), false},
		{"20:00", time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC), false},
		{"15m", at.Add(15 * time.Minute), false},
		{"continuous", time.Time{}, false},
		{"25:00", time.Time{}, true},
		{"soon", time.Time{}, true},
		{"10ms", time.Time{}, true},
	}
	for _, tc := range cases {
		s, err := ParseSchedule(tc.in, true)
		if (err != nil) != tc.err {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		if err == nil && !s.Next(at).Equal(tc.next) {
			t.Fatalf("%q: next %v, want %v", tc.in, s.Next(at), tc.next)
		}
	}
	if _, err := ParseSchedule("continuous", false); err == nil {
		t.Fatal("continuous accepted where not allowed")
	}
}
