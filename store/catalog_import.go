package store

import (
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Import run states.
const (
	ImportRunning   = "running"
	ImportSucceeded = "succeeded"
	ImportUnchanged = "unchanged"
	ImportFailed    = "failed"
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
	// CatalogVersion is the catalog version after the run.
	CatalogVersion uint64 `json:"catalog_version"`
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
	RaftIndex
}

// CatalogBatch is one bounded slice of an import's changes, staged until the run commits.
type CatalogBatch struct {
	Bulletins       []*Bulletin `json:"bulletins,omitempty"`
	Updates         []*Update   `json:"updates,omitempty"`
	DeleteBulletins []string    `json:"delete_bulletins,omitempty"`
	DeleteUpdates   []string    `json:"delete_updates,omitempty"`
}

// stagedRow is one staged change of a running import. Key is "<run>/<kind>/<id>"; Seq keeps the
// order in which changes were staged.
type stagedRow struct {
	Key      string    `json:"key"`
	RunID    string    `json:"run_id"`
	Kind     string    `json:"kind"` // "bulletin" or "update"
	ID       string    `json:"id"`
	Delete   bool      `json:"delete,omitempty"`
	Bulletin *Bulletin `json:"bulletin,omitempty"`
	Update   *Update   `json:"update,omitempty"`
	RaftIndex
}

// StageCatalog stages a batch of changes for run runID; nothing becomes visible in the catalog
// until CommitCatalog.
func (s *Store) StageCatalog(idx uint64, runID string, b *CatalogBatch) error {
	if runID == "" {
		return fmt.Errorf("staged batch without run id: %w", ErrInvalid)
	}
	stage := func(txn *memdb.Txn, kind, id string, row *stagedRow) error {
		if id == "" {
			return fmt.Errorf("staged %s without id: %w", kind, ErrInvalid)
		}
		row.Key, row.RunID, row.Kind, row.ID = runID+"/"+kind+"/"+id, runID, kind, id
		return upsertRow(txn, tableStaged, idx, row.Key, row)
	}
	return s.write(func(txn *memdb.Txn) error {
		for _, x := range b.Bulletins {
			if err := stage(txn, "bulletin", x.ID, &stagedRow{Bulletin: x}); err != nil {
				return err
			}
		}
		for _, x := range b.Updates {
			if err := stage(txn, "update", x.ID, &stagedRow{Update: x}); err != nil {
				return err
			}
		}
		for _, id := range b.DeleteBulletins {
			if err := stage(txn, "bulletin", id, &stagedRow{Delete: true}); err != nil {
				return err
			}
		}
		for _, id := range b.DeleteUpdates {
			if err := stage(txn, "update", id, &stagedRow{Delete: true}); err != nil {
				return err
			}
		}
		return nil
	})
}

// CommitCatalog makes every change staged for the run visible in one transaction, records the
// run and the source's state, and bumps the catalog version if anything changed. Imported rows
// keep the administrator's fields (custom severity, disabled) of the rows they replace.
func (s *Store) CommitCatalog(idx uint64, run *ImportRun, src *SourceState) error {
	return s.write(func(txn *memdb.Txn) error {
		staged, err := stagedRows(txn, run.ID)
		if err != nil {
			return err
		}
		dB, dU := 0, 0
		touched := map[string]bool{}
		for _, row := range staged {
			table := tableBulletins
			if row.Kind == "update" {
				table = tableUpdates
			}
			existing, err := txn.First(table, "id", row.ID)
			if err != nil {
				return err
			}
			switch {
			case row.Delete && existing != nil:
				if err := txn.Delete(table, existing); err != nil {
					return fmt.Errorf("%s delete %q: %w", table, row.ID, err)
				}
				dB, dU = countDelta(row.Kind, dB, dU, -1)
			case row.Delete:
			case row.Kind == "bulletin":
				b := *row.Bulletin
				if existing != nil {
					old := existing.(*Bulletin)
					b.CustomSeverity, b.Disabled = old.CustomSeverity, old.Disabled
				} else {
					dB++
				}
				if err := putRow(txn, tableBulletins, idx, b.ID, &b); err != nil {
					return err
				}
			default:
				u := *row.Update
				if existing == nil {
					dU++
				}
				if err := putRow(txn, tableUpdates, idx, u.ID, &u); err != nil {
					return err
				}
			}
			if err := txn.Delete(tableStaged, row); err != nil {
				return fmt.Errorf("unstage %s: %w", row.Key, err)
			}
			touched[table] = true
		}
		if len(staged) > 0 {
			touched[tableStaged] = true
			for table := range touched {
				if err := bumpIndex(txn, table, idx); err != nil {
					return err
				}
			}
			if err := bumpCatalog(txn, idx, dB, dU, run.FinishedAt); err != nil {
				return err
			}
		}
		info, err := catalogInfo(txn, nil)
		if err != nil {
			return err
		}
		r := *run
		r.CatalogVersion = info.Version
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
	})
}

func countDelta(kind string, dB, dU, d int) (int, int) {
	if kind == "bulletin" {
		return dB + d, dU
	}
	return dB, dU + d
}

// AbortCatalog drops everything staged for a run that will not commit.
func (s *Store) AbortCatalog(idx uint64, runID string) error {
	return s.write(func(txn *memdb.Txn) error {
		staged, err := stagedRows(txn, runID)
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
		if id := raw.(*stagedRow).RunID; !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
		return true
	})
	return out, err
}

func stagedRows(txn *memdb.Txn, runID string) ([]*stagedRow, error) {
	var out []*stagedRow
	err := eachRow(txn, tableStaged, "run", []any{runID}, func(raw any) bool {
		out = append(out, raw.(*stagedRow))
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
