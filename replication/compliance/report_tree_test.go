package compliance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// treeSite is reportSite (children emea, fresh, and apac, stale) with sites below them that
// emea and apac forwarded: emea/emea-de, emea/emea-de/berlin and apac/jp.
func treeSite(t *testing.T) *store.Store {
	t.Helper()
	s := reportSite(t)
	row := func(path string, seq uint64, stale bool, sum Summary) *store.SubtreeSummary {
		body, err := sum.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return &store.SubtreeSummary{Path: path, Child: path[:strings.IndexByte(path, '/')], Seq: seq, Digest: sum.Digest(),
			LastContact: now.Add(-time.Minute), Interval: time.Hour, Stale: stale, Summary: body}
	}
	de := Summary{Site: "emea-de", Computers: 20, Compliant: 10, Cells: [4]int64{10, 10, 0, 20},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{10, 10, 0, 0}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{10, 10, 0, 0}}}}
	berlin := Summary{Site: "berlin", Computers: 4, Compliant: 4, Cells: [4]int64{4, 0, 4, 0},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{4, 0, 0, 0}}, {ID: "B2", C: [4]int64{0, 0, 4, 0}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{4, 0, 0, 0}}, {Severity: "Low", C: [4]int64{0, 0, 4, 0}}}}
	jp := Summary{Site: "jp", Computers: 1, Compliant: 0, Cells: [4]int64{0, 1, 0, 0},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{0, 1, 0, 0}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{0, 1, 0, 0}}}}
	if _, err := s.PutSubtreeSummaries(10, "emea", []*store.SubtreeSummary{row("emea/emea-de", 3, false, de), row("emea/emea-de/berlin", 8, true, berlin)}, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSubtreeSummaries(11, "apac", []*store.SubtreeSummary{row("apac/jp", 1, false, jp)}, nil, false); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOverviewByPath: every site is listed once by path, below its parent, with its depth, its
// own numbers and its subtree's; a site below a stale one is stale; the depth limit cuts lines,
// not totals.
func TestOverviewByPath(t *testing.T) {
	s := treeSite(t)
	r := NewReporter()
	o, err := r.Overview(s, "hq", now)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		site, path, parent string
		depth              int
		computers          int64
		stale              bool
		subSites           int
		subComputers       int64
		subCompliant       int64
	}
	want := []line{
		{"apac", "hq/apac", "hq", 1, 5, true, 2, 6, 5},
		{"apac/jp", "hq/apac/jp", "hq/apac", 2, 1, true, 1, 1, 0},
		{"emea", "hq/emea", "hq", 1, 10, false, 3, 34, 21},
		{"emea/emea-de", "hq/emea/emea-de", "hq/emea", 2, 20, false, 2, 24, 14},
		{"emea/emea-de/berlin", "hq/emea/emea-de/berlin", "hq/emea/emea-de", 3, 4, true, 1, 4, 4},
	}
	if len(o.Sites) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(o.Sites), len(want), o.Sites)
	}
	for i, w := range want {
		g := o.Sites[i]
		got := line{g.Site, g.Path, g.Parent, g.Depth, g.Computers, g.Stale, g.Subtree.Sites, g.Subtree.Computers, g.Subtree.Compliant}
		if got != w {
			t.Errorf("line %d: %+v, want %+v", i, got, w)
		}
	}
	if n := o.Sites[4].Name; n != "berlin" {
		t.Errorf("berlin's name: %q", n)
	}
	if o.Totals.Sites != 5 || o.Totals.StaleSites != 3 || o.Totals.Computers != 40 || o.Totals.Compliant != 26 ||
		o.Totals.Cells != (store.Counts{24, 14, 6, 40}) || o.Totals.Severities["High"] != (store.Counts{23, 14, 1, 2}) {
		t.Fatalf("totals %+v", o.Totals)
	}
	emea := o.Sites[2].Subtree
	if emea.Severities["Low"] != (store.Counts{0, 0, 4, 10}) || emea.StaleSites != 1 || *emea.Compliance != 21.0/34 {
		t.Fatalf("emea's subtree %+v", emea)
	}

	cut, err := r.OverviewDepth(s, "hq", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cut.Sites) != 2 || cut.Sites[0].Site != "apac" || cut.Sites[1].Subtree.Computers != 34 || cut.Totals.Computers != 40 || cut.Totals.Sites != 5 {
		t.Fatalf("depth 1: %+v", cut)
	}
	if none, _ := r.OverviewDepth(s, "hq", now, 0); len(none.Sites) != 0 || none.Totals.Computers != 40 {
		t.Fatalf("depth 0 at a parent without computers: %+v", none)
	}

	// With computers of its own, the reporting site has a line of depth 0 whose subtree is
	// everything.
	if _, err := s.ApplyScans(19, []store.Scan{{ComputerID: "pc-1", ScannedAt: now, Cells: []store.ScanCell{{Update: "u1", State: store.StateInstalled}}}}); err != nil {
		t.Fatal(err)
	}
	withLocal, err := r.OverviewDepth(s, "hq", now, 0)
	if err != nil || len(withLocal.Sites) != 1 {
		t.Fatalf("depth 0 with local computers: %+v, %v", withLocal, err)
	}
	if l := withLocal.Sites[0]; !l.Local || l.Path != "hq" || l.Depth != 0 || l.Parent != "" || l.Computers != 1 ||
		l.Subtree.Sites != 6 || l.Subtree.Computers != 41 || withLocal.Totals.Computers != 41 {
		t.Fatalf("the local line: %+v (subtree %+v)", l, l.Subtree)
	}

	// A child removed here leaves the report with the sites it forwarded.
	if err := s.RemoveChild(20, "emea"); err != nil {
		t.Fatal(err)
	}
	left, err := r.Overview(s, "hq", now)
	if err != nil || len(left.Sites) != 3 || left.Sites[2].Path != "hq/apac/jp" || left.Totals.Computers != 7 {
		t.Fatalf("after emea was removed: %+v, %v", left, err)
	}
}

// TestBulletinsBySitePath: the bulletin report counts the sites below the children too; its
// site filter takes a key or a path, and with subtree every site below it.
func TestBulletinsBySitePath(t *testing.T) {
	s := treeSite(t)
	r := NewReporter()
	rows, err := r.Bulletins(s, "hq", BulletinFilter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Bulletin != "B1" || rows[0].Sites != 5 || rows[0].Installed != 23 || rows[0].Required != 14 {
		t.Fatalf("all sites: %+v", rows)
	}
	for _, tc := range []struct {
		f               BulletinFilter
		sites           int
		installedOfB1   int64
		bulletinsListed int
	}{
		{BulletinFilter{Site: "emea/emea-de"}, 1, 10, 1},
		{BulletinFilter{Site: "hq/emea/emea-de"}, 1, 10, 1},
		{BulletinFilter{Site: "emea", Subtree: true}, 3, 18, 2},
		{BulletinFilter{Site: "hq/emea", Subtree: true}, 3, 18, 2},
		{BulletinFilter{Site: "hq", Subtree: true}, 5, 23, 2},
		{BulletinFilter{Site: "emea"}, 1, 4, 2},
	} {
		got, err := r.Bulletins(s, "hq", tc.f, now)
		if err != nil || len(got) != tc.bulletinsListed || got[0].Sites != tc.sites || got[0].Installed != tc.installedOfB1 {
			t.Errorf("%+v: %+v, %v; want B1 over %d sites with %d installed", tc.f, got, err, tc.sites, tc.installedOfB1)
		}
	}
	if _, err := r.Bulletins(s, "hq", BulletinFilter{Site: "emea/emea-fr"}, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown path: %v", err)
	}
}
