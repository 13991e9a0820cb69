package store

import (
	"encoding/json"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Setting is one named, JSON-valued site setting. Typed accessors below wrap the well-known keys.
type Setting struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	RaftIndex
}

// SettingSite is the key of the site identity setting.
const SettingSite = "site"

// SiteInfo identifies a site: written once by the node that bootstraps it.
type SiteInfo struct {
	SiteID    string    `json:"site_id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// AdminTokenID is the id of the first admin token, written to <data-dir>/admin.token.
	AdminTokenID string `json:"admin_token_id,omitempty"`
	// ServerBearer is the bearer string of the site's server token (role server), which every
	// server of the site reads from the replicated state to authenticate to its leader.
	ServerBearer string `json:"server_bearer,omitempty"`
}

// PutSetting stores value (valid JSON) under key.
func (s *Store) PutSetting(idx uint64, key string, value json.RawMessage) error {
	if key == "" {
		return fmt.Errorf("setting without key: %w", ErrInvalid)
	}
	if !json.Valid(value) {
		return fmt.Errorf("setting %q: value is not valid JSON: %w", key, ErrInvalid)
	}
	row := &Setting{Key: key, Value: append(json.RawMessage{}, value...)}
	return s.write(func(txn *memdb.Txn) error { return upsertRow(txn, tableSettings, idx, key, row) })
}

// Setting returns the setting stored under key, or nil.
func (s *Store) Setting(ws memdb.WatchSet, key string) (*Setting, error) {
	raw, err := first(s.db.Txn(false), ws, tableSettings, key)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Setting), nil
}

// Site returns the site identity, or nil before the site was initialised.
func (s *Store) Site(ws memdb.WatchSet) (*SiteInfo, error) {
	var info SiteInfo
	found, err := getSetting(s.db.Txn(false), ws, SettingSite, &info)
	if !found || err != nil {
		return nil, err
	}
	return &info, nil
}

// getSetting decodes the setting under key into v; found is false when it does not exist.
func getSetting(txn *memdb.Txn, ws memdb.WatchSet, key string, v any) (found bool, err error) {
	raw, err := first(txn, ws, tableSettings, key)
	if raw == nil || err != nil {
		return false, err
	}
	if err := json.Unmarshal(raw.(*Setting).Value, v); err != nil {
		return false, fmt.Errorf("decode setting %q: %w", key, err)
	}
	return true, nil
}

// putSetting encodes v as the setting under key within txn.
func putSetting(txn *memdb.Txn, idx uint64, key string, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode setting %q: %w", key, err)
	}
	return upsertRow(txn, tableSettings, idx, key, &Setting{Key: key, Value: buf})
}
