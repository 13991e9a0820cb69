package store

import memdb "github.com/hashicorp/go-memdb"

// TableIndexes returns, for each named table, the Raft index of the last write to it (0: never
// written, or no such table), read in one transaction, and adds each table's index row to ws:
// ws fires on the next write to any of them. Watchers of the whole state (the console's event
// stream) wait on it instead of reading the tables themselves.
func (s *Store) TableIndexes(ws memdb.WatchSet, tableNames ...string) []uint64 {
	txn := s.db.Txn(false)
	out := make([]uint64, len(tableNames))
	for i, name := range tableNames {
		out[i] = txnIndexValue(txn, ws, name)
	}
	return out
}
