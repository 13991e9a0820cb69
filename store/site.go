package store

import (
	"encoding/json"
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// InitSite initialises a new site in one transaction: its identity, its first admin token and its
// managed language ranges. A site is initialised once; a second attempt is a conflict and changes
// nothing.
func (s *Store) InitSite(idx uint64, info *SiteInfo, admin *Token, ranges []string, server *Token) error {
	if info.Name == "" || info.SiteID == "" || info.Role == "" {
		return fmt.Errorf("site needs id, name and role: %w", ErrInvalid)
	}
	if admin.Role != RoleAdmin {
		return fmt.Errorf("first token of a site must be an admin token, not %q: %w", admin.Role, ErrInvalid)
	}
	if err := admin.validate(); err != nil {
		return err
	}
	site := *info
	site.AdminTokenID = admin.ID
	value, err := json.Marshal(&site)
	if err != nil {
		return fmt.Errorf("encode site: %w", err)
	}
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tableSettings, "id", SettingSite)
		if err != nil {
			return fmt.Errorf("site lookup: %w", err)
		}
		if existing != nil {
			return fmt.Errorf("site is already initialised: %w", ErrConflict)
		}
		if err := upsertRow(txn, tableSettings, idx, SettingSite, &Setting{Key: SettingSite, Value: value}); err != nil {
			return err
		}
		tok := *admin
		if err := upsertRow(txn, tableTokens, idx, tok.ID, &tok); err != nil {
			return err
		}
		if server != nil {
			if server.Role != RoleServer {
				return fmt.Errorf("site server token must have role server: %w", ErrInvalid)
			}
			st := *server
			if err := upsertRow(txn, tableTokens, idx, st.ID, &st); err != nil {
				return err
			}
		}
		langs := &Languages{ID: LanguagesSite, Ranges: append([]string{}, ranges...)}
		return upsertRow(txn, tableLanguages, idx, LanguagesSite, langs)
	})
}
