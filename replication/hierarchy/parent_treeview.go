package hierarchy

// The tree below a site as one view (GET /v1/tree), and waiting for a replicate-now to reach
// every depth of it.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/langalert"
	"patchtree/store"
)

// TreeSite is one site of the tree view: this site first (depth from the root), then every
// site below it, each with its link to its own parent.
type TreeSite struct {
	Path   string   `json:"path"`
	Depth  int      `json:"depth"`
	Role   string   `json:"role"`
	Ranges []string `json:"ranges"`
	// Via is the child of this site through which the site is reached (empty for this site).
	Via       string `json:"via,omitempty"`
	Connected bool   `json:"connected"`
	// Cursor is the catalog version of its parent that it holds; RootVersion the root's
	// catalog version that reflects. LagIndex and LagSeconds are how far it is behind this
	// site's own root version, in root versions and in time since the first version it lacks
	// reached this site.
	Cursor      uint64                    `json:"cursor"`
	RootVersion uint64                    `json:"root_version"`
	LagIndex    uint64                    `json:"lag_index"`
	LagSeconds  float64                   `json:"lag_seconds"`
	LastRuns    map[string]store.RunBrief `json:"last_runs,omitempty"`
	NextRuns    map[string]string         `json:"next_runs,omitempty"`
	// Alerts are the site's ranges that the root does not cover.
	Alerts []string `json:"alerts"`
}

// Tree is the tree view from this site down.
type Tree struct {
	// RootVersion is the root's catalog version this site holds (its own version at the root).
	RootVersion uint64     `json:"root_version"`
	AsOf        time.Time  `json:"as_of"`
	Sites       []TreeSite `json:"sites"`
}

// SitePath is this site's path from the root ("hq/emea"); a site below the root that has not
// heard it from its parent yet answers its own name.
func (p *Parent) SitePath() (string, error) {
	pos, err := p.position(nil)
	return pos.path, err
}

// Tree lists this site and every site below it, depth first.
func (p *Parent) Tree() (*Tree, error) {
	state := p.backend.State()
	pos, err := p.position(nil)
	if err != nil {
		return nil, err
	}
	site, err := state.Site(nil)
	if err != nil {
		return nil, fmt.Errorf("read the site: %w", err)
	}
	view, err := state.CatalogView(nil)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	version := view.Info.Version
	rootVersion, err := p.rootVersion(state, version)
	if err != nil {
		return nil, err
	}
	versions, err := rootVersionTimes(state)
	if err != nil {
		return nil, err
	}
	children, err := state.Children(nil)
	if err != nil {
		return nil, fmt.Errorf("read children: %w", err)
	}
	runs, err := state.ReplicationRuns(nil)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	newest := newestRuns(runs)
	now := time.Now().UTC()
	depth := strings.Count(pos.path, "/")
	alerts := func(ranges []string) []string {
		if !pos.known {
			return []string{}
		}
		return nonNil(langalert.Uncovered(pos.root, ranges))
	}
	lag := func(s *TreeSite) {
		if rootVersion > s.RootVersion {
			s.LagIndex = rootVersion - s.RootVersion
			if at, ok := versions.after(s.RootVersion); ok {
				s.LagSeconds = now.Sub(at).Seconds()
			}
		}
	}
	role := ""
	if site != nil {
		role = site.Role
	}
	self := TreeSite{Path: pos.path, Depth: depth, Role: role, Ranges: pos.own, Connected: true, Cursor: version,
		RootVersion: rootVersion, NextRuns: p.nextRuns(), Alerts: []string{}}
	tree := &Tree{RootVersion: rootVersion, AsOf: now, Sites: []TreeSite{self}}
	for _, c := range children {
		d := store.Descendant{Path: c.Name, Role: c.Role, Ranges: c.OwnRanges, Cursor: c.Cursor, CursorAt: c.CursorAt,
			RootVersion: c.RootVersion, Connected: p.connected(c.Name), NextRuns: self.NextRuns}
		if d.Role == "" {
			d.Role = "child"
		}
		if d.Ranges == nil {
			d.Ranges = c.Ranges
		}
		if r := newest[c.Name]; r != nil {
			d.LastRuns = r.last
		}
		for _, sub := range append([]store.Descendant{d}, c.Subtree...) {
			ts := TreeSite{Path: pos.path + "/" + sub.Path, Depth: depth + 1 + strings.Count(sub.Path, "/"), Role: sub.Role,
				Ranges: sub.Ranges, Via: c.Name, Connected: sub.Connected, Cursor: sub.Cursor, RootVersion: sub.RootVersion,
				LastRuns: sub.LastRuns, NextRuns: sub.NextRuns, Alerts: alerts(sub.Ranges)}
			if !c.RangesReported {
				ts.Ranges = []string{}
			}
			lag(&ts)
			tree.Sites = append(tree.Sites, ts)
		}
	}
	return tree, nil
}

// versionTimes maps root versions to when they reached this site, oldest first.
type versionTimes []struct {
	version uint64
	at      time.Time
}

// after is when the first root version newer than v reached this site.
func (vt versionTimes) after(v uint64) (time.Time, bool) {
	for _, e := range vt {
		if e.version > v {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// rootVersionTimes lists the root versions this site's catalog went through (its imports at
// the root, the runs it applied below), with when each became visible here.
func rootVersionTimes(state *store.Store) (versionTimes, error) {
	imports, err := state.ImportRuns(nil)
	if err != nil {
		return nil, fmt.Errorf("read catalog runs: %w", err)
	}
	var out versionTimes
	for _, r := range imports {
		if r.State != store.ImportSucceeded || r.RootVersion == 0 {
			continue
		}
		out = append(out, struct {
			version uint64
			at      time.Time
		}{r.RootVersion, r.FinishedAt})
	}
	slices.SortFunc(out, func(a, b struct {
		version uint64
		at      time.Time
	}) int {
		return a.at.Compare(b.at)
	})
	return out, nil
}

// SiteResult is one site's outcome of a replicate-now followed down the tree.
type SiteResult struct {
	// Path is the site's path from the root: the way the request took to it.
	Path     string          `json:"path"`
	Depth    int             `json:"depth"`
	Via      string          `json:"via"`
	Done     bool            `json:"done"`
	Verified bool            `json:"verified"`
	Run      *store.RunBrief `json:"run,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// WaitCascade waits until every site below the named children (at every depth, as their last
// reports list them) has applied and verified the replicate-now cascade, or ctx ends. It
// answers one result per site below those children; the children's own runs are WaitRuns'.
func (p *Parent) WaitCascade(ctx context.Context, id string, children []string) ([]SiteResult, error) {
	for {
		done := p.runs.changed()
		ws := memdb.NewWatchSet()
		results, complete, err := p.cascadeResults(ws, id, children)
		if err != nil || complete {
			return results, err
		}
		wctx, cancel := context.WithCancel(ctx)
		changed := ws.WatchCh(wctx)
		select {
		case <-done:
		case <-changed:
		case <-ctx.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return results, nil
		}
	}
}

// cascadeResults is where a cascade stands below the named children.
func (p *Parent) cascadeResults(ws memdb.WatchSet, id string, children []string) ([]SiteResult, bool, error) {
	pos, err := p.position(nil)
	if err != nil {
		return nil, false, err
	}
	depth := strings.Count(pos.path, "/")
	out := []SiteResult{}
	complete := true
	for _, name := range children {
		c, err := p.backend.State().Child(ws, name)
		if err != nil {
			return nil, false, fmt.Errorf("read child %q: %w", name, err)
		}
		if c == nil {
			continue
		}
		for _, d := range c.Subtree {
			r := SiteResult{Path: pos.path + "/" + d.Path, Depth: depth + 1 + strings.Count(d.Path, "/"), Via: name}
			if slices.Contains(d.Cascades, id) {
				r.Done, r.Verified = true, true
			} else {
				complete = false
				r.Error = "not applied yet"
			}
			for _, scope := range []string{ScopePolicies, ScopeCatalog, ScopeSettings} {
				if b, ok := d.LastRuns[scope]; ok {
					r.Run = &b
					break
				}
			}
			out = append(out, r)
		}
	}
	return out, complete, nil
}

// NewCascadeID names a replicate-now that travels down the tree.
func NewCascadeID(now time.Time) string { return "now-" + newRunID(now) }
