package integration

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Compliance across tiers (docs/compliance.md, "Across tiers"): real processes root hq → relay
// emea → relay emea-de → leaf emea-de-berlin, and leaf emea-fr under emea, every site managing
// the same languages. Agents post scans at both leaves and at the relay emea; each relay forwards
// its descendants' newest summaries, and the root's report must list every site once by its
// path, with numbers, subtree totals and grand totals equal to what the test computes from the
// scans it sent. A new scan at the leaf on the fourth tier then reaches the root's numbers, and
// a leaf removed at its relay leaves the root's report.
func TestTiersCompliance(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	dir := t.TempDir()
	langs := []string{"*"}
	feed := catGenerate(t, dir, "gen.json", "--bulletins", "30", "--languages", "3", "--seed", "41")

	root := &tcmpSite{name: "hq", role: "parent", p: hierStartParent(t, "hq", langs), computers: map[string]*cmpComputer{}}
	hierImport(t, root.p, map[string]any{"source": feed})
	emea := tcmpStart(t, root, "emea", "relay", langs)
	hierReplicateNow(t, root.p, "emea", "")
	de := tcmpStart(t, emea, "emea-de", "relay", langs)
	fr := tcmpStart(t, emea, "emea-fr", "child", langs)
	hierReplicateNow(t, emea.p, "", "")
	berlin := tcmpStart(t, de, "emea-de-berlin", "child", langs)
	hierReplicateNow(t, de.p, "", "")
	meta, _ := catListAll(t, root.p, "")
	for _, s := range root.subtree() {
		s.cat = cmpReadCatalog(t, s.p)
		if len(s.cat.Bulletins) != len(meta) || len(s.cat.Bulletins) == 0 {
			t.Fatalf("%s holds %d bulletins, the root %d: every site manages the same languages", s.name, len(s.cat.Bulletins), len(meta))
		}
	}
	t.Logf("tree of %d sites up with %d bulletins each in %s", len(root.subtree()), len(meta), time.Since(start).Round(time.Millisecond))

	// Scans at both leaves and at the relay emea; each fires its summary rule.
	rng := rand.New(rand.NewPCG(2026, 12))
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	for _, sc := range []struct {
		site *tcmpSite
		n    int
	}{{berlin, 40}, {fr, 30}, {emea, 20}} {
		cmpPost(t, sc.site.p, tcmpScans(sc.site, rng, "a", sc.n, base), sc.site.computers, sc.site.name+" scans")
		cmpComplianceNow(t, sc.site.p)
	}

	// The root lists every site once by path, each with the sequence its own parent holds.
	var seqs map[string]uint64
	check := func(what string, report bool) bool {
		seqs = tcmpSeqs(t, root)
		o, lines := tcmpOverview(t, root.p, "")
		want := tcmpWants(root, seqs)
		if !report {
			return tcmpQuiet(o, lines, root, want)
		}
		ok := cmpCheckOverview(t, what, o, want)
		return tcmpCheckTree(t, what, root, lines, -1) && ok
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		return check("", false), "the root's report does not yet match the scans sent at every tier"
	})
	if !check("root report after the first scans", true) {
		t.FailNow()
	}
	t.Logf("root report matches the ground truth of %d computers at %d sites (%s)", 90, len(root.subtree())-1, time.Since(start).Round(time.Millisecond))

	// depth limits the lines, not the totals.
	o, lines := tcmpOverview(t, root.p, "depth=1")
	full, _ := tcmpOverview(t, root.p, "")
	tcmpCheckTree(t, "root report, depth 1", root, lines, 1)
	a, b := o.Totals, full.Totals
	if a.Sites != b.Sites || a.Computers != b.Computers || a.Compliant != b.Compliant || a.Cells != b.Cells || a.Sites != 4 || a.Computers != 90 {
		t.Errorf("depth 1: totals %+v, want those of the whole tree %+v (4 sites, 90 computers)", a, b)
	}
	for _, q := range []string{"depth=-1", "depth=x", "depth=1.5"} {
		if st, _, raw := do(t, "GET", root.p.url+"/v1/compliance?"+q, root.p.token, nil); st != 400 {
			t.Errorf("GET /v1/compliance?%s: %d %s, want 400", q, st, raw)
		}
	}

	// A relay's own report covers its subtree the same way.
	eo, elines := tcmpOverview(t, emea.p, "")
	cmpCheckOverview(t, "emea's report", eo, tcmpWants(emea, seqs))
	tcmpCheckTree(t, "emea's report", emea, elines, -1)

	// Per bulletin, across every site, by a site's path, and by a subtree.
	all := root.subtree()
	cmpCheckRows(t, "bulletins across the tree", cmpGetRows(t, root.p, root.p.token, ""), tcmpRows(all, meta, cmpFilter{}), 1e-9)
	cmpCheckRows(t, "bulletins as CSV", cmpGetCSV(t, root.p, root.p.token, ""), tcmpRows(all, meta, cmpFilter{}), 1e-4)
	for _, f := range []struct {
		site    string
		subtree bool
		sites   []*tcmpSite
	}{
		{"emea/emea-de/emea-de-berlin", false, []*tcmpSite{berlin}},
		{"hq/emea/emea-fr", false, []*tcmpSite{fr}},
		{"emea/emea-de", true, []*tcmpSite{de, berlin}},
		{"hq/emea", true, []*tcmpSite{emea, de, fr, berlin}},
	} {
		what := fmt.Sprintf("bulletins of %s (subtree %t)", f.site, f.subtree)
		cmpCheckRows(t, what, cmpGetRows(t, root.p, root.p.token, tcmpRowsQuery(f.site, f.subtree)), tcmpRows(f.sites, meta, cmpFilter{}), 1e-9)
	}
	if st, _, raw := do(t, "GET", root.p.url+"/v1/compliance/bulletins?site=emea/emea-it", root.p.token, nil); st != 404 {
		t.Errorf("bulletins of an unknown path: %d %s, want 404", st, raw)
	}

	// A new scan at the leaf on the fourth tier reaches the root through two relays.
	before := seqs[berlin.name]
	cmpPost(t, berlin.p, tcmpScans(berlin, rng, "b", 5, base.Add(time.Hour)), berlin.computers, "berlin's second scans")
	res := cmpComplianceNow(t, berlin.p)
	if !res.Sent || res.Seq != before+1 {
		t.Fatalf("berlin's summary after the new scans: %+v, want sent with sequence %d", res, before+1)
	}
	reached := time.Now()
	waitFor(t, 30*time.Second, func() (bool, string) {
		return check("", false) && seqs[berlin.name] == before+1, fmt.Sprintf("berlin's sequence %d has not reached the root", before+1)
	})
	if !check("root report after berlin's new scans", true) {
		t.FailNow()
	}
	final, _ := tcmpOverview(t, root.p, "")
	if final.Totals.Computers != 95 || final.Totals.Sites != 4 {
		t.Errorf("root totals %d computers at %d sites, want 95 at 4", final.Totals.Computers, final.Totals.Sites)
	}
	t.Logf("root totals: %d sites, %d computers, %d compliant, cells %v", final.Totals.Sites, final.Totals.Computers, final.Totals.Compliant, final.Totals.Cells.arr())
	t.Logf("berlin's new summary reached the root in %s", time.Since(reached).Round(time.Millisecond))

	// A leaf removed at its relay leaves the root's report, and the totals, with nothing else.
	if st, _, raw := do(t, "DELETE", emea.p.url+"/v1/children/"+fr.name, emea.p.token, nil); st != 200 && st != 204 {
		t.Fatalf("DELETE /v1/children/%s at emea: %d %s", fr.name, st, raw)
	}
	emea.children = slices.DeleteFunc(emea.children, func(s *tcmpSite) bool { return s == fr })
	waitFor(t, 30*time.Second, func() (bool, string) {
		return check("", false), "the root still reports emea-fr, removed at emea"
	})
	if !check("root report after emea-fr was removed at emea", true) {
		t.FailNow()
	}
	if o, _ := tcmpOverview(t, root.p, ""); o.Totals.Computers != 65 || o.Totals.Sites != 3 {
		t.Errorf("root totals after the removal: %d computers at %d sites, want 65 at 3", o.Totals.Computers, o.Totals.Sites)
	}
	if o, _ := tcmpOverview(t, emea.p, ""); o.Totals.Computers != 65 || o.Totals.Sites != 3 {
		t.Errorf("emea's totals after it removed emea-fr: %d computers at %d sites, want 65 at 3: %v", o.Totals.Computers, o.Totals.Sites, o.Sites)
	}
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

// tcmpQuiet is the root report's check without reporting: whether every site's numbers, the
// tree's fields and the totals already match.
func tcmpQuiet(o cmpOverview, lines []tcmpSiteRep, root *tcmpSite, want []cmpSiteWant) bool {
	if len(o.Sites) != len(want) || len(lines) != len(want) {
		return false
	}
	var computers int64
	for _, w := range want {
		s, ok := o.site(w.Truth.Site)
		if !ok || s.Computers != w.Truth.Computers || s.Compliant != w.Truth.Compliant || s.Cells.arr() != w.Truth.Cells ||
			(w.Seq != 0 && s.Seq != w.Seq) {
			return false
		}
		computers += w.Truth.Computers
	}
	for _, l := range lines {
		if !strings.HasPrefix(l.Path, root.name+"/") || l.Subtree == nil {
			return false
		}
	}
	return o.Totals.Computers == computers
}
