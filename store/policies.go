package store

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Policy origins.
const (
	OriginLocal  = "local"
	OriginParent = "parent"
)

// Policy run modes (PolicySpec.Run is one of these or a schedule).
const (
	RunAgentDefault = "agent-default"
	RunASAP         = "asap"
)

// PolicyUpdate is one update of a policy with its enabled flag. Language is the update's tag
// when the policy was written, so that a policy filters to a child's ranges without the catalog.
type PolicyUpdate struct {
	ID       string `json:"id"`
	Bulletin string `json:"bulletin"`
	Language string `json:"language"`
	Enabled  bool   `json:"enabled"`
}

// PolicySpec is what a software update policy says: everything that replicates to children.
type PolicySpec struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Folder      string         `json:"folder"`
	Bulletins   []string       `json:"bulletins"`
	Updates     []PolicyUpdate `json:"updates"`
	Enabled     bool           `json:"enabled"`
	// Run is "agent-default", "asap", or a schedule ("HH:MM" daily or an interval).
	Run                       string    `json:"run"`
	OverrideMaintenanceWindow bool      `json:"override_maintenance_windows"`
	AllowImmediateRestart     bool      `json:"allow_immediate_restart"`
	Revision                  int       `json:"revision"`
	CreatedAt                 time.Time `json:"created_at"`
	UpdatedAt                 time.Time `json:"updated_at"`
	CreatedBy                 string    `json:"created_by,omitempty"`
	UpdatedBy                 string    `json:"updated_by,omitempty"`
}

// Policy is a stored policy. Origin says where it was written: "local", or "parent" for a
// policy replicated from the parent site (read-only here). ParentIndex is, on a child, the
// parent's ModifyIndex of the policy it holds.
type Policy struct {
	PolicySpec
	Origin      string `json:"origin"`
	ParentIndex uint64 `json:"parent_index,omitempty"`
	RaftIndex
}

// Hash identifies a policy's replicated content (the spec): a child's copy of a policy, filtered
// to its languages, hashes the same as the parent's filtered copy.
func (p *PolicySpec) Hash() [32]byte {
	buf, _ := json.Marshal(p)
	return sha256.Sum256(append([]byte("policy\x00"), buf...))
}

// SettingDoc is a settings document (server task schedules, system assessment, remediation,
// plug-in policy). Created at a parent, it replicates down read-only.
type SettingDoc struct {
	Name        string          `json:"name"`
	Body        json.RawMessage `json:"body"`
	UpdatedAt   time.Time       `json:"updated_at"`
	UpdatedBy   string          `json:"updated_by,omitempty"`
	Origin      string          `json:"origin"`
	ParentIndex uint64          `json:"parent_index,omitempty"`
	RaftIndex
}

// Hash identifies a settings document's replicated content.
func (d *SettingDoc) Hash() [32]byte {
	return sha256.Sum256([]byte("setting\x00" + d.Name + "\x00" + string(d.Body)))
}

// Actor is who did something, for the audit log.
type Actor struct {
	TokenID string `json:"token_id,omitempty"`
	Name    string `json:"name,omitempty"`
	Role    Role   `json:"role,omitempty"`
}

// String names the actor in one word or two.
func (a Actor) String() string {
	switch {
	case a.Name != "" && a.TokenID != "":
		return a.Name + " (" + a.TokenID + ")"
	case a.TokenID != "":
		return string(a.Role) + " token " + a.TokenID
	case a.Name != "":
		return a.Name
	}
	return "system"
}

// AuditEntry is one line of the audit log: who did what, when. Key orders entries by the Raft
// index that wrote them (and a position within the entry).
type AuditEntry struct {
	Key    string          `json:"key"`
	At     time.Time       `json:"at"`
	Actor  Actor           `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
	RaftIndex
}

// putAudit appends audit entries written by the Raft entry idx.
func putAudit(txn *memdb.Txn, idx uint64, entries ...*AuditEntry) error {
	for i, e := range entries {
		if e == nil {
			continue
		}
		row := *e
		row.Key = fmt.Sprintf("%020d-%04d", idx, i)
		if err := putRow(txn, tableAudit, idx, row.Key, &row); err != nil {
			return err
		}
	}
	return bumpIndex(txn, tableAudit, idx)
}

// AppendAudit records audit entries on their own (actions that write nothing else).
func (s *Store) AppendAudit(idx uint64, entries []*AuditEntry) error {
	return s.write(func(txn *memdb.Txn) error { return putAudit(txn, idx, entries...) })
}

// Audit lists audit entries in order, from after key since (all when empty).
func (s *Store) Audit(ws memdb.WatchSet, since string, fn func(*AuditEntry) bool) error {
	txn := s.db.Txn(false)
	it, err := txn.LowerBound(tableAudit, "id", since)
	if err != nil {
		return err
	}
	ws.Add(it.WatchCh())
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*AuditEntry)
		if e.Key == since {
			continue
		}
		if !fn(e) {
			break
		}
	}
	return nil
}

// PutPolicy creates or replaces a policy, with its audit entry, in one transaction. A local
// write of a policy that came from the parent is refused.
func (s *Store) PutPolicy(idx uint64, p *Policy, audit *AuditEntry) error {
	if p.ID == "" || strings.TrimSpace(p.Name) == "" {
		return fmt.Errorf("policy needs an id and a name: %w", ErrInvalid)
	}
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tablePolicies, "id", p.ID)
		if err != nil {
			return err
		}
		// p carries the RaftIndex of the row it was built from: a write based on a stale read
		// (a concurrent change) is refused rather than silently undoing the other change.
		switch {
		case existing != nil && existing.(*Policy).Origin == OriginParent && p.Origin != OriginParent:
			return ReadOnlyPolicy(p.ID)
		case existing == nil && p.ModifyIndex != 0:
			return fmt.Errorf("policy %q: %w", p.ID, ErrNotFound)
		case existing != nil && existing.(*Policy).ModifyIndex != p.ModifyIndex:
			return fmt.Errorf("policy %q changed while this write was prepared; retry: %w", p.ID, ErrConflict)
		}
		row := *p
		if err := upsertRow(txn, tablePolicies, idx, row.ID, &row); err != nil {
			return err
		}
		return putAudit(txn, idx, audit)
	})
}

// ReadOnlyPolicy is the error for a local write of a policy replicated from the parent.
func ReadOnlyPolicy(id string) error {
	return fmt.Errorf("policy %q was replicated from the parent site and is read-only here; change it at the parent: %w", id, ErrConflict)
}

// DeletePolicy removes a local policy, with its audit entry.
func (s *Store) DeletePolicy(idx uint64, id string, audit *AuditEntry) error {
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tablePolicies, "id", id)
		if err != nil {
			return err
		}
		if existing == nil {
			return fmt.Errorf("policy %q: %w", id, ErrNotFound)
		}
		if existing.(*Policy).Origin == OriginParent {
			return ReadOnlyPolicy(id)
		}
		if err := deleteRow(txn, tablePolicies, idx, id); err != nil {
			return err
		}
		return putAudit(txn, idx, audit)
	})
}

// Policy returns a policy, or nil.
func (s *Store) Policy(ws memdb.WatchSet, id string) (*Policy, error) {
	raw, err := first(s.db.Txn(false), ws, tablePolicies, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Policy), nil
}

// Policies lists every policy by id.
func (s *Store) Policies(ws memdb.WatchSet) ([]*Policy, error) {
	return all[*Policy](s.db.Txn(false), ws, tablePolicies)
}

// PoliciesIndex is the Raft index of the last write to the policies (0: none ever).
func (s *Store) PoliciesIndex(ws memdb.WatchSet) uint64 { return tableIndexValue(s, ws, tablePolicies) }

// SettingDocsIndex is the Raft index of the last write to the settings documents.
func (s *Store) SettingDocsIndex(ws memdb.WatchSet) uint64 {
	return tableIndexValue(s, ws, tableSettingDocs)
}

func tableIndexValue(s *Store, ws memdb.WatchSet, table string) uint64 {
	return txnIndexValue(s.db.Txn(false), ws, table)
}

// txnIndexValue is a table's index row as txn reads it (0: never written).
func txnIndexValue(txn *memdb.Txn, ws memdb.WatchSet, table string) uint64 {
	ch, raw, err := txn.FirstWatch(tableIndex, "id", table)
	ws.Add(ch)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*IndexEntry).Value
}

// PutSettingDoc creates or replaces a settings document, with its audit entry. A local write of
// a document that came from the parent is refused.
func (s *Store) PutSettingDoc(idx uint64, d *SettingDoc, audit *AuditEntry) error {
	if d.Name == "" || !json.Valid(d.Body) {
		return fmt.Errorf("settings document needs a name and a JSON body: %w", ErrInvalid)
	}
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tableSettingDocs, "id", d.Name)
		if err != nil {
			return err
		}
		if existing != nil && existing.(*SettingDoc).Origin == OriginParent && d.Origin != OriginParent {
			return fmt.Errorf("settings document %q was replicated from the parent site and is read-only here; change it at the parent: %w", d.Name, ErrConflict)
		}
		row := *d
		if err := upsertRow(txn, tableSettingDocs, idx, row.Name, &row); err != nil {
			return err
		}
		return putAudit(txn, idx, audit)
	})
}

// SettingDoc returns a settings document, or nil.
func (s *Store) SettingDoc(ws memdb.WatchSet, name string) (*SettingDoc, error) {
	raw, err := first(s.db.Txn(false), ws, tableSettingDocs, name)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*SettingDoc), nil
}

// SettingDocs lists every settings document by name.
func (s *Store) SettingDocs(ws memdb.WatchSet) ([]*SettingDoc, error) {
	return all[*SettingDoc](s.db.Txn(false), ws, tableSettingDocs)
}

// Revise-policies options of an import: add new updates of a policy's bulletins to it, enabled
// or disabled, or leave policies alone.
const (
	ReviseOff      = "off"
	ReviseDisabled = "disabled"
	ReviseEnabled  = "enabled"
)

// revisePolicies adds to every local policy the updates its bulletins gained, enabled or not per
// the option, and with disableSuperseded turns off updates the catalog marks superseded. It
// runs inside the commit of the import that changed the catalog, so a policy is revised in the
// same entry that made the new updates visible.
func revisePolicies(txn *memdb.Txn, idx uint64, run *ImportRun) error {
	if run.RevisePolicies == "" || run.RevisePolicies == ReviseOff {
		return nil
	}
	var policies []*Policy
	if err := eachRow(txn, tablePolicies, "id", nil, func(raw any) bool {
		if p := raw.(*Policy); p.Origin != OriginParent {
			policies = append(policies, p)
		}
		return true
	}); err != nil {
		return err
	}
	var audits []*AuditEntry
	for _, p := range policies {
		have := map[string]bool{}
		for _, u := range p.Updates {
			have[u.ID] = true
		}
		np := *p
		np.Updates = append([]PolicyUpdate{}, p.Updates...)
		var added []string
		for _, bid := range p.Bulletins {
			raw, err := rowFirst(txn, tableBulletins, bid)
			if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			for _, uid := range raw.(*Bulletin).UpdateIDs {
				if have[uid] {
					continue
				}
				uraw, err := rowFirst(txn, tableUpdates, uid)
				if err != nil {
					return err
				}
				if uraw == nil {
					continue
				}
				u := uraw.(*Update)
				have[uid] = true
				enabled := run.RevisePolicies == ReviseEnabled && !u.Superseded
				np.Updates = append(np.Updates, PolicyUpdate{ID: uid, Bulletin: bid, Language: u.Language, Enabled: enabled})
				added = append(added, uid)
			}
		}
		var disabled []string
		if run.DisableSuperseded {
			for i, pu := range np.Updates {
				if !pu.Enabled {
					continue
				}
				uraw, err := rowFirst(txn, tableUpdates, pu.ID)
				if err != nil {
					return err
				}
				if uraw != nil && uraw.(*Update).Superseded {
					np.Updates[i].Enabled = false
					disabled = append(disabled, pu.ID)
				}
			}
		}
		if len(added) == 0 && len(disabled) == 0 {
			continue
		}
		np.Revision++
		np.UpdatedAt, np.UpdatedBy = run.FinishedAt, "catalog import "+run.ID
		if err := putRow(txn, tablePolicies, idx, np.ID, &np); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"added_updates": added, "disabled_superseded": disabled,
			"new_updates_enabled": run.RevisePolicies == ReviseEnabled, "revision": np.Revision})
		audits = append(audits, &AuditEntry{At: run.FinishedAt, Actor: Actor{Name: "catalog import " + run.ID},
			Action: "policy.revise", Target: "policy " + np.ID, Detail: detail})
	}
	if len(audits) == 0 {
		return nil
	}
	if err := bumpIndex(txn, tablePolicies, idx); err != nil {
		return err
	}
	return putAudit(txn, idx, audits...)
}

// applyReplicatedPolicies writes a replica batch's policies and settings documents (origin
// parent) and deletes those the parent no longer has; it reports whether anything was written.
func applyReplicatedPolicies(txn *memdb.Txn, idx uint64, b *CatalogBatch) (policies, settings bool, err error) {
	for _, p := range b.Policies {
		row := *p
		row.Origin = OriginParent
		if err := putRow(txn, tablePolicies, idx, row.ID, &row); err != nil {
			return false, false, err
		}
		policies = true
	}
	for _, id := range b.DeletePolicies {
		existing, err := txn.First(tablePolicies, "id", id)
		if err != nil {
			return false, false, err
		}
		if existing == nil || existing.(*Policy).Origin != OriginParent {
			continue
		}
		if err := txn.Delete(tablePolicies, existing); err != nil {
			return false, false, err
		}
		policies = true
	}
	for _, d := range b.SettingDocs {
		row := *d
		row.Origin = OriginParent
		if err := putRow(txn, tableSettingDocs, idx, row.Name, &row); err != nil {
			return false, false, err
		}
		settings = true
	}
	for _, name := range b.DeleteSettingDocs {
		existing, err := txn.First(tableSettingDocs, "id", name)
		if err != nil {
			return false, false, err
		}
		if existing == nil || existing.(*SettingDoc).Origin != OriginParent {
			continue
		}
		if err := txn.Delete(tableSettingDocs, existing); err != nil {
			return false, false, err
		}
		settings = true
	}
	return policies, settings, nil
}

// The policies and settings documents as a CatalogView reads them: one memdb read transaction
// with the catalog, so a replication run built from a view sees the policies, their table index
// and the catalog records they reference at one instant, whatever is written meanwhile.

// Policies lists every policy by id, as of this view.
func (v *CatalogView) Policies() ([]*Policy, error) {
	return all[*Policy](v.txn, nil, tablePolicies)
}

// PoliciesIndex is the Raft index of the last write to the policies as of this view.
func (v *CatalogView) PoliciesIndex() uint64 { return txnIndexValue(v.txn, nil, tablePolicies) }

// SettingDocs lists every settings document by name, as of this view.
func (v *CatalogView) SettingDocs() ([]*SettingDoc, error) {
	return all[*SettingDoc](v.txn, nil, tableSettingDocs)
}

// SettingDocsIndex is the Raft index of the last write to the settings documents as of this view.
func (v *CatalogView) SettingDocsIndex() uint64 { return txnIndexValue(v.txn, nil, tableSettingDocs) }
