package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestChangeIndex writes catalog versions of random changes and checks, for every cursor, that
// UpdatesSince, BulletinsSince and TombstonesSince list exactly the rows a full scan finds above
// it, in modify-index order, also on a store restored from a snapshot (memdb rebuilds the index
// from the rows).
func TestChangeIndex(t *testing.T) {
	s := newStore(t)
	rng := rand.New(rand.NewPCG(5, 5))
	idx := uint64(0)
	commit := func(b *CatalogBatch) {
		t.Helper()
		b.Tombstones = true
		raw, err := EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		idx++
		run := fmt.Sprint("r", idx)
		if err := s.StageCatalog(idx, run, raw); err != nil {
			t.Fatal(err)
		}
		idx++
		if err := s.CommitCatalog(idx, &ImportRun{ID: run, State: ImportSucceeded}, nil); err != nil {
			t.Fatal(err)
		}
	}
	live := map[string]bool{}
	for v := 0; v < 30; v++ {
		b := &CatalogBatch{}
		for i := 0; i < 5; i++ {
			id := fmt.Sprintf("u%02d", rng.IntN(40))
			if live[id] && rng.IntN(4) == 0 {
				b.DeleteUpdates = append(b.DeleteUpdates, id)
				delete(live, id)
				continue
			}
			if slices.Contains(b.DeleteUpdates, id) {
				continue // an import never deletes and writes one id in a run
			}
			live[id] = true
			b.Updates = append(b.Updates, &Update{UpdateContent: UpdateContent{ID: id, Title: fmt.Sprint(id, v, i), Language: "de"},
				Feed: "f", Hash: fmt.Sprint(v, i)})
		}
		ids := []string{}
		for _, u := range b.Updates {
			ids = append(ids, u.ID)
		}
		if len(ids) > 0 {
			b.Bulletins = append(b.Bulletins, &Bulletin{BulletinContent: BulletinContent{ID: fmt.Sprint("B", v%7), Title: "b", UpdateIDs: ids},
				Feed: "f", Hash: fmt.Sprint(v)})
		}
		commit(b)
	}
	restored, err := Restore(bytes.NewReader(snapshotBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"live": s, "restored": restored} {
		v, err := st.CatalogView(nil)
		if err != nil {
			t.Fatal(err)
		}
		for cursor := uint64(0); cursor <= idx+1; cursor++ {
			var want, got []string
			v.EachUpdate(func(u *Update) bool {
				if u.ModifyIndex > cursor {
					want = append(want, fmt.Sprint("u", u.ID, u.ModifyIndex))
				}
				return true
			})
			v.EachBulletin(func(b *Bulletin) bool {
				if b.ModifyIndex > cursor {
					want = append(want, fmt.Sprint("b", b.ID, b.ModifyIndex))
				}
				return true
			})
			v.Tombstones(cursor, func(tb *Tombstone) bool { want = append(want, fmt.Sprint("t", tb.Key, tb.Index)); return true })
			last := uint64(0)
			order := func(i uint64) {
				if i <= cursor || i < last {
					t.Fatalf("%s, cursor %d: index %d after %d", name, cursor, i, last)
				}
				last = i
			}
			check := func(err error) {
				if err != nil {
					t.Fatal(err)
				}
			}
			check(v.UpdatesSince(cursor, func(u *Update) bool {
				order(u.ModifyIndex)
				got = append(got, fmt.Sprint("u", u.ID, u.ModifyIndex))
				return true
			}))
			last = 0
			check(v.BulletinsSince(cursor, func(b *Bulletin) bool {
				order(b.ModifyIndex)
				got = append(got, fmt.Sprint("b", b.ID, b.ModifyIndex))
				return true
			}))
			last = 0
			check(v.TombstonesSince(cursor, func(tb *Tombstone) bool {
				order(tb.Index)
				got = append(got, fmt.Sprint("t", tb.Key, tb.Index))
				return true
			}))
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, cursor %d: the change index lists %v, a scan %v", name, cursor, got, want)
			}
		}
	}
	v, _ := s.CatalogView(nil)
	if err := v.UpdatesSince(^uint64(0), func(*Update) bool { t.Fatal("a row above the largest index"); return false }); err != nil {
		t.Fatal(err)
	}
}
