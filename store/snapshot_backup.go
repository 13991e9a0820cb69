package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// TableCounts returns the number of rows of every table in the snapshot's view, keyed by table
// name (tables without rows included, with 0). A backup records it in its header.
func (snap *Snapshot) TableCounts() (map[string]int, error) {
	return snap.publishedCounts()
}

// Site returns the site identity in the snapshot's view (nil before the site is initialised).
func (snap *Snapshot) Site() (*SiteInfo, error) {
	var info SiteInfo
	found, err := getSetting(snap.txn, nil, SettingSite, &info)
	if !found || err != nil {
		return nil, err
	}
	return &info, nil
}

// LatestIndex returns the highest Raft index recorded in any table of the snapshot's view.
func (snap *Snapshot) LatestIndex() uint64 {
	it, err := snap.txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var highest uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		highest = max(highest, raw.(*IndexEntry).Value)
	}
	return highest
}

func tableCounts(txn *memdb.Txn) (map[string]int, error) {
	counts := make(map[string]int, len(tables))
	for _, t := range tables {
		n, err := rowCount(txn, t.name)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", t.name, err)
		}
		counts[t.name] = n
	}
	return counts, nil
}
