package store

import (
	"fmt"
	"sync"

	"github.com/google/btree"
	memdb "github.com/hashicorp/go-memdb"
)

// The catalog's rows (bulletins and updates) are not kept in memdb's radix trees: at 500,000
// updates those trees cost ~800 bytes of nodes and watch channels per row and index, five times
// the rows themselves. Each of the two tables is a rowSet instead: two copy-on-write B-trees (by
// id, and by ModifyIndex for the change index) of row pointers, ~40 bytes per row and tree.
//
// A rowSet is stored as one memdb row (tableCatalogRows, keyed by table name), so it is versioned
// with everything else: a read transaction sees the rowSet of its own snapshot, a write
// transaction clones the committed rowSet (O(1): the B-trees share nodes until written) on its
// first change and inserts the clone as the new row, and an aborted transaction drops its clone
// with the rest. A reader's watch set gets the holder row's channel: any change of the table
// wakes it (the table-level granularity memdb gives a table scan).
//
// Every access to a table goes through rowFirst, rowEach, rowInsert and rowDelete (and the
// helpers built on them), which send the row tables to their rowSet and the others to memdb.

// tableCatalogRows holds one catalogRows per row table. It is not in the snapshot: the rows are,
// under their own tables' snapshot bytes.
const tableCatalogRows = "catalog_rows"

// btreeDegree: nodes of 31..63 items.
const btreeDegree = 32

// catalogRow is a row kept in a rowSet.
type catalogRow interface {
	indexed
	rowKey() string
}

func (b *Bulletin) rowKey() string { return b.ID }
func (u *Update) rowKey() string   { return u.ID }

// rowItem is an entry of a rowSet's tree: the row's key (or, by modify index, its ModifyIndex
// and key) beside the row, so that comparisons read strings in place instead of calling
// through the row's interface, and a lookup's probe lives on the stack.
type rowItem struct {
	mod uint64 // ModifyIndex; 0 in the by-key tree
	key string
	row catalogRow
}

func lessByKey(a, b rowItem) bool { return a.key < b.key }

func lessByModify(a, b rowItem) bool {
	if a.mod != b.mod {
		return a.mod < b.mod
	}
	return a.key < b.key
}

// rowSet is one version of a row table. Once its holder row is committed it is never changed:
// a writer changes a clone.
type rowSet struct {
	byKey    *btree.BTreeG[rowItem]
	byModify *btree.BTreeG[rowItem]

	// derived caches what is computed from a committed version (bulletinsOfUpdate).
	derivedMu sync.Mutex
	derived   map[string][]*Bulletin
}

func newRowSet() *rowSet {
	return &rowSet{byKey: btree.NewG(btreeDegree, lessByKey), byModify: btree.NewG(btreeDegree, lessByModify)}
}

func (r *rowSet) clone() *rowSet {
	return &rowSet{byKey: r.byKey.Clone(), byModify: r.byModify.Clone()}
}

func (r *rowSet) get(key string) catalogRow {
	it, _ := r.byKey.Get(rowItem{key: key})
	return it.row
}

// put inserts row, replacing the row with the same key.
func (r *rowSet) put(row catalogRow) {
	key := row.rowKey()
	if old, ok := r.byKey.ReplaceOrInsert(rowItem{key: key, row: row}); ok {
		r.byModify.Delete(rowItem{mod: old.row.raftIndex().ModifyIndex, key: key})
	}
	r.byModify.ReplaceOrInsert(rowItem{mod: row.raftIndex().ModifyIndex, key: key, row: row})
	r.derived = nil
}

// remove deletes the row with key; it reports whether there was one.
func (r *rowSet) remove(key string) bool {
	old, ok := r.byKey.Delete(rowItem{key: key})
	if ok {
		r.byModify.Delete(rowItem{mod: old.row.raftIndex().ModifyIndex, key: key})
		r.derived = nil
	}
	return ok
}

// ascend calls fn for every row in key order until fn returns false.
func (r *rowSet) ascend(fn func(catalogRow) bool) {
	r.byKey.Ascend(func(it rowItem) bool { return fn(it.row) })
}

// catalogRows is the memdb row holding a table's rowSet. owner is the write transaction that
// made rows: only that transaction may change it in place.
type catalogRows struct {
	Table string
	rows  *rowSet
	owner *memdb.Txn
}

// isRowTable reports whether table is kept in a rowSet.
func isRowTable(table string) bool { return table == tableBulletins || table == tableUpdates }

// readRows returns table's rowSet in txn and adds its holder's watch channel to ws.
func readRows(txn *memdb.Txn, ws memdb.WatchSet, table string) (*rowSet, error) {
	ch, rows, err := watchRows(txn, table)
	ws.Add(ch)
	return rows, err
}

// watchRows returns table's rowSet in txn and the channel that fires when it changes.
func watchRows(txn *memdb.Txn, table string) (<-chan struct{}, *rowSet, error) {
	ch, raw, err := txn.FirstWatch(tableCatalogRows, "id", table)
	if err != nil {
		return nil, nil, fmt.Errorf("%s rows: %w", table, err)
	}
	if raw == nil {
		return ch, emptyRows, nil
	}
	return ch, raw.(*catalogRows).rows, nil
}

// emptyRows is what readers see of a table never written. It is shared by every store, so it is
// never written nor cloned (a clone changes its original's copy-on-write context).
var emptyRows = newRowSet()

// writeRows returns table's rowSet for changing in write transaction txn: the committed one is
// cloned, once per transaction (a new one for a table never written).
func writeRows(txn *memdb.Txn, table string) (*rowSet, error) {
	raw, err := txn.First(tableCatalogRows, "id", table)
	if err != nil {
		return nil, fmt.Errorf("%s rows: %w", table, err)
	}
	var rows *rowSet
	if raw == nil {
		rows = newRowSet()
	} else {
		held := raw.(*catalogRows)
		if held.owner == txn {
			return held.rows, nil // this transaction's own copy, already made
		}
		rows = held.rows.clone()
	}
	holder := &catalogRows{Table: table, rows: rows, owner: txn}
	if err := txn.Insert(tableCatalogRows, holder); err != nil {
		return nil, fmt.Errorf("%s rows: %w", table, err)
	}
	return holder.rows, nil
}

// rowFirstWatch reads one row of any table by primary key (nil when there is none) with the
// channel that fires when it changes.
func rowFirstWatch(txn *memdb.Txn, table, id string) (<-chan struct{}, any, error) {
	if !isRowTable(table) {
		return txn.FirstWatch(table, "id", id)
	}
	ch, rows, err := watchRows(txn, table)
	if err != nil {
		return nil, nil, err
	}
	return ch, rows.get(id), nil // a missing row is a nil catalogRow, which is a nil any
}

// rowFirst reads one row of any table by primary key, or nil.
func rowFirst(txn *memdb.Txn, table, id string) (any, error) {
	_, row, err := rowFirstWatch(txn, table, id)
	return row, err
}

// rowEach calls fn for every row of any table in primary-key order until fn returns false, and
// adds the table's watch channel to ws.
func rowEach(txn *memdb.Txn, ws memdb.WatchSet, table string, fn func(any) bool) error {
	if !isRowTable(table) {
		it, err := txn.Get(table, "id")
		if err != nil {
			return fmt.Errorf("%s list: %w", table, err)
		}
		ws.Add(it.WatchCh())
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if !fn(raw) {
				return nil
			}
		}
		return nil
	}
	rows, err := readRows(txn, ws, table)
	if err != nil {
		return err
	}
	rows.ascend(func(row catalogRow) bool { return fn(row) })
	return nil
}

// rowCount counts the rows of any table.
func rowCount(txn *memdb.Txn, table string) (int, error) {
	if isRowTable(table) {
		rows, err := readRows(txn, nil, table)
		if err != nil {
			return 0, err
		}
		return rows.byKey.Len(), nil
	}
	n := 0
	err := rowEach(txn, nil, table, func(any) bool { n++; return true })
	return n, err
}

// rowInsert inserts row into any table, replacing the row with the same primary key.
func rowInsert(txn *memdb.Txn, table string, row any) error {
	if !isRowTable(table) {
		return txn.Insert(table, row)
	}
	return (&txnRows{txn: txn, table: table}).insert(row)
}

// rowDelete deletes row from any table; a missing row is memdb.ErrNotFound, as memdb says.
func rowDelete(txn *memdb.Txn, table string, row any) error {
	if !isRowTable(table) {
		return txn.Delete(table, row)
	}
	return (&txnRows{txn: txn, table: table}).delete(row)
}

// txnRows is a write transaction's hold on one row table, for changing many of its rows: its
// row set is looked up once, not once per row (two memdb lookups a row, on every server, for
// every publish entry). Reads see the committed set until the first change, then the
// transaction's own copy, which writeRows makes once.
type txnRows struct {
	txn         *memdb.Txn
	table       string
	read, write *rowSet
}

// get returns the row with key id, or nil.
func (r *txnRows) get(id string) (any, error) {
	if r.write != nil {
		return r.write.get(id), nil
	}
	if r.read == nil {
		var err error
		if r.read, err = readRows(r.txn, nil, r.table); err != nil {
			return nil, err
		}
	}
	return r.read.get(id), nil
}

// insert inserts row, replacing the row with the same key.
func (r *txnRows) insert(row any) error {
	rows, cr, err := r.writable(row)
	if err != nil {
		return err
	}
	rows.put(cr)
	return nil
}

// delete deletes row; a missing row is memdb.ErrNotFound, as memdb says.
func (r *txnRows) delete(row any) error {
	rows, cr, err := r.writable(row)
	if err != nil {
		return err
	}
	if !rows.remove(cr.rowKey()) {
		return memdb.ErrNotFound
	}
	return nil
}

// writable returns the transaction's copy of the row set for a change of row, which must be a
// row of the table.
func (r *txnRows) writable(row any) (*rowSet, catalogRow, error) {
	cr, ok := row.(catalogRow)
	if !ok {
		return nil, nil, fmt.Errorf("%s: a %T is not a row of it", r.table, row)
	}
	if r.write == nil {
		var err error
		if r.write, err = writeRows(r.txn, r.table); err != nil {
			return nil, nil, err
		}
	}
	return r.write, cr, nil
}

// since calls fn for every row with ModifyIndex > after, in modify-index order (then key
// order), until fn returns false.
func (r *rowSet) since(after uint64, fn func(catalogRow) bool) {
	if after == ^uint64(0) {
		return // nothing is above the largest index
	}
	r.byModify.AscendGreaterOrEqual(rowItem{mod: after + 1}, func(it rowItem) bool { return fn(it.row) })
}

// bulletinsOfUpdate lists the bulletins naming update id, from a map built once per version of
// the bulletins table (what memdb's multi-valued index on UpdateIDs did, at a fraction of its
// memory: only when compliance asks, and one slice entry per reference).
func bulletinsOfUpdate(txn *memdb.Txn, id string) ([]*Bulletin, error) {
	rows, err := readRows(txn, nil, tableBulletins)
	if err != nil {
		return nil, err
	}
	return rows.bulletinsOf(id), nil
}

// bulletinsOf is bulletinsOfUpdate in a bulletins row set already at hand.
func (r *rowSet) bulletinsOf(id string) []*Bulletin {
	r.derivedMu.Lock()
	defer r.derivedMu.Unlock()
	if r.derived == nil {
		m := make(map[string][]*Bulletin, r.byKey.Len()*8)
		r.ascend(func(row catalogRow) bool {
			b := row.(*Bulletin)
			for _, uid := range b.UpdateIDs {
				m[uid] = append(m[uid], b)
			}
			return true
		})
		r.derived = m
	}
	return r.derived[id]
}
