package store

import (
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Bulletin is a stored bulletin: the feed's content plus where it came from, its content hash,
// and the administrator's own fields, which imports never touch.
type Bulletin struct {
	BulletinContent
	// UpdateTags are the lower-case language tags of UpdateIDs, position by position, as the
	// writer of the row saw them (for the per-language view digests).
	UpdateTags     []string `json:"update_tags,omitempty"`
	Feed           string   `json:"feed"`
	Hash           string   `json:"hash"`
	CustomSeverity string   `json:"custom_severity,omitempty"`
	Disabled       bool     `json:"disabled,omitempty"`
	RaftIndex
}

// Update is a stored update. Superseded is set by an import run with "disable superseded
// updates": another stored update supersedes it.
type Update struct {
	UpdateContent
	Feed       string `json:"feed"`
	Hash       string `json:"hash"`
	Superseded bool   `json:"superseded,omitempty"`
	RaftIndex
}

// CatalogInfo is the catalog's version and counts. Version is the Raft index of the last import
// (or administrative change) that changed bulletins or updates; readers see one version or the
// next, never a mixture.
type CatalogInfo struct {
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	Bulletins int       `json:"bulletins"`
	Updates   int       `json:"updates"`
}

// SettingCatalog is the settings key of CatalogInfo.
const SettingCatalog = "catalog"

// Catalog returns the catalog's version and counts (zero before the first import).
func (s *Store) Catalog(ws memdb.WatchSet) (*CatalogInfo, error) {
	txn, ws := s.catalogRead(ws)
	return catalogInfo(txn, ws)
}

func catalogInfo(txn *memdb.Txn, ws memdb.WatchSet) (*CatalogInfo, error) {
	info := &CatalogInfo{}
	if _, err := getSetting(txn, ws, SettingCatalog, info); err != nil {
		return nil, err
	}
	return info, nil
}

// Bulletin returns the bulletin with the given id, or nil.
func (s *Store) Bulletin(ws memdb.WatchSet, id string) (*Bulletin, error) {
	txn, ws := s.catalogRead(ws)
	raw, err := first(txn, ws, tableBulletins, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Bulletin), nil
}

// Update returns the update with the given id, or nil.
func (s *Store) Update(ws memdb.WatchSet, id string) (*Update, error) {
	txn, ws := s.catalogRead(ws)
	raw, err := first(txn, ws, tableUpdates, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Update), nil
}

// CatalogView is a consistent read of the catalog: every call on it sees the same version.
type CatalogView struct {
	txn  *memdb.Txn
	Info CatalogInfo
	// The version's rows, read once: a run's sample check looks up thousands of them.
	bulletins, updates *rowSet
}

// CatalogView opens a consistent read of the catalog.
func (s *Store) CatalogView(ws memdb.WatchSet) (*CatalogView, error) {
	txn, ws := s.catalogRead(ws)
	return catalogView(txn, ws)
}

// catalogView reads the catalog of txn, adding its info's watch channel to ws.
func catalogView(txn *memdb.Txn, ws memdb.WatchSet) (*CatalogView, error) {
	info, err := catalogInfo(txn, ws)
	if err != nil {
		return nil, err
	}
	v := &CatalogView{txn: txn, Info: *info}
	if v.bulletins, err = readRows(txn, nil, tableBulletins); err != nil {
		return nil, err
	}
	if v.updates, err = readRows(txn, nil, tableUpdates); err != nil {
		return nil, err
	}
	return v, nil
}

// EachBulletin calls fn for every bulletin in id order until fn returns false.
func (v *CatalogView) EachBulletin(fn func(*Bulletin) bool) error {
	v.bulletins.ascend(func(row catalogRow) bool { return fn(row.(*Bulletin)) })
	return nil
}

// EachUpdate calls fn for every update in id order until fn returns false.
func (v *CatalogView) EachUpdate(fn func(*Update) bool) error {
	v.updates.ascend(func(row catalogRow) bool { return fn(row.(*Update)) })
	return nil
}

// FeedBulletins calls fn for every bulletin of feed.
func (v *CatalogView) FeedBulletins(feed string, fn func(*Bulletin) bool) error {
	return v.EachBulletin(func(b *Bulletin) bool { return b.Feed != feed || fn(b) })
}

// FeedUpdates calls fn for every update of feed.
func (v *CatalogView) FeedUpdates(feed string, fn func(*Update) bool) error {
	return v.EachUpdate(func(u *Update) bool { return u.Feed != feed || fn(u) })
}

// Bulletin returns one bulletin in this view, or nil.
func (v *CatalogView) Bulletin(id string) *Bulletin {
	b, _ := v.bulletins.get(id).(*Bulletin)
	return b
}

// Update returns one update in this view, or nil.
func (v *CatalogView) Update(id string) *Update {
	u, _ := v.updates.get(id).(*Update)
	return u
}

func eachRow(txn *memdb.Txn, table, index string, args []any, fn func(any) bool) error {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return fmt.Errorf("%s by %s: %w", table, index, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !fn(raw) {
			return nil
		}
	}
	return nil
}

// SetBulletinAdmin sets the administrator's fields of a bulletin: its custom severity (which
// must be a defined level, or "" to clear it) and whether it is disabled. Nil leaves a field.
func (s *Store) SetBulletinAdmin(idx uint64, id string, customSeverity *string, disabled *bool) error {
	return s.write(func(txn *memdb.Txn) error {
		if err := checkNotPublishing(txn); err != nil {
			return err
		}
		raw, err := rowFirst(txn, tableBulletins, id)
		if err != nil {
			return fmt.Errorf("bulletin lookup %q: %w", id, err)
		}
		if raw == nil {
			return fmt.Errorf("bulletin %q: %w", id, ErrNotFound)
		}
		b := *raw.(*Bulletin)
		if customSeverity != nil {
			if *customSeverity != "" {
				lvl, err := txn.First(tableSeverities, "id", *customSeverity)
				if err != nil {
					return err
				}
				if lvl == nil {
					return fmt.Errorf("custom severity %q is not defined (see /v1/catalog/severities): %w", *customSeverity, ErrInvalid)
				}
			}
			b.CustomSeverity = *customSeverity
		}
		if disabled != nil {
			b.Disabled = *disabled
		}
		if err := upsertRow(txn, tableBulletins, idx, id, &b); err != nil {
			return err
		}
		td := tagDelta{}
		td.bulletin(raw.(*Bulletin), &b)
		if err := td.commit(txn, idx); err != nil {
			return err
		}
		return bumpCatalog(txn, idx, idx, 0, 0, time.Time{})
	})
}

// bumpCatalog records a change of the catalog written at idx as catalog version version (idx,
// but for an import published in several entries: the first one's index), adjusting the counts
// by the deltas; a non-zero at (stamped by the leader) becomes the catalog's UpdatedAt.
func bumpCatalog(txn *memdb.Txn, idx, version uint64, dBulletins, dUpdates int, at time.Time) error {
	info, err := catalogInfo(txn, nil)
	if err != nil {
		return err
	}
	info.Version = version
	if !at.IsZero() {
		info.UpdatedAt = at
	}
	info.Bulletins += dBulletins
	info.Updates += dUpdates
	return putSetting(txn, idx, SettingCatalog, info)
}
