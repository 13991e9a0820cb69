package hierarchy

// The tree above and below a site: where this site stands (its path from the root and the
// root's ranges, learned from its parent), what each child reported of its subtree, and the
// language alerts that follow from both.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"patchtree/langalert"
	"patchtree/store"

	memdb "github.com/hashicorp/go-memdb"
)

// SettingUpstream is the settings key of what a child or relay learned of the tree above it.
const SettingUpstream = "upstream"

// Upstream is what a site learned from its parent's answer to its language report.
type Upstream struct {
	// Path is this site's path from the root ("hq/emea").
	Path string `json:"path"`
	// RootRanges are the root's ranges, ParentRanges the parent's own.
	RootRanges   []string `json:"root_ranges"`
	ParentRanges []string `json:"parent_ranges"`
}

// loadUpstream reads what this site learned of the tree above it (nil: nothing yet).
func loadUpstream(s *store.Store, ws memdb.WatchSet) (*Upstream, error) {
	row, err := s.Setting(ws, SettingUpstream)
	if err != nil || row == nil {
		return nil, err
	}
	var up Upstream
	if err := json.Unmarshal(row.Value, &up); err != nil {
		return nil, fmt.Errorf("decode the upstream setting: %w", err)
	}
	return &up, nil
}

// position is where this site stands in the tree.
type position struct {
	path string
	// root are the root's ranges; known is false on a site below the root that has not yet
	// heard them from its parent.
	root  []string
	known bool
	// own are this site's own ranges.
	own []string
}

// position reads where this site stands: the root is its own root; a site below learned its
// path and the root's ranges from its parent. ws (may be nil) watches what it read.
func (p *Parent) position(ws memdb.WatchSet) (position, error) {
	state := p.backend.State()
	site, err := state.Site(ws)
	if err != nil {
		return position{}, fmt.Errorf("read the site: %w", err)
	}
	langs, err := state.Languages(ws, store.LanguagesSite)
	if err != nil {
		return position{}, fmt.Errorf("read the site's languages: %w", err)
	}
	pos := position{own: []string{}}
	if langs != nil && langs.Ranges != nil {
		pos.own = langs.Ranges
	}
	if site != nil {
		pos.path = site.Name
		if site.Role == "parent" {
			pos.root, pos.known = pos.own, true
			return pos, nil
		}
	}
	up, err := loadUpstream(state, ws)
	if err != nil {
		return position{}, err
	}
	if up != nil {
		pos.path, pos.root, pos.known = up.Path, up.RootRanges, true
	}
	return pos, nil
}

// checkChildReport validates what a child reported of itself and its subtree: ranges parse,
// every descendant's path lies below the child and names sites, and the subtree is bounded.
func checkChildReport(child string, rep LanguageReport, ranges []string) (*store.ChildReport, error) {
	own := rep.OwnRanges
	if own == nil {
		own = ranges // a child from before relays reports only its own ranges
	}
	own, err := langalert.ParseRanges(own)
	if err != nil {
		return nil, fmt.Errorf("own_ranges: %w", err)
	}
	if len(rep.Subtree) > MaxSubtree {
		return nil, fmt.Errorf("a report describes at most %d sites below the reporter, not %d: %w", MaxSubtree, len(rep.Subtree), store.ErrInvalid)
	}
	role := rep.Role
	if role == "" {
		role = "child"
	}
	if err := checkRole(role); err != nil {
		return nil, err
	}
	out := &store.ChildReport{OwnRanges: own, Role: role, Subtree: make([]store.Descendant, 0, len(rep.Subtree))}
	seen := map[string]bool{}
	for _, d := range rep.Subtree {
		if err := checkPath(child, d.Path); err != nil {
			return nil, err
		}
		if seen[d.Path] {
			return nil, fmt.Errorf("subtree lists %q twice: %w", d.Path, store.ErrInvalid)
		}
		seen[d.Path] = true
		if d.Role == "" {
			d.Role = "child"
		}
		if err := checkRole(d.Role); err != nil {
			return nil, fmt.Errorf("subtree %q: %w", d.Path, err)
		}
		if d.Ranges, err = langalert.ParseRanges(d.Ranges); err != nil {
			return nil, fmt.Errorf("subtree %q: %w", d.Path, err)
		}
		if len(d.Cascades) > maxCascadesKept {
			d.Cascades = d.Cascades[len(d.Cascades)-maxCascadesKept:]
		}
		if len(d.LastRuns) > 8 || len(d.NextRuns) > 8 {
			return nil, fmt.Errorf("subtree %q: too many streams: %w", d.Path, store.ErrInvalid)
		}
		out.Subtree = append(out.Subtree, d)
	}
	// Every range the child must receive covers its own and its subtree's: a report whose
	// ranges miss one would starve a site below.
	for _, want := range append(slices.Clone(own), subtreeRanges(out.Subtree)...) {
		if !slices.ContainsFunc(ranges, func(r string) bool { return strings.EqualFold(r, want) }) {
			return nil, fmt.Errorf("ranges %v lack %q, which the report's sites manage: %w", ranges, want, store.ErrInvalid)
		}
	}
	return out, nil
}

func checkRole(role string) error {
	switch role {
	case "child", "relay":
		return nil
	}
	return fmt.Errorf("role must be child or relay, not %q: %w", role, store.ErrInvalid)
}

// checkPath checks a descendant's path: "child/name[/name...]", each part a site name.
func checkPath(child, path string) error {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[0] != child {
		return fmt.Errorf("subtree path %q must start with %q/: %w", path, child, store.ErrInvalid)
	}
	for _, part := range parts[1:] {
		if part == "." || part == ".." {
			return fmt.Errorf("subtree path %q: %q is not a site name: %w", path, part, store.ErrInvalid)
		}
		if err := store.CheckName("site", part); err != nil {
			return fmt.Errorf("subtree path %q: %w", path, err)
		}
	}
	return nil
}

func subtreeRanges(sub []store.Descendant) []string {
	var out []string
	for _, d := range sub {
		out = append(out, d.Ranges...)
	}
	return out
}

// unionRanges is every range of the lists, once each (case-insensitively), sorted.
func unionRanges(lists ...[]string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, l := range lists {
		for _, r := range l {
			if k := strings.ToLower(r); !seen[k] {
				seen[k] = true
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}

// sameReport reports whether a child's stored row already holds the report.
func sameReport(c *store.Child, r *store.ChildReport) bool {
	return sameRanges(c.OwnRanges, r.OwnRanges) && c.Role == r.Role && reflect.DeepEqual(nonNilSubtree(c.Subtree), nonNilSubtree(r.Subtree))
}

func nonNilSubtree(s []store.Descendant) []store.Descendant {
	if s == nil {
		return []store.Descendant{}
	}
	return s
}

// site is one site below this one, as alerts and the tree see it.
type site struct {
	child  string // the child through which it is reached
	path   string // below this site: "emea-de/emea-de-berlin"
	ranges []string
}

// sitesBelow lists every site below this one that reported its ranges: each child, then its
// subtree.
func sitesBelow(children []*store.Child) []site {
	var out []site
	for _, c := range children {
		if !c.RangesReported {
			continue
		}
		own := c.OwnRanges
		if own == nil {
			own = c.Ranges
		}
		out = append(out, site{child: c.Name, path: c.Name, ranges: own})
		for _, d := range c.Subtree {
			out = append(out, site{child: c.Name, path: d.Path, ranges: d.Ranges})
		}
	}
	return out
}

// languageAlerts lists, for every site below this one, each of its ranges that the root does
// not cover: the site receives no updates in it. Every ancestor of the site raises the same
// alert, naming the site's path from the root. A site below the root that has not yet heard
// the root's ranges from its parent raises none.
func (p *Parent) languageAlerts() ([]Alert, error) {
	children, err := p.backend.State().Children(nil)
	if err != nil {
		return nil, fmt.Errorf("read children: %w", err)
	}
	pos, err := p.position(nil)
	if err != nil {
		return nil, err
	}
	out := []Alert{}
	if !pos.known {
		return out, nil
	}
	for _, s := range sitesBelow(children) {
		for _, r := range langalert.Uncovered(pos.root, s.ranges) {
			path := pos.path + "/" + s.path
			a := Alert{Kind: AlertLanguage, Child: s.child, Path: path, Range: r, ParentRanges: pos.own, RootRanges: pos.root}
			if s.path == s.child && slices.Equal(pos.root, pos.own) {
				a.Message = fmt.Sprintf("child %s manages %q, which no range of this parent (%v) covers: it receives no updates in it", s.child, r, pos.own)
			} else {
				a.Message = fmt.Sprintf("site %s manages %q, which no range of the root (%v) covers: it receives no updates in it", path, r, pos.root)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// connected reports whether a child was heard from within a long-poll (leader's soft state).
func (p *Parent) connected(child string) bool {
	seen, ok := p.polls.lastSeen(child)
	return ok && time.Since(seen) < p.pollWait+10*time.Second
}

// nextRuns is when this site's schedule runs each scope down next: a time (RFC 3339), or
// "continuous" for a scope that goes as soon as it changes.
func (p *Parent) nextRuns() map[string]string {
	rules := LoadRules(p.backend.State())
	out := map[string]string{}
	for _, sr := range scheduledRules {
		if next, ok := p.schedule.at(sr.scope); ok {
			out[sr.scope] = next.UTC().Format(time.RFC3339)
		} else if sched, err := ParseSchedule(sr.rule(rules), true); err == nil && sched.Continuous {
			out[sr.scope] = "continuous"
		}
	}
	return out
}

// rootVersion is the root's catalog version that this site's catalog version to reflects: to
// itself at the root, else the root version of the last run this site applied.
func (p *Parent) rootVersion(state *store.Store, to uint64) (uint64, error) {
	site, err := state.Site(nil)
	if err != nil {
		return 0, fmt.Errorf("read the site: %w", err)
	}
	if site == nil || site.Role == "parent" {
		return to, nil
	}
	src, err := state.Source(nil, SourceParent)
	if err != nil {
		return 0, fmt.Errorf("read the parent source: %w", err)
	}
	if src == nil {
		return 0, nil
	}
	return src.RootVersion, nil
}
