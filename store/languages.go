package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// LanguagesSite is the id of the row holding the site's own managed ranges.
const LanguagesSite = "site"

// Languages is a set of managed language ranges (already validated and canonical; see langalert).
// The row with ID LanguagesSite holds this site's ranges.
type Languages struct {
	ID     string   `json:"id"`
	Ranges []string `json:"ranges"`
	RaftIndex
}

// SetLanguages replaces the ranges of row id.
func (s *Store) SetLanguages(idx uint64, id string, ranges []string) error {
	if id == "" {
		return fmt.Errorf("languages without id: %w", ErrInvalid)
	}
	row := &Languages{ID: id, Ranges: append([]string{}, ranges...)}
	return s.write(func(txn *memdb.Txn) error { return upsertRow(txn, tableLanguages, idx, id, row) })
}

// Languages returns the languages row with the given id, or nil if it was never set.
func (s *Store) Languages(ws memdb.WatchSet, id string) (*Languages, error) {
	raw, err := first(s.db.Txn(false), ws, tableLanguages, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Languages), nil
}
