package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Helpers of the N-tier test (tiers_test.go): a tree of sites (one root parent, relays, child
// leaves) started parents first, and the checks that span the whole tree. Every name carries the
// tier prefix. What each site must hold is computed from the feed file with hierFeed.view, as in
// the two-tier tests: nothing is taken from the server's code.

// tierSite is one site of the tree.
type tierSite struct {
	name string
	role string   // "parent" (the root), "relay" or "child"
	own  []string // the site's own language ranges
	up   *tierSite
	down []*tierSite
	// fixedPort makes the site listen on a port kept across restarts, so that its children's
	// --parent stays valid when the test kills and relaunches it.
	fixedPort bool
	// viaProxy puts an in-process toxiproxy proxy between the site and its parent.
	viaProxy bool
	p        *proc
	proxy    *fltProxy
}

// tierTree is the whole tree; sites lists parents before their children.
type tierTree struct {
	root  *tierSite
	sites []*tierSite
}

// tierNewTree declares a tree with its root parent.
func tierNewTree(name string, own ...string) *tierTree {
	root := &tierSite{name: name, role: "parent", own: own}
	return &tierTree{root: root, sites: []*tierSite{root}}
}

// add declares a site below parent.
func (tr *tierTree) add(parent *tierSite, name, role string, own ...string) *tierSite {
	s := &tierSite{name: name, role: role, own: own, up: parent}
	parent.down = append(parent.down, s)
	tr.sites = append(tr.sites, s)
	return s
}

// below lists every site but the root, each with a parent.
func (tr *tierTree) below() []*tierSite { return tr.sites[1:] }

// path is the site's path from the root: hq/emea/emea-de.
func (s *tierSite) path() string {
	if s.up == nil {
		return s.name
	}
	return s.up.path() + "/" + s.name
}

// pathBelow is the site's path below an ancestor, starting with the ancestor's child.
func (s *tierSite) pathBelow(ancestor *tierSite) string {
	return strings.TrimPrefix(s.path(), ancestor.path()+"/")
}

// descendants lists every site below s, depth first.
func (s *tierSite) descendants() []*tierSite {
	var out []*tierSite
	for _, d := range s.down {
		out = append(out, d)
		out = append(out, d.descendants()...)
	}
	return out
}

// union is what a site reports up: its own ranges and every descendant's, as a sorted set.
func (s *tierSite) union() []string {
	all := slices.Clone(s.own)
	for _, d := range s.descendants() {
		all = append(all, d.own...)
	}
	return tierSet(all)
}

// tierSet is a sorted list of distinct strings.
func tierSet(s []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

// depth is the site's tier: 0 for the root.
func (s *tierSite) depth() int {
	if s.up == nil {
		return 0
	}
	return s.up.depth() + 1
}

// start starts every site tier by tier, the sites of one tier together: the root with its
// languages, each other site enrolled at its parent (POST /v1/children) and started with its join
// token, as hierStartChild does. The root and the relays replicate the catalog continuously, so
// an import at the root flows down every tier without anyone asking.
func (tr *tierTree) start(t *testing.T) {
	t.Helper()
	for depth := 0; ; depth++ {
		var tier []*tierSite
		for _, s := range tr.sites {
			if s.depth() == depth {
				tier = append(tier, s)
			}
		}
		if len(tier) == 0 {
			break
		}
		began := time.Now()
		for _, s := range tier {
			o := siteOpts{Name: s.name, Role: s.role, Languages: s.own}
			if s.up != nil {
				parentURL := s.up.p.url
				if s.viaProxy {
					s.proxy = fltStartProxy(t, strings.TrimPrefix(s.up.p.url, "http://"))
					parentURL = s.proxy.url()
				}
				o.Extra = []string{"--parent", parentURL, "--join-token", hierEnrol(t, s.up.p, s.name)}
			}
			if s.fixedPort {
				// serve's flags are pflag: the last --listen wins over the harness's 127.0.0.1:0.
				o.Extra = append(o.Extra, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			}
			s.p = tierLaunch(t, o)
		}
		for _, s := range tier {
			s.p.waitUp(t, 30*time.Second)
			s.p.token = readAdminToken(t, s.p.dataDir)
			if s.role != "child" {
				tierContinuous(t, s.p)
			}
		}
		for _, s := range tier {
			if s.up != nil {
				waitFor(t, 30*time.Second, func() (bool, string) {
					c, ok := tierChildren(t, s.up.p)[s.name]
					return ok && c.Joined && c.RangesReported, fmt.Sprintf("%s at %s: %+v, want joined with ranges reported", s.name, s.up.name, c)
				})
			}
		}
		var names []string
		for _, s := range tier {
			names = append(names, fmt.Sprintf("%s (%s %v) at %s", s.path(), s.role, s.own, s.p.url))
		}
		t.Logf("tier %d started in %v: %s", depth, time.Since(began).Round(time.Millisecond), strings.Join(names, ", "))
	}
}

// tierLaunch starts a server process as startSite does, without waiting for it: the sites of a
// tier start together, and the caller waits for each (proc.waitUp) and reads its admin token.
func tierLaunch(t *testing.T, o siteOpts) *proc {
	t.Helper()
	requireBinary(t)
	base := t.TempDir() // registered before the proc cleanup: removed after it
	p := &proc{name: o.Name, dataDir: filepath.Join(base, "data"), logPath: filepath.Join(base, o.Name+".log")}
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.args = []string{"serve", "--role", o.Role, "--name", o.Name, "--data-dir", p.dataDir, "--listen", "127.0.0.1:0",
		"--languages", strings.Join(o.Languages, ",")}
	p.args = append(p.args, o.Extra...)
	p.args = append(p.args, testImportAllow(o.Extra)...)
	t.Cleanup(func() { p.cleanup(t) })
	p.launch(t)
	return p
}

// tierContinuous sets a parent's or relay's catalog rule to continuous.
func tierContinuous(t *testing.T, p *proc) {
	t.Helper()
	var rules struct {
		Catalog string `json:"catalog"`
	}
	doJSON(t, "PUT", p.url+"/v1/replication/rules", p.token, map[string]any{"catalog": "continuous"}, 200, &rules)
	if rules.Catalog != "continuous" {
		t.Fatalf("%s: PUT /v1/replication/rules {catalog: continuous} answered catalog %q", p.name, rules.Catalog)
	}
}

// views is what every site must hold of a feed: the root the feed filtered by its ranges (its
// import keeps only those), every other site that filtered again by what it reports up (its own
// ranges and its subtree's).
func (tr *tierTree) views(f *hierFeed) map[*tierSite]*hierView {
	out := map[*tierSite]*hierView{tr.root: f.view(tr.root.own)}
	for _, s := range tr.below() {
		out[s] = f.view(tr.root.own, s.union())
	}
	return out
}

// tierCounts is a view's bulletin and update counts, as fltConverged compares them.
func tierCounts(v *hierView) fltCounts { return fltCounts{len(v.B), len(v.U)} }

// converged checks once that every site below the root holds its view's counts, that the newest
// catalog run at its parent verified with equal digests, and that this run reached the parent's
// current catalog version. It reports the first site that has not.
func (tr *tierTree) converged(views map[*tierSite]*hierView) (bool, string) {
	for _, s := range tr.below() {
		r, ok, why := fltConverged(s.up.p, s.p, s.name, tierCounts(views[s]))
		if !ok {
			return false, s.path() + ": " + why
		}
		_, version, err := fltTryCounts(s.up.p.url, s.up.p.token)
		if err != nil {
			return false, s.up.path() + ": catalog: " + err.Error()
		}
		if r.To != version {
			return false, fmt.Sprintf("%s: newest verified run %s reached %s's catalog version %d, which is at %d", s.path(), r.ID, s.up.name, r.To, version)
		}
	}
	return true, ""
}

// waitConverged waits until the whole tree has converged to views, with no operator action, and
// then compares every site with its view in full (hierCheckView, sample bulletins each).
func (tr *tierTree) waitConverged(t *testing.T, what string, views map[*tierSite]*hierView, timeout time.Duration, sample int) bool {
	t.Helper()
	start := time.Now()
	if !eventually(t, timeout, func() (bool, string) { return tr.converged(views) }) {
		t.Errorf("%s: the tree did not converge within %v", what, timeout)
		tr.logLinks(t)
		return false
	}
	t.Logf("%s: every tier converged in %v", what, time.Since(start).Round(time.Millisecond))
	for _, s := range tr.sites {
		hierCheckView(t, s.p, views[s], sample)
	}
	// Each link verified its own runs; across the tiers, a site's whole catalog must also have
	// the digest of the root's view for what the site reports up.
	for _, s := range tr.below() {
		root, site := tierViewDigest(t, tr.root.p, s.union()), tierViewDigest(t, s.p, nil)
		if site.Digest == "" || site.Digest != root.Digest {
			t.Errorf("%s: GET /v1/catalog/digest is %q at version %d; the root's for %v is %q at version %d: want the same digest",
				s.path(), site.Digest, site.Version, s.union(), root.Digest, root.Version)
		}
	}
	return true
}

// tierDigest is GET /v1/catalog/digest: the digest of a site's catalog filtered to ranges.
type tierDigest struct {
	Version uint64   `json:"version"`
	Ranges  []string `json:"ranges"`
	Digest  string   `json:"digest"`
}

// tierViewDigest is GET /v1/catalog/digest?ranges=..., or the whole catalog's without ranges.
func tierViewDigest(t *testing.T, p *proc, ranges []string) tierDigest {
	t.Helper()
	u := p.url + "/v1/catalog/digest"
	if len(ranges) > 0 {
		u += "?ranges=" + url.QueryEscape(strings.Join(ranges, ","))
	}
	var d tierDigest
	doJSON(t, "GET", u, p.token, nil, 200, &d)
	return d
}

// logLinks logs, for a failure report, each site's newest run at its parent and its link state.
func (tr *tierTree) logLinks(t *testing.T) {
	t.Helper()
	for _, s := range tr.below() {
		runs, err := fltTryRuns(s.up.p, s.name)
		switch {
		case err != nil:
			t.Logf("%s: runs at %s unavailable: %v", s.path(), s.up.name, err)
		case len(runs) == 0:
			t.Logf("%s: no run at %s", s.path(), s.up.name)
		default:
			t.Logf("%s: %d runs at %s, newest %s", s.path(), len(runs), s.up.name, runs[0])
		}
		if c, v, err := fltTryCounts(s.p.url, s.p.token); err == nil {
			t.Logf("%s: catalog %s at version %d", s.path(), c, v)
		}
		if st, raw, err := tryDo(context.Background(), "GET", s.p.url+"/v1/status", s.p.token, nil); err == nil {
			var link struct {
				Parent json.RawMessage `json:"parent"`
			}
			_ = json.Unmarshal(raw, &link) // logged as read; a bad body shows as null
			t.Logf("%s: GET /v1/status %d, parent link %s", s.path(), st, link.Parent)
		}
	}
}

// tierSubtreeEntry is one descendant of a child in GET /v1/children.
type tierSubtreeEntry struct {
	Path   string   `json:"path"`
	Ranges []string `json:"ranges"`
	Role   string   `json:"role"`
}

// tierChildInfo is one child of GET /v1/children at a parent or relay, with the fields a relay's
// subtree adds: ranges is what the child reported (its own and its subtree's).
type tierChildInfo struct {
	Name           string             `json:"name"`
	Joined         bool               `json:"joined"`
	Connected      bool               `json:"connected"`
	Ranges         []string           `json:"ranges"`
	RangesReported bool               `json:"ranges_reported"`
	OwnRanges      []string           `json:"own_ranges"`
	Subtree        []tierSubtreeEntry `json:"subtree"`
	Cursor         uint64             `json:"cursor"`
	LastRun        *hierRun           `json:"last_run"`
}

// tierChildren is GET /v1/children by name.
func tierChildren(t *testing.T, p *proc) map[string]tierChildInfo {
	t.Helper()
	var l struct {
		Children []tierChildInfo `json:"children"`
	}
	doJSON(t, "GET", p.url+"/v1/children", p.token, nil, 200, &l)
	out := map[string]tierChildInfo{}
	for _, c := range l.Children {
		out[c.Name] = c
	}
	return out
}

// tierChild is GET /v1/children/{name}.
func tierChild(t *testing.T, p *proc, name string) tierChildInfo {
	t.Helper()
	var c tierChildInfo
	doJSON(t, "GET", p.url+"/v1/children/"+url.PathEscape(name), p.token, nil, 200, &c)
	return c
}

// reportedRanges checks once that every parent and relay lists each child with the union of its
// own ranges and its subtree's.
func (tr *tierTree) reportedRanges(t *testing.T) (bool, string) {
	t.Helper()
	for _, s := range tr.below() {
		c, ok := tierChildren(t, s.up.p)[s.name]
		if !ok || !c.Joined || !c.RangesReported || !slices.Equal(tierSet(c.Ranges), s.union()) {
			return false, fmt.Sprintf("GET /v1/children at %s: %s is %+v; want joined with ranges %v reported (its own %v and its subtree's)",
				s.up.name, s.name, c, s.union(), s.own)
		}
	}
	return true, ""
}

// tierAlert is one alert of GET /v1/alerts.
type tierAlert struct {
	Kind         string   `json:"kind"`
	Child        string   `json:"child"`
	Path         string   `json:"path"`
	Range        string   `json:"range"`
	ParentRanges []string `json:"parent_ranges"`
	Message      string   `json:"message"`
}

// tierLanguageAlerts is GET /v1/alerts at a site, language alerts only.
func tierLanguageAlerts(t *testing.T, p *proc) []tierAlert {
	t.Helper()
	var l struct {
		Alerts []tierAlert `json:"alerts"`
	}
	doJSON(t, "GET", p.url+"/v1/alerts", p.token, nil, 200, &l)
	var out []tierAlert
	for _, a := range l.Alerts {
		if a.Kind == "language" {
			out = append(out, a)
		}
	}
	return out
}

// alertsAre checks once that each site's language alerts are exactly want[site] (path and range;
// a site not in want must have none) and that each alert says what it is about.
func (tr *tierTree) alertsAre(t *testing.T, want map[*tierSite][]tierAlert) (bool, string) {
	t.Helper()
	key := func(a tierAlert) string { return a.Path + " " + a.Range }
	for _, s := range tr.sites {
		got := tierLanguageAlerts(t, s.p)
		var g, w []string
		for _, a := range got {
			g = append(g, key(a))
		}
		for _, a := range want[s] {
			w = append(w, key(a))
		}
		if !slices.Equal(slices.Sorted(slices.Values(g)), slices.Sorted(slices.Values(w))) {
			return false, fmt.Sprintf("GET /v1/alerts at %s: language alerts (path range) %q, want exactly %q; alerts %+v", s.name, g, w, got)
		}
		for _, a := range got {
			if a.Message == "" {
				return false, fmt.Sprintf("GET /v1/alerts at %s: alert %+v has no message", s.name, a)
			}
		}
	}
	return true, ""
}

// tierCheckRunsSound fails for every recorded catalog run of a child that did not verify with
// equal digests, except a run whose stream was cut under the child: that one is acknowledged
// with its read error and applied nothing. A replica that does not match is never acceptable.
func tierCheckRunsSound(t *testing.T, s *tierSite) {
	t.Helper()
	cut := 0
	for _, r := range fltRuns(t, s.up.p, s.name) {
		switch {
		case r.Verified && r.ChildDigest == r.ParentDigest:
		case !r.Verified && r.Error != "" && !strings.Contains(strings.ToLower(r.Error), "verif"):
			cut++
		default:
			t.Errorf("%s: a recorded run at %s did not verify with equal digests: %s", s.path(), s.up.name, r)
		}
	}
	t.Logf("%s: every run recorded at %s verified, except %d whose stream was cut", s.path(), s.up.name, cut)
}

// tierWriteFeed writes a feed as hierFeed.write does, but copies each record's bytes as they are
// instead of encoding them again: the test rewrites the 17 MB feed for every import, which
// json.Marshal's validation of every raw record makes take seconds under -race.
func tierWriteFeed(t *testing.T, f *hierFeed, path string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte('{')
	for _, k := range slices.Sorted(maps.Keys(f.head)) {
		b.Write(hierJSON(k))
		b.WriteByte(':')
		b.Write(f.head[k])
		b.WriteByte(',')
	}
	b.WriteString(`"bulletins":[`)
	for i, r := range f.B {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.raw)
	}
	b.WriteString(`],"updates":[`)
	for i, r := range f.U {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.raw)
	}
	b.WriteString("]}")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
