package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Helpers of the compliance-across-tiers test (tiers_compliance_test.go), prefixed tcmp*. Every
// expected number is computed from the scans the test sent and the sites' catalogs it read over
// HTTP (cmpCount); nothing is taken from the server's code.

// tcmpSite is one site of the tree and the test's model of its computers.
type tcmpSite struct {
	name      string
	role      string    // "parent", "relay" or "child"
	parent    *tcmpSite // nil at the root
	p         *proc
	cat       *cmpCatalog
	computers map[string]*cmpComputer
	children  []*tcmpSite
}

// key is the site's path below the root ("emea/emea-de"): what the root's report calls it.
func (s *tcmpSite) key() string {
	if s.parent == nil || s.parent.parent == nil {
		return s.name
	}
	return s.parent.key() + "/" + s.name
}

// below is the site's path below site anc ("" when it is anc).
func (s *tcmpSite) below(anc *tcmpSite) string {
	switch {
	case s == anc:
		return ""
	case s.parent == anc:
		return s.name
	}
	return s.parent.below(anc) + "/" + s.name
}

// subtree is the site and every site below it.
func (s *tcmpSite) subtree() []*tcmpSite {
	out := []*tcmpSite{s}
	for _, c := range s.children {
		out = append(out, c.subtree()...)
	}
	return out
}

// tcmpStart enrols a site at its parent, starts it with its join token and waits until the
// parent has its language report.
func tcmpStart(t *testing.T, parent *tcmpSite, name, role string, langs []string) *tcmpSite {
	t.Helper()
	tok := hierEnrol(t, parent.p, name)
	p := startSite(t, siteOpts{Name: name, Role: role, Languages: langs,
		Extra: []string{"--parent", parent.p.url, "--join-token", tok}})
	hierWaitReported(t, parent.p, name, langs)
	s := &tcmpSite{name: name, role: role, parent: parent, p: p, computers: map[string]*cmpComputer{}}
	parent.children = append(parent.children, s)
	return s
}

// tcmpScans builds an NDJSON submission of n computers of site s (named after the site and the
// batch), each reporting a random part of the site's catalog in random states (one in twenty
// required), taken at at.
func tcmpScans(s *tcmpSite, rng *rand.Rand, batch string, n int, at time.Time) *cmpSubmission {
	updates := s.cat.updateIDs()
	sub := &cmpSubmission{NDJSON: true, Token: s.p.token}
	for i := range n {
		results := map[string]string{}
		for _, u := range updates {
			if rng.IntN(10) < 7 {
				// Mostly installed, so that some computers are compliant.
				st := cmpInstalled
				switch n := rng.IntN(20); {
				case n == 0:
					st = cmpRequired
				case n < 3:
					st = cmpUnknown
				case n < 7:
					st = cmpNotRequired
				}
				results[u] = cmpStateNames[st]
			}
		}
		ts := at.Add(time.Duration(i) * time.Second)
		sub.Scans = append(sub.Scans, &cmpScan{ComputerID: fmt.Sprintf("%s-%s-%03d", s.name, batch, i), At: ts.Format(time.RFC3339),
			Sent: results, Valid: true, Kept: results, time: ts})
	}
	return sub
}

// tcmpSiteRep is one line of GET /v1/compliance with the tree's fields.
type tcmpSiteRep struct {
	cmpSiteRep
	Path    string `json:"path"`
	Name    string `json:"name"`
	Parent  string `json:"parent"`
	Depth   int    `json:"depth"`
	Subtree *struct {
		Sites      int      `json:"sites"`
		StaleSites int      `json:"stale_sites"`
		Computers  int64    `json:"computers"`
		Compliant  int64    `json:"compliant"`
		Compliance *float64 `json:"compliance"`
		Cells      cmpCells `json:"cells"`
	} `json:"subtree"`
}

// tcmpOverview reads GET /v1/compliance[?query] both as the two-tier checks read it and with
// the tree's fields.
func tcmpOverview(t *testing.T, p *proc, query string) (cmpOverview, []tcmpSiteRep) {
	t.Helper()
	u := p.url + "/v1/compliance"
	if query != "" {
		u += "?" + query
	}
	var o cmpOverview
	raw := doJSONRaw(t, "GET", u, p.token, nil, 200, &o)
	var tree struct {
		Sites []tcmpSiteRep `json:"sites"`
	}
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return o, tree.Sites
}

// tcmpWants is what the report of site at must say of every site below it (and of itself, when
// it has computers): each site's truth under its key there, and the sequence its own parent
// holds (seqs, by site name).
func tcmpWants(at *tcmpSite, seqs map[string]uint64) []cmpSiteWant {
	var out []cmpSiteWant
	for _, s := range at.subtree() {
		if s == at {
			if len(s.computers) > 0 {
				out = append(out, cmpSiteWant{Truth: cmpCount(s.name, s.cat, s.computers), Local: true})
			}
			continue
		}
		out = append(out, cmpSiteWant{Truth: cmpCount(s.below(at), s.cat, s.computers), Seq: seqs[s.name], Interval: "1h0m0s"})
	}
	return out
}

// tcmpCheckTree checks the tree's fields of a report at site at: every site listed once by its
// path, with its parent, depth and subtree totals equal to the sum of the truths of it and the
// sites below it. It returns whether everything matched.
func tcmpCheckTree(t *testing.T, what string, at *tcmpSite, lines []tcmpSiteRep, maxDepth int) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		ok = false
		t.Errorf(what+": "+format, args...)
	}
	byPath := map[string]tcmpSiteRep{}
	for _, l := range lines {
		if _, dup := byPath[l.Path]; dup {
			fail("site %s listed twice", l.Path)
		}
		byPath[l.Path] = l
	}
	listed := 0
	for _, s := range at.subtree() {
		depth := strings.Count(s.below(at), "/") + 1
		path := at.name + "/" + s.below(at)
		if s == at {
			depth, path = 0, at.name
			if len(s.computers) == 0 {
				continue // a site without computers of its own has no line of its own
			}
		}
		if maxDepth >= 0 && depth > maxDepth {
			if _, found := byPath[path]; found {
				fail("site %s listed below depth %d", path, maxDepth)
			}
			continue
		}
		listed++
		l, found := byPath[path]
		if !found {
			fail("no line of %s in %v", path, lines)
			continue
		}
		parent := ""
		if s != at {
			parent = path[:strings.LastIndexByte(path, '/')]
		}
		if l.Name != s.name || l.Depth != depth || l.Parent != parent || l.Subtree == nil {
			fail("%s: name %q depth %d parent %q subtree %v; want %q %d %q and subtree totals", path, l.Name, l.Depth, l.Parent, l.Subtree != nil, s.name, depth, parent)
			continue
		}
		var computers, compliant int64
		var cells [4]int64
		sites := 0
		for _, d := range s.subtree() {
			if d == at && len(d.computers) == 0 {
				continue
			}
			tr := cmpCount(d.name, d.cat, d.computers)
			sites++
			computers += tr.Computers
			compliant += tr.Compliant
			for i := range cells {
				cells[i] += tr.Cells[i]
			}
		}
		sub := l.Subtree
		if sub.Sites != sites || sub.Computers != computers || sub.Compliant != compliant || sub.Cells.arr() != cells ||
			!cmpSameFloat(sub.Compliance, cmpRatio(compliant, computers), 1e-9) {
			fail("%s: subtree sites %d computers %d compliant %d cells %v; want %d %d %d %v", path, sub.Sites, sub.Computers, sub.Compliant,
				sub.Cells.arr(), sites, computers, compliant, cells)
		}
	}
	if len(lines) != listed {
		fail("%d lines, want %d", len(lines), listed)
	}
	return ok
}

// tcmpSeqs reads, for every site below the root, the sequence its own parent holds of its
// summary (GET /v1/compliance at the parent, the site's line), by site name.
func tcmpSeqs(t *testing.T, root *tcmpSite) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, s := range root.subtree() {
		if len(s.children) == 0 {
			continue
		}
		o, _ := tcmpOverview(t, s.p, "depth=1")
		for _, c := range s.children {
			if line, ok := o.site(c.name); ok {
				out[c.name] = line.Seq
			}
		}
	}
	return out
}

// tcmpRows computes the per-bulletin rows across the given sites (by key), with the root's
// bulletin metadata.
func tcmpRows(sites []*tcmpSite, meta map[string]catSummary, f cmpFilter) map[string]cmpRow {
	var truths []cmpTruth
	for _, s := range sites {
		if s.parent == nil && len(s.computers) == 0 {
			continue
		}
		truths = append(truths, cmpCount(s.key(), s.cat, s.computers))
	}
	sort.Slice(truths, func(i, j int) bool { return truths[i].Site < truths[j].Site })
	return cmpExpectRows(truths, meta, f)
}

// tcmpRowsQuery is the bulletin report's query for a site filter.
func tcmpRowsQuery(site string, subtree bool) string {
	v := url.Values{"site": {site}}
	if subtree {
		v.Set("subtree", "true")
	}
	return v.Encode()
}
