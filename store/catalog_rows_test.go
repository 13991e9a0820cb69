package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// mustWrite runs fn in a write transaction of s and fails the test on its error.
func mustWrite(t *testing.T, s *Store, fn func(txn *memdb.Txn) error) {
	t.Helper()
	if err := s.write(fn); err != nil {
		t.Fatal(err)
	}
}

func rowTestUpdate(id string, idx uint64) *Update {
	u := &Update{UpdateContent: UpdateContent{ID: id, Language: "en"}, Feed: "f"}
	u.CreateIndex, u.ModifyIndex = idx, idx
	return u
}

// A read transaction keeps the rows of its snapshot while later writes change, add and delete
// rows; an aborted write leaves no trace; the watch channel fires on a commit.
func TestRowSetVersions(t *testing.T) {
	s := newStore(t)
	mustWrite(t, s, func(txn *memdb.Txn) error {
		for i := 0; i < 500; i++ {
			if err := rowInsert(txn, tableUpdates, rowTestUpdate(fmt.Sprintf("u%03d", i), 10)); err != nil {
				return err
			}
		}
		return nil
	})
	before := s.db.Txn(false)
	ws := memdb.NewWatchSet()
	if _, err := readRows(before, ws, tableUpdates); err != nil {
		t.Fatal(err)
	}

	mustWrite(t, s, func(txn *memdb.Txn) error {
		if err := rowInsert(txn, tableUpdates, rowTestUpdate("u001", 20)); err != nil {
			return err
		}
		if err := rowInsert(txn, tableUpdates, rowTestUpdate("u999", 20)); err != nil {
			return err
		}
		old, err := rowFirst(txn, tableUpdates, "u002")
		if err != nil {
			return err
		}
		return rowDelete(txn, tableUpdates, old)
	})
	if timedOut := ws.Watch(time.After(time.Second)); timedOut {
		t.Fatal("the rows' watch channel did not fire on the commit")
	}
	// A failed write: its changes are dropped with its transaction.
	boom := errors.New("boom")
	if err := s.write(func(txn *memdb.Txn) error {
		if err := rowInsert(txn, tableUpdates, rowTestUpdate("u777", 30)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}

	count := func(txn *memdb.Txn) int {
		n, err := rowCount(txn, tableUpdates)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(before); n != 500 {
		t.Fatalf("the old snapshot has %d rows, want 500", n)
	}
	get := func(txn *memdb.Txn, id string) any {
		t.Helper()
		raw, err := rowFirst(txn, tableUpdates, id)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if raw, ok := get(before, "u001").(*Update); !ok || raw.ModifyIndex != 10 {
		t.Fatalf("the old snapshot sees u001 as %+v", raw)
	}
	if get(before, "u002") == nil {
		t.Fatal("the old snapshot lost u002")
	}
	now := s.db.Txn(false)
	if n := count(now); n != 500 {
		t.Fatalf("now %d rows, want 500 (one added, one deleted)", n)
	}
	if raw := get(now, "u777"); raw != nil {
		t.Fatal("the aborted write's row is visible")
	}
	var since []string
	rows, err := readRows(now, nil, tableUpdates)
	if err != nil {
		t.Fatal(err)
	}
	rows.since(10, func(row catalogRow) bool {
		since = append(since, row.(*Update).ID)
		return true
	})
	if fmt.Sprint(since) != "[u001 u999]" {
		t.Fatalf("changed since 10: %v", since)
	}
	// Key order, as memdb's id index gave it.
	prev := ""
	if err := rowEach(now, nil, tableUpdates, func(raw any) bool {
		id := raw.(*Update).ID
		if id <= prev {
			t.Fatalf("%q after %q", id, prev)
		}
		prev = id
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

// The bulletins-by-update map follows the bulletins of each version.
func TestBulletinsOfUpdate(t *testing.T) {
	s := newStore(t)
	put := func(id string, updates ...string) {
		t.Helper()
		mustWrite(t, s, func(txn *memdb.Txn) error {
			return rowInsert(txn, tableBulletins, &Bulletin{BulletinContent: BulletinContent{ID: id, UpdateIDs: updates}})
		})
	}
	of := func(txn *memdb.Txn, update string) string {
		t.Helper()
		bs, err := bulletinsOfUpdate(txn, update)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range bs {
			ids = append(ids, b.ID)
		}
		return fmt.Sprint(ids)
	}
	put("b1", "u1", "u2")
	put("b2", "u2")
	old := s.db.Txn(false)
	if got := of(old, "u2"); got != "[b1 b2]" {
		t.Fatalf("u2: %s", got)
	}
	put("b2", "u3")
	if got := of(s.db.Txn(false), "u2"); got != "[b1]" {
		t.Fatalf("u2 after b2 changed: %s", got)
	}
	if got := of(old, "u2"); got != "[b1 b2]" {
		t.Fatalf("u2 in the old version: %s", got)
	}
	// Inside a write transaction, after a change, the map is rebuilt.
	if err := s.write(func(txn *memdb.Txn) error {
		if got := of(txn, "u3"); got != "[b2]" {
			return fmt.Errorf("u3: %s", got)
		}
		if err := rowInsert(txn, tableBulletins, &Bulletin{BulletinContent: BulletinContent{ID: "b3", UpdateIDs: []string{"u3"}}}); err != nil {
			return err
		}
		if got := of(txn, "u3"); got != "[b2 b3]" {
			return fmt.Errorf("u3 after b3 in the same write: %s", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Readers walk a committed version while a writer clones and changes it (run with -race).
func TestRowSetConcurrentReaders(t *testing.T) {
	s := newStore(t)
	mustWrite(t, s, func(txn *memdb.Txn) error {
		for i := 0; i < 2000; i++ {
			if err := rowInsert(txn, tableUpdates, rowTestUpdate(fmt.Sprintf("u%04d", i), 1)); err != nil {
				return err
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				txn := s.db.Txn(false)
				n := 0
				if err := rowEach(txn, nil, tableUpdates, func(any) bool { n++; return true }); err != nil {
					t.Error(err)
					return
				}
				if n != 2000 {
					t.Errorf("a reader saw %d rows, want 2000 (writes replace rows)", n)
					return
				}
			}
		}()
	}
	for round := 2; round < 50; round++ {
		mustWrite(t, s, func(txn *memdb.Txn) error {
			for i := 0; i < 2000; i += 7 {
				if err := rowInsert(txn, tableUpdates, rowTestUpdate(fmt.Sprintf("u%04d", i), uint64(round))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
}

// Stores created side by side (a test binary's, a restore's) each take their first catalog
// write at the same time (run with -race): nothing of one table's rowSet is shared between them.
func TestRowSetFirstWritesOfSeparateStores(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := New()
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.write(func(txn *memdb.Txn) error {
				return rowInsert(txn, tableUpdates, rowTestUpdate("u1", 1))
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
