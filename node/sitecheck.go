package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

// ErrSiteMismatch means the configuration names a different site identity or different managed
// ranges than the site stored in the data dir.
var ErrSiteMismatch = errors.New("configuration differs from the stored site")

// storedSite is the site's identity and managed ranges as the data dir holds them.
type storedSite struct {
	name, role string
	languages  []string
}

// readStoredSite returns the site in the data dir, or nil for a data dir without one (a new
// site, or a server that has not joined yet). It runs right after Raft started: the FSM holds
// the restored snapshot, and the entries after it (Raft applies them only once it learns they
// are committed) are read from the log store. The site's first entry is its SiteInit; later
// LanguagesSet entries of the site's own row replace the ranges.
func (n *Node) readStoredSite() (*storedSite, error) {
	var site *storedSite
	state := n.fsm.State()
	info, err := state.Site(nil)
	if err != nil {
		return nil, fmt.Errorf("read the stored site: %w", err)
	}
	if info != nil {
		site = &storedSite{name: info.Name, role: info.Role}
		langs, err := state.Languages(nil, store.LanguagesSite)
		if err != nil {
			return nil, fmt.Errorf("read the stored languages: %w", err)
		}
		if langs != nil {
			site.languages = langs.Ranges
		}
	}
	if n.logs == nil {
		return site, nil
	}
	first, err := n.logs.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("read the raft log's first index: %w", err)
	}
	last, err := n.logs.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("read the raft log's last index: %w", err)
	}
	from := max(first, n.fsm.AppliedIndex()+1)
	for idx := from; idx != 0 && idx <= last; idx++ {
		var entry raft.Log
		if err := n.logs.GetLog(idx, &entry); err != nil {
			return nil, fmt.Errorf("read raft log %d: %w", idx, err)
		}
		if entry.Type != raft.LogCommand || len(entry.Data) == 0 {
			continue
		}
		t, body := MessageType(entry.Data[0])&^IgnoreUnknownTypeFlag, entry.Data[1:]
		if t == AuditedRequestType { // an administrator's change, with its audit entry
			var env AuditedRequest
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, fmt.Errorf("raft log %d: decode an audited change: %w", idx, err)
			}
			t, body = env.Type&^IgnoreUnknownTypeFlag, env.Body
		}
		switch t {
		case SiteInitRequestType:
			var req SiteInitRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("raft log %d: decode the site's identity: %w", idx, err)
			}
			site = &storedSite{name: req.Site.Name, role: req.Site.Role, languages: req.Languages}
		case LanguagesSetRequestType:
			var req LanguagesSetRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("raft log %d: decode a languages change: %w", idx, err)
			}
			if site != nil && req.ID == store.LanguagesSite {
				site.languages = req.Ranges
			}
		}
	}
	return site, nil
}

// checkStoredSite refuses to start when --name or --role differ from the site in the data dir,
// or when --languages was given (LanguagesGiven) and differs from its managed ranges: the stored
// values would win without a word, and the operator would believe otherwise.
func (n *Node) checkStoredSite() error {
	site, err := n.readStoredSite()
	if err != nil || site == nil {
		return err
	}
	switch {
	case site.name != n.cfg.Name:
		return fmt.Errorf("%w: --name is %q but the data dir %s holds site %q (a site's name does not change; start with --name %s)",
			ErrSiteMismatch, n.cfg.Name, n.cfg.DataDir, site.name, site.name)
	case site.role != n.cfg.Role:
		return fmt.Errorf("%w: --role is %q but site %q in %s is a %s (a site's role does not change; start with --role %s)",
			ErrSiteMismatch, n.cfg.Role, site.name, n.cfg.DataDir, site.role, site.role)
	case n.cfg.LanguagesGiven && !sameRanges(site.languages, n.cfg.Languages):
		return fmt.Errorf("%w: --languages is %q but site %q manages %q (--languages only seeds a new site: change the ranges with 'patchtree languages set', or start without --languages)",
			ErrSiteMismatch, strings.Join(n.cfg.Languages, ","), site.name, strings.Join(site.languages, ","))
	}
	return nil
}

// sameRanges reports whether a and b hold the same ranges in any order.
func sameRanges(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
