package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/klauspost/compress/zstd"
)

// Import run states.
const (
	ImportRunning   = "running"
	ImportSucceeded = "succeeded"
	ImportUnchanged = "unchanged"
	ImportFailed    = "failed"
	// ImportCancelled is a run an admin cancelled; like a failed run it changed nothing.
	ImportCancelled = "cancelled"
)

// ImportCounts counts what an import did to one kind of record.
type ImportCounts struct {
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Removed   int `json:"removed"`
	Unchanged int `json:"unchanged"`
}

// ImportResult is the outcome of an import run.
type ImportResult struct {
	Bulletins ImportCounts `json:"bulletins"`
	Updates   ImportCounts `json:"updates"`
	// Skipped counts records the feed has but this site does not keep (languages, vendors).
	SkippedUpdates   int      `json:"skipped_updates"`
	SkippedBulletins int      `json:"skipped_bulletins"`
	Warnings         []string `json:"warnings,omitempty"`
}

// ReplicaStagePrefix begins the ids of runs staged by a site's link to its parent (replication
// runs being applied); imports stage under other ids, and each side drops only its own leftovers.
const ReplicaStagePrefix = "repl-"

// ImportRun is the record of one catalog import.
type ImportRun struct {
	ID         string       `json:"id"`
	Source     string       `json:"source"`
	Kind       string       `json:"kind"` // "native" or "csaf"
	Feed       string       `json:"feed"`
	Mode       string       `json:"mode"` // "incremental" or "complete"
	State      string       `json:"state"`
	Error      string       `json:"error,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at,omitempty"`
	Result     ImportResult `json:"result"`
	// CatalogVersion is the catalog version after the run, and RootVersion the root's catalog
	// version it reflects (CatalogVersion itself at the root; a replica's from its run).
	CatalogVersion uint64 `json:"catalog_version"`
	RootVersion    uint64 `json:"root_version,omitempty"`
	// RevisePolicies ("off", "disabled", "enabled") adds the new updates of the bulletins of
	// local policies to them at the commit; with DisableSuperseded it also turns off their
	// superseded updates.
	RevisePolicies    string `json:"revise_policies,omitempty"`
	DisableSuperseded bool   `json:"disable_superseded,omitempty"`
	RaftIndex
}

// SourceState remembers what the last successful import of a source saw, so the next one can
// be incremental: HTTP validators, and for CSAF providers the newest changes.csv timestamp.
type SourceState struct {
	ID           string    `json:"id"` // the source (path or URL)
	Kind         string    `json:"kind"`
	Feed         string    `json:"feed"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Since        time.Time `json:"since,omitempty"`
	LastImport   time.Time `json:"last_import"`
	LastRunID    string    `json:"last_run_id"`
	// ContentHash is the SHA-256 of the feed's bytes as last imported, and FilterKey the hash of
	// the site's languages and the import options then: an incremental import of identical
	// bytes under the same filter is unchanged without being parsed.
	ContentHash string `json:"content_hash,omitempty"`
	FilterKey   string `json:"filter_key,omitempty"`
	// Cursor and Ranges, on a child, are the parent's catalog version this replica holds and
	// the ranges it was filtered with (the source "parent").
	Cursor uint64   `json:"cursor,omitempty"`
	Ranges []string `json:"ranges,omitempty"`
	// PolicyCursor and PolicyRanges, on a child, are the parent's policies index its policies
	// replica holds and the ranges they were filtered with; SettingsCursor the same for the
	// settings documents.
	PolicyCursor   uint64   `json:"policy_cursor,omitempty"`
	PolicyRanges   []string `json:"policy_ranges,omitempty"`
	SettingsCursor uint64   `json:"settings_cursor,omitempty"`
	// RootVersion, on a child or relay, is the root's catalog version this replica reflects
	// (equal to Cursor under the root; a relay passes it down with every run).
	RootVersion uint64 `json:"root_version,omitempty"`
	RaftIndex
}

// CatalogBatch is one bounded slice of an import's changes, staged until the run commits.
type CatalogBatch struct {
	Bulletins       []*Bulletin `json:"bulletins,omitempty"`
	Updates         []*Update   `json:"updates,omitempty"`
	DeleteBulletins []string    `json:"delete_bulletins,omitempty"`
	DeleteUpdates   []string    `json:"delete_updates,omitempty"`
	// Tombstones records deletions for replication to children (set by a parent's imports).
	Tombstones bool `json:"tombstones,omitempty"`
	// Replica marks a batch replicated from a parent: rows carry the parent's administrator
	// fields (custom severity, disabled) instead of keeping the local ones.
	Replica bool `json:"replica,omitempty"`

	// Policies and settings documents replicated from a parent (Replica batches only), and the
	// ones to drop. PolicyKeep, on the wire, lists every policy the parent has: a child drops
	// the parent's policies it holds that are not listed.
	Policies          []*Policy     `json:"policies,omitempty"`
	PolicyKeep        []string      `json:"policy_keep,omitempty"`
	DeletePolicies    []string      `json:"delete_policies,omitempty"`
	SettingDocs       []*SettingDoc `json:"setting_docs,omitempty"`
	DeleteSettingDocs []string      `json:"delete_setting_docs,omitempty"`
}

// HasCatalog reports whether the batch touches catalog rows.
func (b *CatalogBatch) HasCatalog() bool {
	return len(b.Bulletins)+len(b.Updates)+len(b.DeleteBulletins)+len(b.DeleteUpdates) > 0
}

// stagedBatch is one staged batch of a running import, kept as EncodeBatch made it (zstd over
// the row codec, or JSON in earlier releases): staging costs one small row per Raft entry, and rows are decoded only at commit. Key is
// "<run>/<index>" with a zero-padded index, so a run's batches iterate in staging order.
type stagedBatch struct {
	Key   string `json:"key"`
	RunID string `json:"run_id"`
	Batch []byte `json:"batch"`
	// PublishedAt is the index of the entry that published the batch (PublishCatalog), 0 before.
	PublishedAt uint64 `json:"published_at,omitempty"`
	RaftIndex
}

// maxBatchBytes bounds a staged batch after decompression.
const maxBatchBytes = 64 << 20

var (
	batchEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	batchDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxBatchBytes), zstd.WithDecoderConcurrency(1))
)

// EncodeBatch encodes a batch for StageCatalog and PublishCatalog: its rows in the row codec
// (batch_codec.go), compressed with zstd, which keeps Raft entries, the log on disk and staged
// rows small. Entries that carry it must be of a type older servers do not know (node's
// CatalogStageRowsRequestType and CatalogPublishRowsRequestType): a server from before the row
// codec could not decode it.
func EncodeBatch(b *CatalogBatch) ([]byte, error) {
	pooled := batchBuffers.Get().(*[]byte)
	defer batchBuffers.Put(pooled)
	buf, err := appendBatchRows((*pooled)[:0], b)
	*pooled = buf
	if err != nil {
		return nil, fmt.Errorf("encode catalog batch: %w", err)
	}
	// Sized to the batch's rows: EncodeAll would make an output as large as its input.
	return batchEncoder.EncodeAll(buf, make([]byte, 0, len(buf)/4)), nil
}

// batchBuffers hold batches before compression and after decompression, reused: an import
// encodes and decodes hundreds of them.
var batchBuffers = sync.Pool{New: func() any { return new([]byte) }}

// decodeBatch decodes a batch of either codec: the row codec, or the JSON that Raft logs and
// snapshots written by earlier releases hold.
func decodeBatch(raw []byte) (*CatalogBatch, error) {
	pooled := batchBuffers.Get().(*[]byte)
	defer batchBuffers.Put(pooled)
	buf, err := batchDecoder.DecodeAll(raw, (*pooled)[:0])
	*pooled = buf // both decoders copy what they keep, so the buffer is free once they return
	if err != nil {
		return nil, err
	}
	if len(buf) > 0 && buf[0] == batchCodecRows {
		return decodeBatchRows(buf)
	}
	var b CatalogBatch
	if err := json.Unmarshal(buf, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// StageCatalog stages one batch (as EncodeBatch made it) for run runID; nothing becomes visible
// in the catalog until CommitCatalog.
func (s *Store) StageCatalog(idx uint64, runID string, batch []byte) error {
	if runID == "" || strings.Contains(runID, "/") {
		return fmt.Errorf("staged batch needs a run id without '/', not %q: %w", runID, ErrInvalid)
	}
	if len(batch) == 0 {
		return fmt.Errorf("staged batch of run %s is empty: %w", runID, ErrInvalid)
	}
	return s.write(func(txn *memdb.Txn) error {
		row := &stagedBatch{Key: fmt.Sprintf("%s/%020d", runID, idx), RunID: runID, Batch: batch}
		return upsertRow(txn, tableStaged, idx, row.Key, row)
	})
}

// CommitCatalog makes every change staged for the run visible in one transaction, records the
// run and the source's state, and bumps the catalog version if anything changed. Imported rows
// keep the administrator's fields (custom severity, disabled) of the rows they replace. Imports
// publish their batches in bounded entries instead (PublishCatalog, SwitchCatalog); a replica's
// runs and imports that changed nothing commit here.
func (s *Store) CommitCatalog(idx uint64, run *ImportRun, src *SourceState) error {
	return s.write(func(txn *memdb.Txn) error {
		if err := checkNotPublishing(txn); err != nil {
			return err
		}
		staged, err := stagedBatches(txn, run.ID)
		if err != nil {
			return err
		}
		d := catalogDelta{tags: tagDelta{}}
		var catalog, policies, settings bool
		for _, row := range staged {
			b, err := decodeBatch(row.Batch)
			if err != nil {
				return fmt.Errorf("decode staged batch %s: %v: %w", row.Key, err, ErrInvalid)
			}
			catalog = catalog || b.HasCatalog()
			if err := d.apply(txn, idx, b); err != nil {
				return err
			}
			if b.Replica {
				p, s, err := applyReplicatedPolicies(txn, idx, b)
				if err != nil {
					return err
				}
				policies, settings = policies || p, settings || s
			}
			if err := txn.Delete(tableStaged, row); err != nil {
				return fmt.Errorf("unstage %s: %w", row.Key, err)
			}
		}
		if len(staged) > 0 {
			if err := bumpIndex(txn, tableStaged, idx); err != nil {
				return err
			}
		}
		return finishCommit(txn, idx, idx, run, src, &d, catalog, policies, settings)
	})
}

// finishCommit ends a commit or a switch at idx: it bumps the indexes of the tables the run
// changed, records the catalog's new version (the index that stamped the run's rows: idx for a
// commit, the first publish entry's for a switch), counts and tag digests, revises policies and
// compliance, and records the run and the source's state.
func finishCommit(txn *memdb.Txn, idx, version uint64, run *ImportRun, src *SourceState, d *catalogDelta, catalog, policies, settings bool) error {
	if d.tombstones {
		if err := bumpIndex(txn, tableTombstones, idx); err != nil {
			return err
		}
	}
	for table, changed := range map[string]bool{tablePolicies: policies, tableSettingDocs: settings} {
		if changed {
			if err := bumpIndex(txn, table, idx); err != nil {
				return err
			}
		}
	}
	if catalog {
		for _, table := range []string{tableBulletins, tableUpdates} {
			if err := bumpIndex(txn, table, idx); err != nil {
				return err
			}
		}
		if err := bumpCatalog(txn, idx, version, d.bulletins, d.updates, run.FinishedAt); err != nil {
			return err
		}
		if err := d.tags.commit(txn, idx); err != nil {
			return err
		}
		if err := revisePolicies(txn, idx, run); err != nil {
			return err
		}
		if err := recomputeCompliance(txn, idx); err != nil {
			return err
		}
	}
	info, err := catalogInfo(txn, nil)
	if err != nil {
		return err
	}
	r := *run
	r.CatalogVersion = info.Version
	if r.Kind != "replication" {
		r.RootVersion = info.Version
	}
	if err := upsertRow(txn, tableImports, idx, r.ID, &r); err != nil {
		return err
	}
	if src != nil {
		st := *src
		if err := upsertRow(txn, tableSources, idx, st.ID, &st); err != nil {
			return err
		}
	}
	return nil
}

// putTombstone records that a record left the views of language lang (lower-cased; "" for
// bulletins and neutral updates) at idx: deleted, or for an update, moved to another language.
func putTombstone(txn *memdb.Txn, idx uint64, kind, id, lang string) error {
	lang = strings.ToLower(lang)
	key := tombstoneKey(kind, id, lang)
	return putRow(txn, tableTombstones, idx, key, &Tombstone{Key: key, Kind: kind, ID: id, Language: lang, Index: idx})
}

// tombstoneKey is the key of the tombstone of record id of kind in language lang (as
// putTombstone lower-cases it).
func tombstoneKey(kind, id, lang string) string {
	return kind + "/" + id + "/" + lang
}

// catalogDelta applies batches, counts how many rows they add or remove, accumulates the
// per-language digest changes, and notes whether they wrote tombstones (whose table's index the
// commit bumps).
type catalogDelta struct {
	bulletins, updates int
	tags               tagDelta
	tombstones         bool
}

func (d *catalogDelta) apply(txn *memdb.Txn, idx uint64, b *CatalogBatch) error {
	bulletins := &txnRows{txn: txn, table: tableBulletins}
	updates := &txnRows{txn: txn, table: tableUpdates}
	for _, row := range b.Bulletins {
		existing, err := bulletins.get(row.ID)
		if err != nil {
			return err
		}
		var old *Bulletin
		if existing != nil {
			old = existing.(*Bulletin)
			if !b.Replica {
				row.CustomSeverity, row.Disabled = old.CustomSeverity, old.Disabled
			}
			row.CreateIndex = old.CreateIndex
			if b.Replica && sameRow(old, row) {
				continue // unchanged: it keeps its ModifyIndex, so a relay does not send it on again
			}
		} else {
			row.CreateIndex = idx
			d.bulletins++
		}
		d.tags.bulletin(old, row)
		row.ModifyIndex = idx
		if err := bulletins.insert(row); err != nil {
			return fmt.Errorf("bulletin insert %q: %w", row.ID, err)
		}
	}
	for _, row := range b.Updates {
		existing, err := updates.get(row.ID)
		if err != nil {
			return err
		}
		var old *Update
		if existing != nil {
			old = existing.(*Update)
			row.CreateIndex = old.CreateIndex
			if b.Replica && sameRow(old, row) {
				continue
			}
			if b.Tombstones && !strings.EqualFold(old.Language, row.Language) {
				// It left the views of its old language: children there must drop it.
				if err := putTombstone(txn, idx, "update", row.ID, old.Language); err != nil {
					return err
				}
			}
		} else {
			row.CreateIndex = idx
			d.updates++
		}
		d.tags.update(old, row)
		row.ModifyIndex = idx
		if err := updates.insert(row); err != nil {
			return fmt.Errorf("update insert %q: %w", row.ID, err)
		}
	}
	for _, id := range b.DeleteBulletins {
		existing, err := bulletins.get(id)
		if err != nil {
			return err
		}
		if existing == nil {
			continue
		}
		if err := bulletins.delete(existing); err != nil {
			return fmt.Errorf("bulletin delete %q: %w", id, err)
		}
		d.bulletins--
		d.tags.bulletin(existing.(*Bulletin), nil)
		if b.Tombstones {
			if err := putTombstone(txn, idx, "bulletin", id, ""); err != nil {
				return err
			}
		}
	}
	for _, id := range b.DeleteUpdates {
		existing, err := updates.get(id)
		if err != nil {
			return err
		}
		if existing == nil {
			continue
		}
		if err := updates.delete(existing); err != nil {
			return fmt.Errorf("update delete %q: %w", id, err)
		}
		d.updates--
		d.tags.update(existing.(*Update), nil)
		if b.Tombstones {
			if err := putTombstone(txn, idx, "update", id, existing.(*Update).Language); err != nil {
				return err
			}
		}
	}
	d.tombstones = d.tombstones || b.Tombstones
	return nil
}

// sameRow reports whether a replicated row equals the stored one but for its Raft indexes.
func sameRow[T any, P interface {
	*T
	indexed
}](old, row P) bool {
	a, b := *old, *row
	*P(&a).raftIndex(), *P(&b).raftIndex() = RaftIndex{}, RaftIndex{}
	return reflect.DeepEqual(a, b)
}

// AbortCatalog drops everything staged for a run that will not commit.
// A run whose version is being published must be unpublished first (UnpublishCatalog).
func (s *Store) AbortCatalog(idx uint64, runID string) error {
	return s.write(func(txn *memdb.Txn) error {
		if st, err := getPublish(txn); err != nil {
			return err
		} else if st != nil && st.RunID == runID {
			return fmt.Errorf("import %s has %d published batches: unpublish them first: %w", runID, st.Batches, ErrConflict)
		}
		staged, err := stagedBatches(txn, runID)
		if err != nil || len(staged) == 0 {
			return err
		}
		for _, row := range staged {
			if err := txn.Delete(tableStaged, row); err != nil {
				return fmt.Errorf("unstage %s: %w", row.Key, err)
			}
		}
		return bumpIndex(txn, tableStaged, idx)
	})
}

// StagedRuns lists the runs that have staged changes (left behind by a leader that failed).
func (s *Store) StagedRuns() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := eachRow(s.db.Txn(false), tableStaged, "id", nil, func(raw any) bool {
		if id := raw.(*stagedBatch).RunID; !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
		return true
	})
	return out, err
}

// stagedBatches lists a run's staged batches in staging order.
func stagedBatches(txn *memdb.Txn, runID string) ([]*stagedBatch, error) {
	var out []*stagedBatch
	err := eachRow(txn, tableStaged, "id_prefix", []any{runID + "/"}, func(raw any) bool {
		out = append(out, raw.(*stagedBatch))
		return true
	})
	return out, err
}

// ImportRun returns a recorded import run, or nil.
func (s *Store) ImportRun(ws memdb.WatchSet, id string) (*ImportRun, error) {
	raw, err := first(s.db.Txn(false), ws, tableImports, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*ImportRun), nil
}

// ImportRuns lists recorded import runs ordered by id.
func (s *Store) ImportRuns(ws memdb.WatchSet) ([]*ImportRun, error) {
	return all[*ImportRun](s.db.Txn(false), ws, tableImports)
}

// Source returns the remembered state of a source, or nil.
func (s *Store) Source(ws memdb.WatchSet, id string) (*SourceState, error) {
	raw, err := first(s.db.Txn(false), ws, tableSources, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*SourceState), nil
}

// Sources lists every remembered source.
func (s *Store) Sources(ws memdb.WatchSet) ([]*SourceState, error) {
	return all[*SourceState](s.db.Txn(false), ws, tableSources)
}
