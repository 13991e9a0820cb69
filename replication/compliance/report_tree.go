package compliance

// The sites a report covers, as a tree: this site's own computers, its children's newest
// summaries, and the summaries the children forwarded of the sites below them, each site once.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"patchtree/store"
)

// siteSummary is a site's summary with where it came from and where it stands.
type siteSummary struct {
	sum   *Summary
	local bool
	row   *store.ChildSummary   // a child's own summary
	sub   *store.SubtreeSummary // a site below a child
	// key is the site's path below this site ("emea", "emea/emea-de"), or this site's name
	// for its own computers.
	key   string
	depth int
	stale bool
}

// path is the site's path from this site, whose name comes first.
func (ss *siteSummary) path(self string) string {
	if ss.local {
		return self
	}
	return self + "/" + ss.key
}

// selected reports whether a bulletin report's site filter (a key or a path; with subtree,
// also the sites below it) selects the site.
func (ss *siteSummary) selected(self, site string, subtree bool) bool {
	for _, p := range []string{ss.key, ss.path(self)} {
		if p == site || (subtree && strings.HasPrefix(p, site+"/")) {
			return true
		}
	}
	return subtree && site == self // every site is below this one
}

// sites reads every site's summary in one read of the tree: the local one (if it has
// computers, or nothing below it reported), then each enrolled child followed by the sites
// below it, in path order. Decoded summaries are cached by site and sequence.
func (r *Reporter) sites(s *store.Store, self string, now time.Time) ([]siteSummary, error) {
	out, _, err := r.sitesWithTotals(s, self, now, false)
	return out, err
}

// sitesWithTotals is sites, and with withTotals also a copy of the bulletin totals of every
// site it returns but this site's own (taken under the same lock, so they match).
func (r *Reporter) sitesWithTotals(s *store.Store, self string, now time.Time, withTotals bool) ([]siteSummary, map[string]bulletinTotal, error) {
	tree, err := s.SummaryTree(nil)
	if err != nil {
		return nil, nil, err
	}
	var out []siteSummary
	cv, err := s.Compliance(nil)
	if err != nil {
		return nil, nil, err
	}
	// A parent without computers of its own reports only the sites below it: no summary to build.
	if cv.Site.Computers > 0 || len(tree.Summaries)+len(tree.Subtree) == 0 {
		local, err := Build(s, self, now)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, siteSummary{sum: local, local: true, key: self})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fresh := make(map[string]*cachedSummary, len(tree.Summaries)+len(tree.Subtree))
	decode := func(key string, seq uint64, digest string, raw []byte) (*Summary, error) {
		cached := r.cache[key]
		if cached == nil || cached.seq != seq || cached.digest != digest {
			sum, err := DecodeStored(raw)
			if err != nil {
				return nil, fmt.Errorf("site %s: %w", key, err)
			}
			cached = &cachedSummary{seq: seq, digest: digest, sum: sum}
		}
		fresh[key] = cached
		return cached.sum, nil
	}
	// A child removed here is no longer a site of this one: its last summary, and what it
	// forwarded, stay stored but are not reported (nor forwarded by a relay).
	enrolled := make(map[string]bool, len(tree.Children))
	for _, c := range tree.Children {
		enrolled[c.Name] = true
	}
	childStale := map[string]bool{}
	for _, c := range tree.Summaries {
		if !enrolled[c.Child] {
			continue
		}
		sum, err := decode(c.Child, c.Seq, c.Digest, c.Summary)
		if err != nil {
			return nil, nil, err
		}
		st := stale(c, now)
		childStale[c.Child] = st
		out = append(out, siteSummary{sum: sum, row: c, key: c.Child, depth: 1, stale: st})
	}
	for _, b := range tree.Subtree {
		if !enrolled[b.Child] {
			continue
		}
		sum, err := decode(b.Path, b.Seq, b.Digest, b.Summary)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, siteSummary{sum: sum, sub: b, key: b.Path, depth: strings.Count(b.Path, "/") + 1,
			stale: b.Stale || childStale[b.Child]})
	}
	r.update(fresh)
	var totals map[string]bulletinTotal
	if withTotals {
		totals = r.totals.snapshot()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].local != out[j].local {
			return out[i].local
		}
		return lessPath(out[i].key, out[j].key)
	})
	return out, totals, nil
}

// lessPath orders paths part by part, so that a site comes right before the sites below it.
func lessPath(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

// Overview rolls up compliance across every site.
func (r *Reporter) Overview(s *store.Store, self string, now time.Time) (*Overview, error) {
	return r.OverviewDepth(s, self, now, -1)
}

// OverviewDepth rolls up compliance across every site, listing the sites at most maxDepth
// below this one (every site when maxDepth < 0). The totals, and each site's subtree totals,
// still count every site, each once.
func (r *Reporter) OverviewDepth(s *store.Store, self string, now time.Time, maxDepth int) (*Overview, error) {
	sites, err := r.sites(s, self, now)
	if err != nil {
		return nil, err
	}
	o := &Overview{AsOf: now.UTC(), Sites: []SiteReport{}, Totals: Totals{Severities: map[string]store.Counts{}}}
	// subtrees holds the totals of every path that has a line, by path from this site.
	subtrees := map[string]*Totals{}
	reports := make([]SiteReport, 0, len(sites))
	for i := range sites {
		ss := &sites[i]
		sr := SiteReport{Site: ss.sum.Site, Local: ss.local, Computers: ss.sum.Computers, Compliant: ss.sum.Compliant,
			Compliance: ratio(ss.sum.Compliant, ss.sum.Computers), Cells: ss.sum.Cells, AsOf: ss.sum.AsOf,
			Severities: map[string]store.Counts{}, Path: ss.path(self), Depth: ss.depth, Stale: ss.stale}
		for _, sc := range ss.sum.Severities {
			sr.Severities[sc.Severity] = sc.C
		}
		switch {
		case ss.row != nil:
			lc := ss.row.LastContact
			sr.Site, sr.LastContact, sr.Interval, sr.Seq = ss.row.Child, &lc, ss.row.Interval.String(), ss.row.Seq
		case ss.sub != nil:
			lc := ss.sub.LastContact
			sr.Site, sr.LastContact, sr.Interval, sr.Seq = ss.sub.Path, &lc, ss.sub.Interval.String(), ss.sub.Seq
		}
		sr.Name = sr.Path[strings.LastIndexByte(sr.Path, '/')+1:]
		if !ss.local {
			sr.Parent = sr.Path[:strings.LastIndexByte(sr.Path, '/')]
		}
		sr.Subtree = &Totals{Severities: map[string]store.Counts{}}
		subtrees[sr.Path] = sr.Subtree
		reports = append(reports, sr)
		o.Totals.add(&sr)
	}
	for i := range reports {
		sr := &reports[i]
		// The site itself and each of its ancestors that has a line (the reporting site's own
		// line, when it has one, stands for everything: it is the root of the report).
		for p := sr.Path; ; p = p[:strings.LastIndexByte(p, '/')] {
			if t := subtrees[p]; t != nil {
				t.add(sr)
			}
			if !strings.Contains(p, "/") {
				break
			}
		}
	}
	for i := range reports {
		sr := &reports[i]
		sr.Subtree.Compliance = ratio(sr.Subtree.Compliant, sr.Subtree.Computers)
		if maxDepth < 0 || sr.Depth <= maxDepth {
			o.Sites = append(o.Sites, *sr)
		}
	}
	o.Totals.Compliance = ratio(o.Totals.Compliant, o.Totals.Computers)
	return o, nil
}

// add counts one site's own numbers into t.
func (t *Totals) add(sr *SiteReport) {
	t.Sites++
	if sr.Stale {
		t.StaleSites++
	}
	t.Computers += sr.Computers
	t.Compliant += sr.Compliant
	t.Cells.Add(sr.Cells, 1)
	for sev, c := range sr.Severities {
		sum := t.Severities[sev]
		sum.Add(c, 1)
		t.Severities[sev] = sum
	}
}
