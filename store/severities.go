package store

import (
	"fmt"
	"sort"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// SeverityLevel is one of the administrator's custom severity levels. Rank orders them: 0 is the
// most severe.
type SeverityLevel struct {
	Name string `json:"name"`
	Rank int    `json:"rank"`
	RaftIndex
}

// SetSeverityLevels replaces the custom severity levels with names, most severe first: new names
// are created, known ones re-ranked, and missing ones deleted together with their assignment to
// any bulletin. Names must be non-empty and unique (case-insensitively).
func (s *Store) SetSeverityLevels(idx uint64, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		key := strings.ToLower(strings.TrimSpace(n))
		if key == "" || n != strings.TrimSpace(n) {
			return fmt.Errorf("severity level %q: names must be non-empty without surrounding spaces: %w", n, ErrInvalid)
		}
		if seen[key] {
			return fmt.Errorf("severity level %q is listed twice: %w", n, ErrInvalid)
		}
		seen[key] = true
	}
	return s.write(func(txn *memdb.Txn) error {
		keep := map[string]bool{}
		for rank, n := range names {
			keep[n] = true
			raw, err := txn.First(tableSeverities, "id", n)
			if err != nil {
				return err
			}
			if raw != nil && raw.(*SeverityLevel).Rank == rank {
				continue
			}
			if err := upsertRow(txn, tableSeverities, idx, n, &SeverityLevel{Name: n, Rank: rank}); err != nil {
				return err
			}
		}
		existing, err := all[*SeverityLevel](txn, nil, tableSeverities)
		if err != nil {
			return err
		}
		catalogChanged := false
		for _, lvl := range existing {
			if keep[lvl.Name] {
				continue
			}
			if err := deleteRow(txn, tableSeverities, idx, lvl.Name); err != nil {
				return err
			}
			var assigned []*Bulletin
			err := rowEach(txn, nil, tableBulletins, func(raw any) bool {
				if b := raw.(*Bulletin); b.CustomSeverity == lvl.Name {
					assigned = append(assigned, b)
				}
				return true
			})
			if err != nil {
				return err
			}
			if len(assigned) > 0 {
				if err := checkNotPublishing(txn); err != nil {
					return err
				}
			}
			td := tagDelta{}
			for _, b := range assigned {
				c := *b
				c.CustomSeverity = ""
				if err := upsertRow(txn, tableBulletins, idx, c.ID, &c); err != nil {
					return err
				}
				td.bulletin(b, &c)
				catalogChanged = true
			}
			if err := td.commit(txn, idx); err != nil {
				return err
			}
		}
		if catalogChanged {
			return bumpCatalog(txn, idx, idx, 0, 0, time.Time{})
		}
		return nil
	})
}

// SeverityChange is one change to the custom severity levels, applied against the current list
// inside the write transaction so concurrent changes never lose each other.
type SeverityChange struct {
	Op       string   `json:"op"` // "set" (Names is the whole list), "add" (Name at Position), "delete" (Name)
	Names    []string `json:"names,omitempty"`
	Name     string   `json:"name,omitempty"`
	Position *int     `json:"position,omitempty"` // for add: 0 = most severe; nil = least severe
}

// ChangeSeverityLevels applies one SeverityChange.
func (s *Store) ChangeSeverityLevels(idx uint64, c *SeverityChange) error {
	current, err := s.SeverityLevels(nil)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(current)+1)
	for _, l := range current {
		names = append(names, l.Name)
	}
	switch c.Op {
	case "set":
		names = c.Names
	case "add":
		for _, n := range names {
			if strings.EqualFold(n, c.Name) {
				return fmt.Errorf("severity level %q already exists: %w", c.Name, ErrConflict)
			}
		}
		pos := len(names)
		if c.Position != nil {
			if *c.Position < 0 || *c.Position > len(names) {
				return fmt.Errorf("position %d is outside 0..%d: %w", *c.Position, len(names), ErrInvalid)
			}
			pos = *c.Position
		}
		names = append(names[:pos], append([]string{c.Name}, names[pos:]...)...)
	case "delete":
		out := names[:0]
		for _, n := range names {
			if n != c.Name {
				out = append(out, n)
			}
		}
		if len(out) == len(names) {
			return fmt.Errorf("severity level %q: %w", c.Name, ErrNotFound)
		}
		names = out
	default:
		return fmt.Errorf("unknown severity change %q: %w", c.Op, ErrInvalid)
	}
	return s.SetSeverityLevels(idx, names)
}

// SeverityLevels lists the custom severity levels, most severe first.
func (s *Store) SeverityLevels(ws memdb.WatchSet) ([]*SeverityLevel, error) {
	out, err := all[*SeverityLevel](s.db.Txn(false), ws, tableSeverities)
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out, err
}
