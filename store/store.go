// Package store holds patchtree's replicated state: a go-memdb schema, typed write transactions
// stamped with Raft indexes, typed reads with watch sets, snapshots and a state digest. It does
// not import Raft: node's FSM calls it with the index of each applied log entry.
package store

import (
	"fmt"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// Store is the in-memory state of one site. Rows returned by reads are shared with the store and
// must be treated as read-only: copy before changing.
type Store struct {
	db *memdb.MemDB

	abandonOnce sync.Once
	abandonCh   chan struct{}

	// skippedRecords counts the ignorable records of unknown types Restore skipped.
	skippedRecords uint64

	// publish holds the published catalog while a new version is being published (catalog_publish.go).
	publish publishGate

	// audit is the audit entry of the write being applied (Audited); only the FSM writes.
	audit *pendingAudit
}

// New returns an empty store.
func New() (*Store, error) {
	db, err := memdb.NewMemDB(dbSchema())
	if err != nil {
		return nil, fmt.Errorf("create memdb: %w", err)
	}
	return &Store{db: db, abandonCh: make(chan struct{})}, nil
}

// AbandonCh is closed when the store is replaced by a restore; blocked queries watch it so they
// wake up and re-read from the new store.
func (s *Store) AbandonCh() <-chan struct{} { return s.abandonCh }

// Abandon marks the store as replaced. It is safe to call more than once.
func (s *Store) Abandon() { s.abandonOnce.Do(func() { close(s.abandonCh) }) }

// write runs fn in a write transaction and commits it only if fn succeeds.
func (s *Store) write(fn func(txn *memdb.Txn) error) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if err := fn(txn); err != nil {
		return err
	}
	if err := s.takeAudit(txn); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// Index returns the highest Raft index that wrote the given tables (0 if none did).
func (s *Store) Index(tableNames ...string) uint64 {
	txn := s.db.Txn(false)
	var max uint64
	for _, name := range tableNames {
		raw, err := txn.First(tableIndex, "id", name)
		if err == nil && raw != nil {
			if v := raw.(*IndexEntry).Value; v > max {
				max = v
			}
		}
	}
	return max
}

// LatestIndex returns the highest Raft index recorded in any table.
func (s *Store) LatestIndex() uint64 {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var max uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if v := raw.(*IndexEntry).Value; v > max {
			max = v
		}
	}
	return max
}

// first reads one row by primary key, adding its watch channel to ws. It returns nil when the
// row does not exist.
func first(txn *memdb.Txn, ws memdb.WatchSet, table, id string) (any, error) {
	ch, raw, err := rowFirstWatch(txn, table, id)
	if err != nil {
		return nil, fmt.Errorf("%s lookup %q: %w", table, id, err)
	}
	ws.Add(ch)
	return raw, nil
}

// all lists every row of table in primary-key order, adding the table's watch channel to ws.
func all[T any](txn *memdb.Txn, ws memdb.WatchSet, table string) ([]T, error) {
	var out []T
	err := rowEach(txn, ws, table, func(raw any) bool {
		out = append(out, raw.(T))
		return true
	})
	return out, err
}
