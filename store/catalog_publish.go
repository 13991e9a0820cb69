package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// Publishing a catalog version in bounded entries.
//
// An import stages and publishes its batches one Raft entry per batch (PublishCatalog) straight
// into the bulletins, updates and tombstones tables, and a final small entry (SwitchCatalog)
// records the version. The version is the index of the first publish entry (the publish's
// Begin), and every row the publish writes carries it as its ModifyIndex (and tombstones as their
// index), as rows an import commits in one entry carry that entry's: a row's ModifyIndex is the
// version that changed it, and a child at an older version pulls exactly those rows. Nothing
// else changes catalog rows between Begin and the switch, so no row carries an index in between. While a version is being published, catalog readers
// (Catalog, Bulletin, Update, CatalogView) read a memdb snapshot taken just before the first
// publish entry: the published version, whole. The switch makes the new one visible at once.
// Other writes go on between the publish entries; writes that change catalog rows themselves
// (administrator's fields, severity levels, tombstone collection, another import's commit) are
// refused with ErrConflict until the switch (checkNotPublishing).
//
// An abort takes the published batches back out one entry per batch (UnpublishCatalog): every
// row a batch touched gets its published copy back from the snapshot.
//
// Snapshots: while a version is being published, a store snapshot holds the bulletins, updates
// and tombstones of the published version (the frozen view), and everything else as it is,
// staged batches included, each marked with the index of the entry that published it. Restore
// takes its frozen view from the restored rows and publishes the marked batches again
// (resumePublish), which rebuilds exactly the rows the publish entries had written.

// settingPublish is the settings key of the publish in progress (publishState).
const settingPublish = "catalog_publish"

// publishState is the publish in progress: its run, how many batches it has published, and the
// changes to the catalog's counts and tag digests that the switch will record.
type publishState struct {
	RunID      string            `json:"run_id"`
	Begin      uint64            `json:"begin"`
	Batches    int               `json:"batches"`
	Bulletins  int               `json:"bulletins"`
	Updates    int               `json:"updates"`
	Catalog    bool              `json:"catalog,omitempty"`
	Tombstones bool              `json:"tombstones,omitempty"`
	Tags       map[string]Digest `json:"tags,omitempty"`
}

// PublishProgress is how far a run's publish is: its staged batches, how many of them are
// published, and the rows the entry that answered wrote.
type PublishProgress struct {
	Batches   int `json:"batches"`
	Published int `json:"published"`
	Rows      int `json:"rows"`
}

// Done reports whether every staged batch is published.
func (p *PublishProgress) Done() bool { return p.Published >= p.Batches }

// publishGate holds the frozen view of the published catalog while a version is being
// published. It is set before the first publish entry commits and cleared after the switch (or
// the last unpublish) commits, so a reader either sees the live tables while they still hold the
// published version, or the frozen view.
type publishGate struct {
	mu     sync.RWMutex
	frozen *memdb.MemDB
	done   chan struct{} // closed when the publish ends: watchers of the frozen view wake
}

// publishedTables are the tables a store snapshot takes from the frozen view.
var publishedTables = map[string]bool{tableBulletins: true, tableUpdates: true, tableTombstones: true}

// freeze takes the frozen view of the catalog as it is now.
func (s *Store) freeze() {
	s.publish.mu.Lock()
	s.publish.frozen, s.publish.done = s.db.Snapshot(), make(chan struct{})
	s.publish.mu.Unlock()
}

// thaw drops the frozen view: catalog readers read the live tables again.
func (s *Store) thaw() {
	s.publish.mu.Lock()
	if s.publish.frozen != nil {
		s.publish.frozen = nil
		close(s.publish.done)
	}
	s.publish.mu.Unlock()
}

// catalogRead returns the transaction catalog readers read and the watch set to read it with.
// During a publish that is the frozen view, whose rows' watch channels the publish entries close
// (they share radix nodes with the live tables), so the reader watches the publish's end instead.
func (s *Store) catalogRead(ws memdb.WatchSet) (*memdb.Txn, memdb.WatchSet) {
	s.publish.mu.RLock()
	frozen, done := s.publish.frozen, s.publish.done
	s.publish.mu.RUnlock()
	if frozen == nil {
		return s.db.Txn(false), ws
	}
	ws.Add(done)
	return frozen.Txn(false), nil
}

// snapshotTxns returns a read transaction of the live store and, while a version is being
// published, one of the frozen view (else nil), taken together.
func (s *Store) snapshotTxns() (live, frozen *memdb.Txn, err error) {
	s.publish.mu.RLock()
	defer s.publish.mu.RUnlock()
	live = s.db.Txn(false)
	if s.publish.frozen == nil {
		return live, nil, nil
	}
	st, err := getPublish(live)
	if err != nil {
		return live, nil, fmt.Errorf("read the catalog publish in progress: %w", err)
	}
	if st == nil {
		return live, nil, nil // the publish began or ended between the two: the live tables are whole
	}
	return live, s.publish.frozen.Txn(false), nil
}

// tableTxn is the transaction a snapshot reads table from.
func (snap *Snapshot) tableTxn(table string) *memdb.Txn {
	if snap.frozen != nil && publishedTables[table] {
		return snap.frozen
	}
	return snap.txn
}

// publishedCounts counts the rows of every table as a snapshot holds them: the published
// tables from the frozen view while a version is being published.
func (snap *Snapshot) publishedCounts() (map[string]int, error) {
	if snap.err != nil {
		return nil, snap.err
	}
	counts, err := tableCounts(snap.txn)
	if err != nil || snap.frozen == nil {
		return counts, err
	}
	frozen, err := tableCounts(snap.frozen)
	if err != nil {
		return nil, err
	}
	for table := range publishedTables {
		counts[table] = frozen[table]
	}
	return counts, nil
}

func getPublish(txn *memdb.Txn) (*publishState, error) {
	var st publishState
	found, err := getSetting(txn, nil, settingPublish, &st)
	if err != nil || !found {
		return nil, err
	}
	return &st, nil
}

// checkNotPublishing refuses a write that changes catalog rows while a version is being
// published: the publish's frozen view and its abort assume nothing else changes them.
func checkNotPublishing(txn *memdb.Txn) error {
	st, err := getPublish(txn)
	if err != nil {
		return err
	}
	if st != nil {
		return fmt.Errorf("the catalog version of import %s is being published; retry when it is visible: %w", st.RunID, ErrConflict)
	}
	return nil
}

// Publishing reports the run whose catalog version is being published ("" when none).
func (s *Store) Publishing() (string, error) {
	st, err := getPublish(s.db.Txn(false))
	if err != nil || st == nil {
		return "", err
	}
	return st.RunID, nil
}

// PublishCatalog writes the next staged batch of run runID (in staging order) into the catalog
// tables, hidden from readers until SwitchCatalog. With a batch (as EncodeBatch made it), the
// entry stages that batch and publishes it at once; every batch staged before must be published.
// The first call begins the publish; a run whose batches are all published is answered
// without a write.
func (s *Store) PublishCatalog(idx uint64, runID string, batch []byte) (*PublishProgress, error) {
	if runID == "" || strings.Contains(runID, "/") {
		return nil, fmt.Errorf("published batch needs a run id without '/', not %q: %w", runID, ErrInvalid)
	}
	running, err := s.Publishing()
	if err != nil {
		return nil, err
	}
	begin := running == ""
	if begin {
		s.freeze()
	}
	var prog PublishProgress
	err = s.write(func(txn *memdb.Txn) error {
		st, err := getPublish(txn)
		if err != nil {
			return err
		}
		if st != nil && st.RunID != runID {
			return fmt.Errorf("cannot publish import %s: %w", runID, checkNotPublishing(txn))
		}
		staged, err := stagedBatches(txn, runID)
		if err != nil {
			return err
		}
		prog.Batches = len(staged)
		var next *stagedBatch
		for _, row := range staged {
			if row.PublishedAt == 0 {
				next = row
				break
			}
			prog.Published++
		}
		switch {
		case batch != nil && next != nil:
			return fmt.Errorf("import %s: staged batch %s is not published yet: %w", runID, next.Key, ErrConflict)
		case batch != nil:
			next = &stagedBatch{Key: fmt.Sprintf("%s/%020d", runID, idx), RunID: runID, Batch: batch}
			prog.Batches++
		case len(staged) == 0:
			return fmt.Errorf("import %s has no staged batches to publish: %w", runID, ErrNotFound)
		case next == nil:
			return errNothingToWrite
		}
		if st == nil {
			st = &publishState{RunID: runID, Begin: idx}
		}
		b, err := decodeBatch(next.Batch)
		if err != nil {
			return fmt.Errorf("decode staged batch %s: %v: %w", next.Key, err, ErrInvalid)
		}
		if b.Replica {
			return fmt.Errorf("staged batch %s is a replica's: it commits with CommitCatalog: %w", next.Key, ErrInvalid)
		}
		d := catalogDelta{tags: tagDelta{}}
		if err := d.apply(txn, st.Begin, b); err != nil {
			return err
		}
		st.add(&d, b)
		st.Batches++
		prog.Published++
		prog.Rows = batchRows(b)
		row := *next
		row.PublishedAt = idx
		if err := upsertRow(txn, tableStaged, idx, row.Key, &row); err != nil {
			return err
		}
		return putSetting(txn, idx, settingPublish, st)
	})
	if err != nil && begin {
		s.thaw() // nothing was published: the live tables are the published version
	}
	if errors.Is(err, errNothingToWrite) {
		return &prog, nil
	}
	if err != nil {
		return nil, err
	}
	return &prog, nil
}

// errNothingToWrite ends a write transaction that has nothing to change.
var errNothingToWrite = errors.New("nothing to write")

// batchRows counts the rows a batch writes or removes.
func batchRows(b *CatalogBatch) int {
	return len(b.Bulletins) + len(b.Updates) + len(b.DeleteBulletins) + len(b.DeleteUpdates)
}

// add folds one batch's changes into the publish.
func (st *publishState) add(d *catalogDelta, b *CatalogBatch) {
	st.Bulletins += d.bulletins
	st.Updates += d.updates
	st.Catalog = st.Catalog || b.HasCatalog()
	st.Tombstones = st.Tombstones || b.Tombstones
	if st.Tags == nil {
		st.Tags = map[string]Digest{}
	}
	for tag, dg := range d.tags {
		sum := st.Tags[tag]
		sum.AddDigest(*dg)
		st.Tags[tag] = sum
	}
}

// SwitchCatalog makes the version run published visible: it records the counts, tag digests
// and version, revises policies and compliance as CommitCatalog does, records the run and the
// source's state, and drops the staged batches. Every staged batch must have been published.
func (s *Store) SwitchCatalog(idx uint64, run *ImportRun, src *SourceState) error {
	err := s.write(func(txn *memdb.Txn) error {
		st, err := getPublish(txn)
		if err != nil {
			return err
		}
		if st == nil || st.RunID != run.ID {
			return fmt.Errorf("import %s is not being published: %w", run.ID, ErrConflict)
		}
		staged, err := stagedBatches(txn, run.ID)
		if err != nil {
			return err
		}
		for _, row := range staged {
			if row.PublishedAt == 0 {
				return fmt.Errorf("import %s: staged batch %s is not published yet: %w", run.ID, row.Key, ErrConflict)
			}
			if err := txn.Delete(tableStaged, row); err != nil {
				return fmt.Errorf("unstage %s: %w", row.Key, err)
			}
		}
		if err := bumpIndex(txn, tableStaged, idx); err != nil {
			return err
		}
		if err := deleteRow(txn, tableSettings, idx, settingPublish); err != nil {
			return err
		}
		d := catalogDelta{bulletins: st.Bulletins, updates: st.Updates, tags: tagDelta{}, tombstones: st.Tombstones}
		for tag, dg := range st.Tags {
			dg := dg
			d.tags[tag] = &dg
		}
		return finishCommit(txn, idx, st.Begin, run, src, &d, st.Catalog, false, false)
	})
	if err != nil {
		return err
	}
	s.thaw()
	return nil
}

// UnpublishCatalog takes the last published batch of run runID back out of the catalog tables:
// every row it wrote or removed gets its published copy back. The entry that takes out the last
// one ends the publish; AbortCatalog then drops the staged batches.
func (s *Store) UnpublishCatalog(idx uint64, runID string) (*PublishProgress, error) {
	s.publish.mu.RLock()
	frozen := s.publish.frozen
	s.publish.mu.RUnlock()
	var prog PublishProgress
	ended := false
	err := s.write(func(txn *memdb.Txn) error {
		st, err := getPublish(txn)
		if err != nil {
			return err
		}
		if st == nil || st.RunID != runID {
			return errNothingToWrite
		}
		if frozen == nil {
			return fmt.Errorf("import %s is being published but the published view is missing", runID)
		}
		staged, err := stagedBatches(txn, runID)
		if err != nil {
			return err
		}
		prog.Batches = len(staged)
		var last *stagedBatch
		for _, row := range staged {
			if row.PublishedAt != 0 {
				last = row
				prog.Published++
			}
		}
		if last != nil {
			b, err := decodeBatch(last.Batch)
			if err != nil {
				return fmt.Errorf("decode staged batch %s: %v: %w", last.Key, err, ErrInvalid)
			}
			d := catalogDelta{tags: tagDelta{}}
			if err := d.revert(txn, frozen.Txn(false), b); err != nil {
				return err
			}
			st.add(&d, b)
			st.Batches--
			prog.Published--
			prog.Rows = batchRows(b)
			row := *last
			row.PublishedAt = 0
			if err := upsertRow(txn, tableStaged, idx, row.Key, &row); err != nil {
				return err
			}
		}
		if prog.Published > 0 {
			return putSetting(txn, idx, settingPublish, st)
		}
		ended = true
		return deleteRow(txn, tableSettings, idx, settingPublish)
	})
	if errors.Is(err, errNothingToWrite) {
		return &prog, nil
	}
	if err != nil {
		return nil, err
	}
	if ended {
		s.thaw()
	}
	return &prog, nil
}

// revert gives every row batch b touched its copy in the published view (from), accumulating
// the inverse changes of counts and tag digests.
func (d *catalogDelta) revert(txn, from *memdb.Txn, b *CatalogBatch) error {
	var bulletins, updates []string
	for _, r := range b.Bulletins {
		bulletins = append(bulletins, r.ID)
	}
	for _, r := range b.Updates {
		updates = append(updates, r.ID)
	}
	bulletins = append(bulletins, b.DeleteBulletins...)
	updates = append(updates, b.DeleteUpdates...)
	for _, id := range bulletins {
		live, old, err := revertRow(txn, from, tableBulletins, id)
		if err != nil {
			return err
		}
		lb, ob := asBulletin(live), asBulletin(old)
		d.tags.bulletin(lb, ob)
		d.bulletins += presence(old) - presence(live)
		if b.Tombstones {
			if _, _, err := revertRow(txn, from, tableTombstones, tombstoneKey("bulletin", id, "")); err != nil {
				return err
			}
		}
	}
	for _, id := range updates {
		live, old, err := revertRow(txn, from, tableUpdates, id)
		if err != nil {
			return err
		}
		lu, ou := asUpdate(live), asUpdate(old)
		d.tags.update(lu, ou)
		d.updates += presence(old) - presence(live)
		if b.Tombstones && ou != nil {
			key := tombstoneKey("update", id, strings.ToLower(ou.Language))
			if _, _, err := revertRow(txn, from, tableTombstones, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// revertRow puts the row with the given id back as it is in from (or removes it when from has
// none), returning the live row it replaced and the restored one.
func revertRow(txn, from *memdb.Txn, table, id string) (live, old any, err error) {
	if live, err = rowFirst(txn, table, id); err != nil {
		return nil, nil, fmt.Errorf("%s lookup %q: %w", table, id, err)
	}
	if old, err = rowFirst(from, table, id); err != nil {
		return nil, nil, fmt.Errorf("published %s lookup %q: %w", table, id, err)
	}
	switch {
	case old != nil:
		err = rowInsert(txn, table, old)
	case live != nil:
		err = rowDelete(txn, table, live)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s revert %q: %w", table, id, err)
	}
	return live, old, nil
}

func presence(row any) int {
	if row == nil {
		return 0
	}
	return 1
}

func asBulletin(row any) *Bulletin {
	if row == nil {
		return nil
	}
	return row.(*Bulletin)
}

func asUpdate(row any) *Update {
	if row == nil {
		return nil
	}
	return row.(*Update)
}

// resumePublish, after a restore, takes the frozen view from the restored catalog (the
// published version) and writes the batches the publish had written again, in staging order and
// stamped with the publish's Begin as the publish entries stamped them.
func (s *Store) resumePublish() error {
	txn := s.db.Txn(false)
	st, err := getPublish(txn)
	if err != nil || st == nil {
		return err
	}
	staged, err := stagedBatches(txn, st.RunID)
	if err != nil {
		return err
	}
	s.freeze()
	return s.write(func(txn *memdb.Txn) error {
		for _, row := range staged {
			if row.PublishedAt == 0 {
				continue
			}
			b, err := decodeBatch(row.Batch)
			if err != nil {
				return fmt.Errorf("restore: decode staged batch %s: %v: %w", row.Key, err, ErrCorruptSnapshot)
			}
			d := catalogDelta{tags: tagDelta{}} // the counts are in the restored publishState
			if err := d.apply(txn, st.Begin, b); err != nil {
				return fmt.Errorf("restore: publish staged batch %s again: %w", row.Key, err)
			}
		}
		return nil
	})
}
