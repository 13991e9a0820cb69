package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// The catalog's change index: bulletins and updates are ordered by their ModifyIndex in their
// rowSets (catalog_rows.go), and tombstones by the index at which their record left a view (the
// "modify" memdb index, see schema.go), so that a differential replication run from cursor C
// reads only the rows written after C instead of scanning the catalog.

// indexModify is the name of the tombstones table's change index.
const indexModify = "modify"

// modifyIndex is the change index of a memdb table: non-unique, ordered by the uint64 field (memdb
// encodes it big-endian, so the radix order is the numeric order).
func modifyIndex(field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: indexModify, Indexer: &memdb.UintFieldIndex{Field: field}}
}

// BulletinsSince calls fn for every bulletin with ModifyIndex > after, in modify-index order
// (then id order), until fn returns false.
func (v *CatalogView) BulletinsSince(after uint64, fn func(*Bulletin) bool) error {
	v.bulletins.since(after, func(row catalogRow) bool { return fn(row.(*Bulletin)) })
	return nil
}

// UpdatesSince calls fn for every update with ModifyIndex > after, in modify-index order (then
// id order), until fn returns false.
func (v *CatalogView) UpdatesSince(after uint64, fn func(*Update) bool) error {
	v.updates.since(after, func(row catalogRow) bool { return fn(row.(*Update)) })
	return nil
}

// TombstonesSince calls fn for every tombstone with Index > after (the rows Tombstones lists),
// in index order (then key order), until fn returns false.
func (v *CatalogView) TombstonesSince(after uint64, fn func(*Tombstone) bool) error {
	return eachSince(v.txn, tableTombstones, after, func(raw any) bool { return fn(raw.(*Tombstone)) })
}

// eachSince walks table's change index from after+1 upwards: a seek, then only the rows above.
func eachSince(txn *memdb.Txn, table string, after uint64, fn func(any) bool) error {
	if after == ^uint64(0) {
		return nil // nothing is above the largest index
	}
	it, err := txn.LowerBound(table, indexModify, after+1)
	if err != nil {
		return fmt.Errorf("%s changed since %d: %w", table, after, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !fn(raw) {
			return nil
		}
	}
	return nil
}
