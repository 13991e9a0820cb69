package store

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"patchtree/iocount"

	memdb "github.com/hashicorp/go-memdb"
)

// Snapshot stream layout (before node compresses it):
//
//	magic "PTSNAP1\n"
//	repeated: [table snapID byte][uvarint length][JSON row]
//	trailer:  [0x00][uvarint total row count]
//
// The trailer makes a truncated stream an error instead of a silently smaller state.
//
// A snapID with IgnoreUnknownRecordFlag set marks a table that an older server may leave out
// of its restored state when it does not know it (the same rule as node.IgnoreUnknownTypeFlag
// for log entries). An unknown snapID without it fails the restore with ErrUnknownRecord.
const snapshotMagic = "PTSNAP1\n"

// IgnoreUnknownRecordFlag is the high bit of a snapshot record's table byte; see above. Tables
// whose rows every older server may lack without harm carry it in their snapID.
const IgnoreUnknownRecordFlag byte = 0x80

// maxSnapshotRecord bounds one decoded record, so a corrupt length cannot exhaust memory.
const maxSnapshotRecord = 64 << 20

// Snapshot is a consistent point-in-time view of the store; it stays valid while the store
// keeps changing.
type Snapshot struct {
	txn *memdb.Txn
	// frozen is the published catalog while a version is being published (catalog_publish.go).
	frozen *memdb.Txn
	// err is why the view could not be taken; every read of the snapshot returns it.
	err error
}

// Snapshot takes a point-in-time view. It is cheap: memdb is an immutable radix tree.
func (s *Store) Snapshot() *Snapshot {
	live, frozen, err := s.snapshotTxns()
	return &Snapshot{txn: live, frozen: frozen, err: err}
}

// each calls fn for every row of every table in snapshot order.
func (snap *Snapshot) each(fn func(t tableDef, row any) error) error {
	if snap.err != nil {
		return snap.err
	}
	for _, t := range tables {
		var ferr error
		err := rowEach(snap.tableTxn(t.name), nil, t.name, func(raw any) bool {
			ferr = fn(t, raw)
			return ferr == nil
		})
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", t.name, err)
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// WriteTo streams the snapshot to w.
func (snap *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := &iocount.Writer{W: bw}
	if _, err := io.WriteString(cw, snapshotMagic); err != nil {
		return cw.N, err
	}
	var count uint64
	var lenBuf [binary.MaxVarintLen64]byte
	err := snap.each(func(t tableDef, row any) error {
		buf, err := json.Marshal(row)
		if err != nil {
			return fmt.Errorf("encode %s row: %w", t.name, err)
		}
		n := binary.PutUvarint(lenBuf[:], uint64(len(buf)))
		if _, err := cw.Write(append([]byte{t.snapID}, lenBuf[:n]...)); err != nil {
			return err
		}
		if _, err := cw.Write(buf); err != nil {
			return err
		}
		count++
		return nil
	})
	if err != nil {
		return cw.N, err
	}
	n := binary.PutUvarint(lenBuf[:], count)
	if _, err := cw.Write(append([]byte{0}, lenBuf[:n]...)); err != nil {
		return cw.N, err
	}
	return cw.N, bw.Flush()
}

// Restore decodes a snapshot stream into a new store. The caller swaps it in and abandons the
// old one; rows that only the old store had are thereby gone.
func Restore(r io.Reader) (*Store, error) {
	s, err := New()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("snapshot header: %w", ErrCorruptSnapshot)
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	var count uint64
	rows := map[string]*txnRows{} // the row tables', each looked up once for all its rows
	for {
		id, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("snapshot truncated after %d rows: %w", count, ErrCorruptSnapshot)
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("snapshot record %d length: %w", count, ErrCorruptSnapshot)
		}
		if id == 0 {
			if size != count {
				return nil, fmt.Errorf("snapshot trailer says %d rows, read %d: %w", size, count, ErrCorruptSnapshot)
			}
			break
		}
		if size > maxSnapshotRecord {
			return nil, fmt.Errorf("snapshot record %d: %d bytes exceeds limit: %w", count, size, ErrCorruptSnapshot)
		}
		t, ok := tableBySnapID(id)
		if !ok && id&IgnoreUnknownRecordFlag != 0 {
			if _, err := br.Discard(int(size)); err != nil {
				return nil, fmt.Errorf("snapshot record %d truncated: %w", count, ErrCorruptSnapshot)
			}
			s.skippedRecords++
			count++
			continue
		}
		if !ok {
			return nil, fmt.Errorf("snapshot record %d: table byte %d: %w; upgrade this server to the version that wrote the snapshot",
				count, id, ErrUnknownRecord)
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("snapshot record %d truncated: %w", count, ErrCorruptSnapshot)
		}
		row := t.newRow()
		if err := json.Unmarshal(buf, row); err != nil {
			return nil, fmt.Errorf("snapshot %s row %d: %v: %w", t.name, count, err, ErrCorruptSnapshot)
		}
		if err := restoreRow(txn, rows, t.name, row); err != nil {
			return nil, fmt.Errorf("snapshot %s row %d insert: %w", t.name, count, err)
		}
		count++
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("snapshot has data after its trailer: %w", ErrCorruptSnapshot)
	}
	txn.Commit()
	if err := s.resumePublish(); err != nil {
		return nil, err
	}
	return s, nil
}

// SkippedRecords returns how many records of unknown ignorable tables the restore that made
// this store skipped.
func (s *Store) SkippedRecords() uint64 { return s.skippedRecords }

// restoreRow inserts a restored row, into a row table through its txnRows in rows.
func restoreRow(txn *memdb.Txn, rows map[string]*txnRows, table string, row any) error {
	if !isRowTable(table) {
		return rowInsert(txn, table, row)
	}
	r := rows[table]
	if r == nil {
		r = &txnRows{txn: txn, table: table}
		rows[table] = r
	}
	return r.insert(row)
}
