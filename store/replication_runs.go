package store

import (
	"fmt"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// ReplicationRun is one replication run to a child, as the parent records it.
type ReplicationRun struct {
	ID         string    `json:"id"`
	Child      string    `json:"child"`
	Scope      string    `json:"scope"`   // the sections, "+"-joined: "catalog", "catalog+policies", ...
	Mode       string    `json:"mode"`    // "complete" or "differential"
	Trigger    string    `json:"trigger"` // "schedule", "continuous", "replicate-now", "filter-change", "repair", "first"
	From       uint64    `json:"from"`
	To         uint64    `json:"to"`
	Records    int       `json:"records"`
	Deletes    int       `json:"deletes"`
	BytesWire  int64     `json:"bytes_wire"`
	BytesRaw   int64     `json:"bytes_raw"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
	Verified   bool      `json:"verified"`
	// ParentDigest is the digest of the child's filtered view; ChildDigest what the child
	// computed over its replica after applying.
	ParentDigest string `json:"parent_digest"`
	ChildDigest  string `json:"child_digest"`
	Sampled      int    `json:"sampled"`
	Error        string `json:"error,omitempty"`
	// Policies and Settings describe the run's policies and settings sections (nil: none).
	Policies *RunPolicies `json:"policies,omitempty"`
	Settings *RunSettings `json:"settings,omitempty"`
	// Cascade is the id of the replicate-now request travelling down the tree that the run
	// carried, and RootVersion the root's catalog version its To reflects.
	Cascade     string `json:"cascade,omitempty"`
	RootVersion uint64 `json:"root_version,omitempty"`
	RaftIndex
}

// RunPolicies is the policies section of a replication run.
type RunPolicies struct {
	Mode        string   `json:"mode"`
	Trigger     string   `json:"trigger"`
	Folders     []string `json:"folders,omitempty"`
	IDs         []string `json:"ids,omitempty"`
	From        uint64   `json:"from"`
	To          uint64   `json:"to"`
	Advanced    bool     `json:"advanced"`
	Records     int      `json:"records"`
	Deletes     int      `json:"deletes"`
	Verified    bool     `json:"verified"`
	Digest      string   `json:"digest"`
	ChildDigest string   `json:"child_digest"`
}

// RunSettings is the settings section of a replication run.
type RunSettings struct {
	Trigger  string `json:"trigger"`
	To       uint64 `json:"to"`
	Records  int    `json:"records"`
	Deletes  int    `json:"deletes"`
	Verified bool   `json:"verified"`
}

// RecordReplicationRun stores a finished run and applies the child's acknowledgement with it.
func (s *Store) RecordReplicationRun(idx uint64, run *ReplicationRun, u *ChildUpdate) error {
	if run.ID == "" || run.Child == "" {
		return fmt.Errorf("replication run needs an id and a child: %w", ErrInvalid)
	}
	if err := s.UpdateChild(idx, run.Child, u); err != nil {
		return err
	}
	r := *run
	return s.write(func(txn *memdb.Txn) error { return upsertRow(txn, tableRuns, idx, r.ID, &r) })
}

// ReplicationRuns lists recorded runs ordered by id (ids sort by start time).
func (s *Store) ReplicationRuns(ws memdb.WatchSet) ([]*ReplicationRun, error) {
	return all[*ReplicationRun](s.db.Txn(false), ws, tableRuns)
}

// Tombstone records that a bulletin or update left the views of Language at Index (deleted, or
// an update moved to another language), so that differential runs can tell the children that
// held it; it is collected once every child's cursor has passed it.
type Tombstone struct {
	Key      string `json:"key"` // "<kind>/<id>/<language>"
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	Language string `json:"language,omitempty"`
	Index    uint64 `json:"index"`
	RaftIndex
}

// Tombstones lists tombstones newer than after, in key order, scanning every tombstone; a caller
// to whom the order does not matter seeks with TombstonesSince instead.
func (v *CatalogView) Tombstones(after uint64, fn func(*Tombstone) bool) error {
	return eachRow(v.txn, tableTombstones, "id", nil, func(raw any) bool {
		t := raw.(*Tombstone)
		if t.Index > after {
			return fn(t)
		}
		return true
	})
}

// TombstoneHorizon is the highest index up to which tombstones were collected: a child whose
// cursor is older cannot be told about deletions since and needs a complete run.
func (v *CatalogView) TombstoneHorizon() (uint64, error) {
	var h struct {
		Index uint64 `json:"index"`
	}
	if _, err := getSetting(v.txn, nil, SettingTombstoneHorizon, &h); err != nil {
		return 0, fmt.Errorf("read the tombstone horizon: %w", err)
	}
	return h.Index, nil
}

// SettingTombstoneHorizon is the settings key of the tombstone horizon.
const SettingTombstoneHorizon = "tombstone-horizon"

// CollectTombstones deletes tombstones at or below upTo and raises the horizon to it.
func (s *Store) CollectTombstones(idx, upTo uint64) error {
	return s.write(func(txn *memdb.Txn) error {
		if err := checkNotPublishing(txn); err != nil {
			return err
		}
		var doomed []any
		eachRow(txn, tableTombstones, "id", nil, func(raw any) bool {
			if raw.(*Tombstone).Index <= upTo {
				doomed = append(doomed, raw)
			}
			return true
		})
		for _, t := range doomed {
			if err := txn.Delete(tableTombstones, t); err != nil {
				return err
			}
		}
		if len(doomed) > 0 {
			if err := bumpIndex(txn, tableTombstones, idx); err != nil {
				return err
			}
		}
		return putSetting(txn, idx, SettingTombstoneHorizon, map[string]uint64{"index": upTo})
	})
}

// ChildRunCount is how many runs are recorded for a child.
func (s *Store) ChildRunCount(child string) (int, error) {
	n := 0
	err := eachRow(s.db.Txn(false), tableRuns, "child", []any{child}, func(any) bool { n++; return true })
	return n, err
}

// PruneReplicationRuns forgets a child's runs but its newest keep (by id, which sorts by start
// time), and returns how many went.
func (s *Store) PruneReplicationRuns(idx uint64, child string, keep int) (int, error) {
	if keep < 1 {
		return 0, fmt.Errorf("prune runs: keep must be at least 1, not %d: %w", keep, ErrInvalid)
	}
	dropped := 0
	err := s.write(func(txn *memdb.Txn) error {
		var runs []*ReplicationRun
		if err := eachRow(txn, tableRuns, "child", []any{child}, func(raw any) bool {
			runs = append(runs, raw.(*ReplicationRun))
			return true
		}); err != nil {
			return err
		}
		if len(runs) <= keep {
			return nil
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].ID < runs[j].ID })
		for _, r := range runs[:len(runs)-keep] {
			if err := txn.Delete(tableRuns, r); err != nil {
				return fmt.Errorf("delete run %s: %w", r.ID, err)
			}
			dropped++
		}
		return bumpIndex(txn, tableRuns, idx)
	})
	return dropped, err
}

// Brief is the run as a tree view and a replicate-now answer show it.
func (r *ReplicationRun) Brief() RunBrief {
	return RunBrief{ID: r.ID, Mode: r.Mode, Trigger: r.Trigger, Verified: r.Verified, Records: r.Records,
		Deletes: r.Deletes, FinishedAt: r.FinishedAt, Error: r.Error}
}
