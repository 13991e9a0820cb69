package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// RaftIndex is embedded in every stored row: the Raft index that created the row and the one
// that last changed it.
type RaftIndex struct {
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// indexed is implemented by every row type through its embedded RaftIndex.
type indexed interface {
	raftIndex() *RaftIndex
}

func (r *RaftIndex) raftIndex() *RaftIndex { return r }

// IndexEntry is a row of the index table: the highest Raft index that wrote a table.
type IndexEntry struct {
	Key   string `json:"key"`
	Value uint64 `json:"value"`
}

// upsertRow inserts row into table, keeping CreateIndex from an existing row with the same id
// and stamping ModifyIndex = idx, then bumps the table's entry in the index table.
func upsertRow(txn *memdb.Txn, table string, idx uint64, id string, row indexed) error {
	if err := putRow(txn, table, idx, id, row); err != nil {
		return err
	}
	return bumpIndex(txn, table, idx)
}

// putRow is upsertRow without the index bump, for bulk writes that bump once at the end.
func putRow(txn *memdb.Txn, table string, idx uint64, id string, row indexed) error {
	existing, err := rowFirst(txn, table, id)
	if err != nil {
		return fmt.Errorf("%s lookup %q: %w", table, id, err)
	}
	ri := row.raftIndex()
	if existing != nil {
		ri.CreateIndex = existing.(indexed).raftIndex().CreateIndex
	} else {
		ri.CreateIndex = idx
	}
	ri.ModifyIndex = idx
	if err := rowInsert(txn, table, row); err != nil {
		return fmt.Errorf("%s insert %q: %w", table, id, err)
	}
	return nil
}

// deleteRow removes the row with the given id from table and bumps the table's index.
// A missing row is ErrNotFound.
func deleteRow(txn *memdb.Txn, table string, idx uint64, id string) error {
	existing, err := rowFirst(txn, table, id)
	if err != nil {
		return fmt.Errorf("%s lookup %q: %w", table, id, err)
	}
	if existing == nil {
		return fmt.Errorf("%s %q: %w", table, id, ErrNotFound)
	}
	if err := rowDelete(txn, table, existing); err != nil {
		return fmt.Errorf("%s delete %q: %w", table, id, err)
	}
	return bumpIndex(txn, table, idx)
}

// bumpIndex records idx as the latest write to table.
func bumpIndex(txn *memdb.Txn, table string, idx uint64) error {
	if err := txn.Insert(tableIndex, &IndexEntry{Key: table, Value: idx}); err != nil {
		return fmt.Errorf("index update for %s: %w", table, err)
	}
	return nil
}
