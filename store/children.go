package store

import (
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Child is a child site enrolled at this (parent) site.
type Child struct {
	Name string `json:"name"`
	// JoinTokenHash is the SHA-256 of the one-time join token's secret; empty once used.
	JoinTokenHash string    `json:"join_token_hash,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	JoinedAt      time.Time `json:"joined_at,omitempty"`
	// NodeTokenID is the child's node credential once it joined.
	NodeTokenID string `json:"node_token_id,omitempty"`
	// Ranges are the language ranges the child last reported; RangesReported is false until
	// the first report (such a child receives no catalog).
	Ranges         []string  `json:"ranges"`
	RangesReported bool      `json:"ranges_reported"`
	RangesAt       time.Time `json:"ranges_at,omitempty"`
	// Cursor is the catalog version the child acknowledged applying, built with CursorRanges.
	Cursor       uint64    `json:"cursor"`
	CursorRanges []string  `json:"cursor_ranges"`
	CursorAt     time.Time `json:"cursor_at,omitempty"`
	// NeedsComplete asks for a complete run next (a verification mismatch, or a cursor older
	// than the tombstone horizon).
	NeedsComplete bool `json:"needs_complete,omitempty"`
	// PolicyCursor and SettingsCursor are the parent's policies and settings indexes the child
	// acknowledged holding; PoliciesNeedComplete asks for a complete policies run next.
	PolicyCursor         uint64 `json:"policy_cursor,omitempty"`
	SettingsCursor       uint64 `json:"settings_cursor,omitempty"`
	PoliciesNeedComplete bool   `json:"policies_need_complete,omitempty"`
	// OwnRanges and Role are what the child site reported of itself; Ranges is then the union
	// of its own ranges and its subtree's (what it must receive). Subtree is every site below
	// it, as it last reported them (a relay's children, theirs, and so on).
	OwnRanges []string     `json:"own_ranges,omitempty"`
	Role      string       `json:"role,omitempty"`
	Subtree   []Descendant `json:"subtree,omitempty"`
	// RootVersion is the root's catalog version the child's acknowledged cursor reflects.
	RootVersion uint64 `json:"root_version,omitempty"`
	RaftIndex
}

// Descendant is a site below a child, as that child (a relay) reported it.
type Descendant struct {
	// Path is the site's path below the site that stores the row, starting with the child's
	// name: "emea-de/emea-de-berlin".
	Path   string   `json:"path"`
	Role   string   `json:"role,omitempty"`
	Ranges []string `json:"ranges"` // the site's own ranges
	// The site's link to its parent, as that parent sees it.
	Cursor      uint64    `json:"cursor"`
	CursorAt    time.Time `json:"cursor_at,omitempty"`
	RootVersion uint64    `json:"root_version,omitempty"`
	// Connected says its parent heard from it within a long-poll.
	Connected bool `json:"connected"`
	// LastRuns is the newest run down per scope ("catalog", "policies", "settings").
	LastRuns map[string]RunBrief `json:"last_runs,omitempty"`
	// NextRuns is when its parent's schedule runs each scope next ("continuous": as changes
	// come).
	NextRuns map[string]string `json:"next_runs,omitempty"`
	// Cascades are the replicate-now requests (by id) it applied and verified.
	Cascades []string `json:"cascades,omitempty"`
}

// RunBrief is one run as a tree view shows it.
type RunBrief struct {
	ID         string    `json:"id"`
	Mode       string    `json:"mode,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Verified   bool      `json:"verified"`
	Records    int       `json:"records"`
	Deletes    int       `json:"deletes"`
	FinishedAt time.Time `json:"finished_at"`
	Error      string    `json:"error,omitempty"`
}

// AddChild enrols a child with the hash of its one-time join token.
func (s *Store) AddChild(idx uint64, c *Child) error {
	if c.Name == "" || c.JoinTokenHash == "" {
		return fmt.Errorf("child needs a name and a join token: %w", ErrInvalid)
	}
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tableChildren, "id", c.Name)
		if err != nil {
			return err
		}
		if existing != nil {
			return fmt.Errorf("child %q is already enrolled: %w", c.Name, ErrConflict)
		}
		row := *c
		return upsertRow(txn, tableChildren, idx, row.Name, &row)
	})
}

// childRow reads an enrolled child within a transaction; a missing one is ErrNotFound.
func childRow(txn *memdb.Txn, name string) (*Child, error) {
	raw, err := txn.First(tableChildren, "id", name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("child %q is not enrolled: %w", name, ErrNotFound)
	}
	return raw.(*Child), nil
}

// JoinChild exchanges a child's join token for its node credential: the join token is used up
// and the node token stored, in one transaction. joinHash must match the stored hash.
func (s *Store) JoinChild(idx uint64, name, joinHash string, node *Token, at time.Time) error {
	return s.write(func(txn *memdb.Txn) error {
		row, err := childRow(txn, name)
		if err != nil {
			return err
		}
		c := *row
		switch {
		case c.JoinTokenHash == "":
			return fmt.Errorf("the join token of child %q was already used: %w", name, ErrConflict)
		case c.JoinTokenHash != joinHash:
			return fmt.Errorf("wrong join token for child %q: %w", name, ErrInvalid)
		case node.Role != RoleNode || node.Child != name:
			return fmt.Errorf("node credential must have role node and child %q: %w", name, ErrInvalid)
		}
		tok := *node
		if err := node.validate(); err != nil {
			return err
		}
		if err := upsertRow(txn, tableTokens, idx, tok.ID, &tok); err != nil {
			return err
		}
		c.JoinTokenHash, c.NodeTokenID, c.JoinedAt = "", tok.ID, at
		return upsertRow(txn, tableChildren, idx, c.Name, &c)
	})
}

// RotateChild replaces a child's credential without re-enrolment: its node credential is
// revoked and a new one-time join token (joinHash) issued, in one transaction. Everything else
// of the child (ranges, cursors, compliance summary and sequence, run history) stays.
func (s *Store) RotateChild(idx uint64, name, joinHash string) error {
	if joinHash == "" {
		return fmt.Errorf("rotating child %q needs a join token: %w", name, ErrInvalid)
	}
	return s.write(func(txn *memdb.Txn) error {
		row, err := childRow(txn, name)
		if err != nil {
			return err
		}
		if err := revokeNodeToken(txn, idx, row); err != nil {
			return err
		}
		c := *row
		c.JoinTokenHash, c.NodeTokenID = joinHash, ""
		return upsertRow(txn, tableChildren, idx, c.Name, &c)
	})
}

// RemoveChild forgets a child and revokes its node credential.
func (s *Store) RemoveChild(idx uint64, name string) error {
	return s.write(func(txn *memdb.Txn) error {
		row, err := childRow(txn, name)
		if err != nil {
			return err
		}
		if err := revokeNodeToken(txn, idx, row); err != nil {
			return err
		}
		return deleteRow(txn, tableChildren, idx, name)
	})
}

// revokeNodeToken deletes child c's node credential, if it has one (a token already revoked
// on its own is no error).
func revokeNodeToken(txn *memdb.Txn, idx uint64, c *Child) error {
	if c.NodeTokenID == "" {
		return nil
	}
	if _, err := txn.DeleteAll(tableTokens, "id", c.NodeTokenID); err != nil {
		return err
	}
	return bumpIndex(txn, tableTokens, idx)
}

// ChildUpdate changes what a child reported or acknowledged; nil fields stay.
type ChildUpdate struct {
	Ranges        *[]string `json:"ranges,omitempty"`
	RangesAt      time.Time `json:"ranges_at,omitempty"`
	Cursor        *uint64   `json:"cursor,omitempty"`
	CursorRanges  *[]string `json:"cursor_ranges,omitempty"`
	CursorAt      time.Time `json:"cursor_at,omitempty"`
	NeedsComplete *bool     `json:"needs_complete,omitempty"`

	PolicyCursor         *uint64 `json:"policy_cursor,omitempty"`
	SettingsCursor       *uint64 `json:"settings_cursor,omitempty"`
	PoliciesNeedComplete *bool   `json:"policies_need_complete,omitempty"`

	// Report is what the child reported of itself and its subtree (with Ranges).
	Report *ChildReport `json:"report,omitempty"`
	// RootVersion goes with Cursor.
	RootVersion *uint64 `json:"root_version,omitempty"`
}

// ChildReport is what a child reports of itself and its subtree with its ranges.
type ChildReport struct {
	OwnRanges []string     `json:"own_ranges"`
	Role      string       `json:"role"`
	Subtree   []Descendant `json:"subtree"`
}

// UpdateChild applies a ChildUpdate to child name.
func (s *Store) UpdateChild(idx uint64, name string, u *ChildUpdate) error {
	return s.write(func(txn *memdb.Txn) error {
		row, err := childRow(txn, name)
		if err != nil {
			return err
		}
		c := *row
		if u.Ranges != nil {
			c.Ranges, c.RangesReported, c.RangesAt = append([]string{}, (*u.Ranges)...), true, u.RangesAt
		}
		if u.Cursor != nil {
			c.Cursor, c.CursorAt = *u.Cursor, u.CursorAt
		}
		if u.CursorRanges != nil {
			c.CursorRanges = append([]string{}, (*u.CursorRanges)...)
		}
		if u.NeedsComplete != nil {
			c.NeedsComplete = *u.NeedsComplete
		}
		if u.PolicyCursor != nil {
			c.PolicyCursor = *u.PolicyCursor
		}
		if u.SettingsCursor != nil {
			c.SettingsCursor = *u.SettingsCursor
		}
		if u.PoliciesNeedComplete != nil {
			c.PoliciesNeedComplete = *u.PoliciesNeedComplete
		}
		if r := u.Report; r != nil {
			c.OwnRanges, c.Role, c.Subtree = append([]string{}, r.OwnRanges...), r.Role, append([]Descendant{}, r.Subtree...)
		}
		if u.RootVersion != nil {
			c.RootVersion = *u.RootVersion
		}
		return upsertRow(txn, tableChildren, idx, c.Name, &c)
	})
}

// Child returns an enrolled child, or nil.
func (s *Store) Child(ws memdb.WatchSet, name string) (*Child, error) {
	raw, err := first(s.db.Txn(false), ws, tableChildren, name)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Child), nil
}

// Children lists the enrolled children by name.
func (s *Store) Children(ws memdb.WatchSet) ([]*Child, error) {
	return all[*Child](s.db.Txn(false), ws, tableChildren)
}
