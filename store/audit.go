package store

import memdb "github.com/hashicorp/go-memdb"

// pendingAudit is the audit entry of the Raft entry being applied: Audited sets it, and the first
// write transaction that commits takes it in (see write).
type pendingAudit struct {
	idx     uint64
	entries []*AuditEntry
	written bool
}

// Audited applies an administrator's write with its audit entries: they are put in the same
// memdb transaction as the first change apply commits, so a reader never sees the change without
// its entry. A write that changes nothing (a repeated setting) still records its entries on their
// own; a refused write (apply returns an error) records nothing, as nothing changed.
//
// Like every write, it runs on the FSM's goroutine only: the store has one writer.
func (s *Store) Audited(idx uint64, entries []*AuditEntry, apply func() error) error {
	p := &pendingAudit{idx: idx, entries: entries}
	s.audit = p
	err := apply()
	s.audit = nil
	if err != nil || p.written {
		return err
	}
	return s.AppendAudit(idx, entries)
}

// takeAudit puts the pending audit entries, if any, into txn (see Audited).
func (s *Store) takeAudit(txn *memdb.Txn) error {
	p := s.audit
	if p == nil || p.written {
		return nil
	}
	p.written = true
	return putAudit(txn, p.idx, p.entries...)
}
