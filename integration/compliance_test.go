package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"patchtree/replication/compliance"
)

// Compliance up the hierarchy (DESIGN.md §6, docs/compliance.md): a parent and three children
// managing different languages share one setup; agents post scans of 2,000 computers to the
// children, each child's summary rule sends its summary up, and the parent's rolled-up reports
// must equal, number for number, what the test computes from the scans it sent and the children's
// catalogs it read over HTTP. Each subtest builds on the state the previous ones left.

// cmpKid is one child site and the test's model of its computers.
type cmpKid struct {
	name      string
	ranges    []string
	n         int // computers scanned
	p         *proc
	agent     string // tokens at the child
	auditor   string
	cat       *cmpCatalog
	computers map[string]*cmpComputer
	subs      []*cmpSubmission // every submission of the Scans subtest, in order
	seq       uint64           // the summary sequence the parent holds
}

// cmpSuite is the shared setup of TestCompliance.
type cmpSuite struct {
	parent   *proc
	kids     []*cmpKid
	auditor  string // tokens at the parent
	agent    string
	rollout  string
	feed     *hierFeed
	feedPath string
	meta     map[string]catSummary // the parent's bulletins (report metadata)
	base     time.Time             // scans are taken from base on
	rogue    *cmpSiteWant          // the hand-made child of the Sequences subtest, once it reported
	// The parent's own computers (ParentLocal subtest) and its catalog.
	local     map[string]*cmpComputer
	parentCat *cmpCatalog
}

const cmpSeed = 20261121

func TestCompliance(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	dir := t.TempDir()
	s := &cmpSuite{base: time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)}

	// The feed: a generated one (every bulletin in many languages, updates shared by bulletins)
	// plus bulletins of another vendor: one across three children's languages and neutral, one
	// sharing that neutral update, one for two children, one in a language no child manages.
	gen := catGenerate(t, dir, "gen.json", "--bulletins", "80", "--languages", "16", "--seed", "23")
	s.feed = hierParseFeed(t, gen)
	cmpAddBulletin(s.feed, "TSA-2024-001", "Testsoft", "Critical", "2024-02-13",
		[][2]string{{"tsa-001-de", "de"}, {"tsa-001-en", "en-US"}, {"tsa-001-neutral", ""}})
	cmpAddBulletin(s.feed, "TSA-2024-002", "Testsoft", "High", "2024-02-13", [][2]string{{"tsa-001-neutral", ""}, {"tsa-002-de", "de"}})
	cmpAddBulletin(s.feed, "TSA-2023-007", "Testsoft", "Low", "2023-07-11", [][2]string{{"tsa-007-ar", "ar"}, {"tsa-007-cs", "cs"}})
	b := s.feed.B[len(s.feed.B)-1] // a title that CSV must quote
	b.raw = hierSetField(b.raw, "title", `Testsoft fixes, "Low" ones`)
	cmpAddBulletin(s.feed, "TSA-2022-010", "Testsoft", "Moderate", "2022-10-01", [][2]string{{"tsa-010-ja", "ja"}})
	s.feedPath = filepath.Join(dir, "feed.json")
	s.feed.write(t, s.feedPath)

	s.parent = hierStartParent(t, "hq", []string{"*"})
	s.auditor = createToken(t, s.parent.url, s.parent.token, "auditor", "auditor-1").Token
	s.agent = createToken(t, s.parent.url, s.parent.token, "agent", "agent-hq").Token
	s.rollout = createToken(t, s.parent.url, s.parent.token, "rollout", "rollout-1").Token
	s.kids = []*cmpKid{
		{name: "north", ranges: []string{"de"}, n: 900},
		{name: "south", ranges: []string{"en", "cs"}, n: 700},
		{name: "east", ranges: []string{"ar", "bg"}, n: 400},
	}
	for _, k := range s.kids {
		k.p = hierStartChild(t, s.parent, k.name, k.ranges)
		k.computers = map[string]*cmpComputer{}
	}
	hierImport(t, s.parent, map[string]any{"source": s.feedPath})

	// A custom severity on a bulletin whose vendor severity is Low and on a generated Moderate
	// one: the severity filter matches either.
	if st, _, raw := do(t, "POST", s.parent.url+"/v1/catalog/severities", s.parent.token, map[string]any{"name": "Urgent"}); st != 200 && st != 201 {
		t.Fatalf("POST /v1/catalog/severities {name: Urgent}: %d %s", st, raw)
	}
	moderate := ""
	for _, b := range s.feed.B {
		var r struct{ Severity string }
		_ = json.Unmarshal(b.raw, &r)
		if r.Severity == "Moderate" && !strings.HasPrefix(b.ID, "TSA-") {
			moderate = b.ID
			break
		}
	}
	for _, id := range []string{"TSA-2023-007", moderate} {
		doJSON(t, "PUT", s.parent.url+"/v1/catalog/bulletins/"+id+"/custom-severity", s.parent.token, map[string]any{"severity": "Urgent"}, 200, nil)
	}
	hierReplicateNow(t, s.parent, "", "")
	s.meta, _ = catListAll(t, s.parent, "")

	for _, k := range s.kids {
		k.cat = cmpReadCatalog(t, k.p)
		v := s.feed.view([]string{"*"}, k.ranges)
		if len(v.B) != len(k.cat.Bulletins) || len(v.U) != len(k.cat.Updates) {
			t.Fatalf("%s %v holds %d bulletins and %d updates; its view of the feed has %s", k.name, k.ranges, len(k.cat.Bulletins), len(k.cat.Updates), v)
		}
		k.agent = createToken(t, k.p.url, k.p.token, "agent", "agent-"+k.name).Token
		k.auditor = createToken(t, k.p.url, k.p.token, "auditor", "auditor-"+k.name).Token
		t.Logf("%s %v: %d bulletins, %d updates", k.name, k.ranges, len(k.cat.Bulletins), len(k.cat.Updates))
	}

	// The summary rule fires when a child's leader starts: every child reports (with no
	// computers yet) before any scan is posted.
	waitFor(t, 30*time.Second, func() (bool, string) {
		o := cmpGetOverview(t, s.parent, s.parent.token)
		for _, k := range s.kids {
			site, ok := o.site(k.name)
			if !ok || site.Seq == 0 {
				return false, fmt.Sprintf("the parent's GET /v1/compliance has no summary of %s yet: %v", k.name, o.Sites)
			}
			k.seq = site.Seq
		}
		return true, ""
	})
	for _, k := range s.kids {
		if runs := cmpComplianceRuns(t, s.parent, k.name); len(runs) != int(k.seq) {
			t.Errorf("%s: %d compliance runs at the parent after its start, want %d (one per sequence): %v", k.name, len(runs), k.seq, runs)
		}
	}
	t.Logf("setup: parent, %d children, catalog imported and replicated in %v", len(s.kids), time.Since(start).Round(time.Millisecond))

	for _, st := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Scans", s.testScans},
		{"Reports", s.testReports},
		{"ResendAndChange", s.testResendAndChange},
		{"Sequences", s.testSequences},
		{"ParentLocal", s.testParentLocal},
		{"Roles", s.testRoles},
		{"CatalogChange", s.testCatalogChange},
		{"Stale", s.testStale},
	} {
		t0 := time.Now()
		t.Run(st.name, st.fn)
		t.Logf("subtest %s took %v", st.name, time.Since(t0).Round(time.Millisecond))
	}
	t.Logf("TestCompliance took %v", time.Since(start).Round(time.Millisecond))
}

// truths are the expected summaries of every site the parent reports.
func (s *cmpSuite) truths() []cmpTruth {
	var out []cmpTruth
	for _, w := range s.wants() {
		out = append(out, w.Truth)
	}
	return out
}

func (s *cmpSuite) wants() []cmpSiteWant {
	var out []cmpSiteWant
	for _, k := range s.kids {
		out = append(out, cmpSiteWant{Truth: cmpCount(k.name, k.cat, k.computers), Seq: k.seq, Interval: "1h0m0s"})
	}
	if s.rogue != nil {
		out = append(out, *s.rogue)
	}
	if s.local != nil {
		out = append(out, cmpSiteWant{Truth: cmpCount(s.parent.name, s.parentCat, s.local), Local: true})
	}
	return out
}

func (s *cmpSuite) kid(name string) *cmpKid {
	for _, k := range s.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// ---- Scans ----

// makeSubmissions builds a child's scans: two NDJSON batches and single-object posts, with
// invalid results and invalid scans among them.
func (s *cmpSuite) makeSubmissions(k *cmpKid, idx int) []*cmpSubmission {
	rng := rand.New(rand.NewPCG(cmpSeed, uint64(idx)))
	ups := k.cat.updateIDs()
	var foreign []string // updates of the other children that this one does not hold
	for _, o := range s.kids {
		for _, u := range o.cat.updateIDs() {
			if _, mine := k.cat.Updates[u]; !mine && !slices.Contains(foreign, u) {
				foreign = append(foreign, u)
			}
		}
	}
	sort.Strings(foreign)
	plus2 := time.FixedZone("+02:00", 2*3600)
	pick := func(clean bool) string {
		x := rng.IntN(100)
		if clean {
			switch {
			case x < 60:
				return "installed"
			case x < 95:
				return "not_required"
			}
			return "unknown"
		}
		switch {
		case x < 45:
			return "installed"
		case x < 65:
			return "required"
		case x < 90:
			return "not_required"
		}
		return "unknown"
	}
	var valid []*cmpScan
	for i := 0; i < k.n; i++ {
		at := s.base.Add(time.Duration(rng.IntN(3600)) * time.Second)
		sc := &cmpScan{ComputerID: fmt.Sprintf("%s-pc-%04d", k.name, i), Valid: true, Sent: map[string]string{},
			Kept: map[string]string{}, Bad: map[string]string{}}
		switch {
		case i%7 == 0:
			sc.At = at.In(plus2).Format(time.RFC3339)
		case i%11 == 0:
			at = at.Add(250 * time.Millisecond)
			sc.At = at.Format(time.RFC3339Nano)
		default:
			sc.At = at.Format(time.RFC3339)
		}
		if i == 20 { // less than an hour in the future: valid
			at = time.Now().UTC().Add(30 * time.Minute).Truncate(time.Second)
			sc.At = at.Format(time.RFC3339)
		}
		sc.time = at
		p := []float64{1, 1, .9, .75, .5, .25}[rng.IntN(6)]
		clean := rng.IntN(10) < 4
		for _, u := range ups {
			if rng.Float64() < p {
				st := pick(clean)
				sc.Sent[u], sc.Kept[u] = st, st
			}
		}
		bad := func(u, st, why string) {
			delete(sc.Kept, u)
			sc.Sent[u], sc.Bad[u] = st, why
		}
		switch i {
		case 3: // no results: every update unknown
			sc.Sent, sc.Kept = map[string]string{}, map[string]string{}
		case 4: // no results field at all
			sc.NoResults, sc.Sent, sc.Kept = true, nil, map[string]string{}
		case 5: // only invalid results: the computer is stored with none
			sc.Sent, sc.Kept = map[string]string{}, map[string]string{}
			bad(foreign[0], "installed", "unknown update")
			bad(ups[0], "failed", "state")
		case 10:
			bad(foreign[1], "installed", "unknown update")
		case 11:
			bad("no-such-update-"+k.name, "required", "unknown update")
		case 12:
			bad(ups[rng.IntN(len(ups))], "superseded", "state")
		case 13:
			bad(ups[rng.IntN(len(ups))], "", "state")
			bad(foreign[2], "not_required", "unknown update")
		case k.n - 2:
			bad("no-such-update-single", "installed", "unknown update")
		}
		valid = append(valid, sc)
	}
	now := time.Now().UTC()
	inv := func(id string, noID bool, at string, noAt bool, why string) *cmpScan {
		return &cmpScan{ComputerID: id, NoID: noID, At: at, NoAt: noAt, Reason: why,
			Sent: map[string]string{ups[0]: "installed", "no-such-update-x": "bogus"}}
	}
	okAt := s.base.Format(time.RFC3339)
	b1 := slices.Clone(valid[:(k.n-5)/2])
	b2 := slices.Clone(valid[(k.n-5)/2 : k.n-5])
	b1 = slices.Insert(b1, 0, inv("", true, okAt, false, "computer_id"))
	b1 = slices.Insert(b1, 7, inv("", false, okAt, false, "computer_id"))
	b1 = slices.Insert(b1, 100, inv(k.name+"-bad-time-1", false, "yesterday", false, "scanned_at"))
	b1 = slices.Insert(b1, len(b1)-1, inv(k.name+"-bad-time-2", false, "", true, "scanned_at"))
	b2 = slices.Insert(b2, 3, inv(k.name+"-bad-time-3", false, "2026-11-21 08:00:00", false, "scanned_at"))
	b2 = append(b2, inv(k.name+"-future-1", false, now.Add(3*time.Hour).Format(time.RFC3339), false, "scanned_at"))
	subs := []*cmpSubmission{{Scans: b1, NDJSON: true, Token: k.agent}}
	for i, sc := range valid[k.n-5:] {
		tok := k.agent
		if i == 4 {
			tok = k.p.token // admins may post scans too
		}
		subs = append(subs, &cmpSubmission{Scans: []*cmpScan{sc}, Token: tok})
		if i == 2 {
			subs = append(subs, &cmpSubmission{Token: k.agent,
				Scans: []*cmpScan{inv(k.name+"-bad-time-4", false, "2026-13-45T99:00:00Z", false, "scanned_at")}})
		}
	}
	subs = append(subs, &cmpSubmission{Scans: b2, NDJSON: true, Token: k.agent, Blank: 2})
	// The same computer twice in one batch: a scan replaces the stored one unless that one is
	// newer, in the batch's order too (pc-0100: the second, older scan is ignored; pc-0101: both
	// are stored, the second wins).
	again := func(sc *cmpScan, d time.Duration) *cmpScan {
		at := sc.time.Add(d)
		n := &cmpScan{ComputerID: sc.ComputerID, At: at.Format(time.RFC3339Nano), time: at, Valid: true, Sent: map[string]string{}, Kept: map[string]string{}}
		for _, u := range ups {
			if rng.Float64() < .5 {
				st := pick(false)
				n.Sent[u], n.Kept[u] = st, st
			}
		}
		return n
	}
	subs = append(subs, &cmpSubmission{NDJSON: true, Token: k.agent, Scans: []*cmpScan{
		again(valid[100], 2*time.Minute), again(valid[100], time.Minute), again(valid[101], time.Minute), again(valid[101], 2*time.Minute)}})
	return subs
}

// testScans: scans of 2,000 computers posted to the children (NDJSON batches and single
// objects); the answers count exactly what was stored and list every rejected record.
func (s *cmpSuite) testScans(t *testing.T) {
	total, results, rejected := 0, 0, 0
	t0 := time.Now()
	for i, k := range s.kids {
		k.subs = s.makeSubmissions(k, i)
		for j, sub := range k.subs {
			what := fmt.Sprintf("%s submission %d (%d scans, ndjson %t)", k.name, j+1, len(sub.Scans), sub.NDJSON)
			got := cmpPost(t, k.p, sub, k.computers, what)
			total += got.Stored
			results += got.ResultsStored
			rejected += got.Rejected
		}
		if len(k.computers) != k.n {
			t.Fatalf("test bug: %s models %d computers, want %d", k.name, len(k.computers), k.n)
		}
	}
	t.Logf("posted %d scans with %d results (%d records rejected) to %d children in %v", total, results, rejected, len(s.kids), time.Since(t0).Round(time.Millisecond))

	// 1,200 scans without computer_id: every one rejected, 1,000 listed, nothing stored.
	k := s.kids[0]
	many := &cmpSubmission{NDJSON: true, Token: k.agent}
	for i := 0; i < 1200; i++ {
		many.Scans = append(many.Scans, &cmpScan{NoID: true, At: s.base.Format(time.RFC3339), Reason: "computer_id",
			Sent: map[string]string{k.cat.updateIDs()[0]: "installed"}})
	}
	cmpPost(t, k.p, many, k.computers, k.name+": 1,200 scans without computer_id")

	// Bodies that are not scans at all are refused whole and store nothing.
	for _, c := range []struct {
		what, query, body string
	}{
		{"a body that is not JSON", "", "this is not json"},
		{"two objects without format=ndjson", "", `{"computer_id":"x-1","scanned_at":"` + s.base.Format(time.RFC3339) + `","results":{}}` + "\n" +
			`{"computer_id":"x-2","scanned_at":"` + s.base.Format(time.RFC3339) + `","results":{}}`},
		// docs/compliance.md: "A body that is not JSON at all ... is 400" (with or without
		// ndjson).
		{"an NDJSON body that is not JSON at all", "?format=ndjson", "this is not json\nneither is this\n"},
	} {
		st, m, raw := do(t, "POST", k.p.url+"/v1/scans"+c.query, k.agent, c.body)
		checkError(t, k.name+": POST /v1/scans with "+c.what, st, m, raw, 400, "")
	}
}

// ---- Reports ----

// fireAll fires every child's summary rule; each must send (its numbers changed) a new sequence
// that the parent records as one compliance run.
func (s *cmpSuite) fireAll(t *testing.T, kids []*cmpKid) {
	t.Helper()
	for _, k := range kids {
		before := cmpComplianceRuns(t, s.parent, k.name)
		res := cmpComplianceNow(t, k.p)
		tr := cmpCount(k.name, k.cat, k.computers)
		if !res.Sent || res.Seq <= k.seq || res.Computers != tr.Computers || res.Bulletins != len(k.cat.Bulletins) || res.Digest == "" {
			t.Errorf("%s: summary rule answered %+v; want sent with a sequence after %d, %d computers, %d bulletins, a digest",
				k.name, res, k.seq, tr.Computers, len(k.cat.Bulletins))
		}
		after := cmpComplianceRuns(t, s.parent, k.name)
		if len(after) != len(before)+1 {
			t.Errorf("%s: %d compliance runs at the parent before the rule fired, %d after; want one more", k.name, len(before), len(after))
		} else if r := after[0]; r.To != res.Seq || r.Records != len(k.cat.Bulletins) || r.Trigger != "replicate-now" ||
			r.BytesWire != res.BytesWire || r.BytesRaw != res.BytesRaw || r.BytesWire <= 0 || r.BytesRaw < r.BytesWire || r.Error != "" {
			t.Errorf("%s: newest compliance run %v; want to %d, %d records (bulletins), trigger replicate-now, %d bytes wire / %d raw as the child sent",
				k.name, r, res.Seq, len(k.cat.Bulletins), res.BytesWire, res.BytesRaw)
		} else {
			t.Logf("%s: %v", k.name, r)
		}
		k.seq = res.Seq
		if site, ok := cmpGetOverview(t, s.parent, s.parent.token).site(k.name); !ok || site.Seq != res.Seq ||
			site.AsOf.Before(res.At.Add(-5*time.Second)) || site.AsOf.After(res.At.Add(time.Second)) {
			t.Errorf("%s at the parent after the rule sent seq %d at %v: %v (as_of %v); want that sequence, as of when it was built",
				k.name, res.Seq, res.At, site, site.AsOf)
		}
	}
}

// checkReports compares every number of the parent's reports, read with token, with the truth:
// the overview, the bulletins across sites and per site, filtered, and as CSV.
func (s *cmpSuite) checkReports(t *testing.T, what, token string) {
	t.Helper()
	t0 := time.Now()
	o := cmpGetOverview(t, s.parent, token)
	cmpCheckOverview(t, what+": GET /v1/compliance", o, s.wants())
	for _, site := range o.Sites {
		if (site.Local && s.local == nil) || site.Stale {
			t.Errorf("%s: GET /v1/compliance at the parent: %v; want no local site (the parent has no computers) and no stale one", what, site)
		}
	}
	truths := s.truths()
	all := cmpGetRows(t, s.parent, token, "")
	cmpCheckRows(t, what+": GET /v1/compliance/bulletins", all, cmpExpectRows(truths, s.meta, cmpFilter{}), 1e-9)
	for _, tr := range truths {
		f := cmpFilter{Site: tr.Site}
		cmpCheckRows(t, what+": GET /v1/compliance/bulletins?"+f.query(), cmpGetRows(t, s.parent, token, f.query()), cmpExpectRows(truths, s.meta, f), 1e-9)
	}
	var days []string
	for _, m := range s.meta {
		if d := m.Released[:min(10, len(m.Released))]; d != "" && !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	sort.Strings(days)
	filters := []cmpFilter{
		{Severity: "critical"},
		{Severity: "URGENT"},
		{Severity: "Low"},
		{Vendor: "testsoft"},
		{Vendor: "Mozilla", Severity: "high"},
		{From: days[len(days)/3], To: days[2*len(days)/3]},
		{From: days[len(days)-3]},
		{To: days[1]},
		{Site: "south", Severity: "Critical", From: days[len(days)/2]},
		{Site: "east", Vendor: "TESTSOFT"},
		{Bulletin: "TSA-2024-001"},
		{Vendor: "nobody"},
	}
	for _, f := range filters {
		want := cmpExpectRows(truths, s.meta, f)
		if len(want) == 0 && f.Vendor != "nobody" {
			t.Errorf("test bug: filter %s selects no bulletin", f.query())
		}
		cmpCheckRows(t, what+": GET /v1/compliance/bulletins?"+f.query(), cmpGetRows(t, s.parent, token, f.query()), want, 1e-9)
	}
	// CSV: the same rows as the JSON, in the same order (compliance has four decimals).
	for _, f := range []cmpFilter{{}, {Site: "east", Vendor: "mozilla"}, {Severity: "urgent"}} {
		js := cmpGetRows(t, s.parent, token, f.query())
		cs := cmpGetCSV(t, s.parent, token, f.query())
		if len(cs) != len(js) {
			t.Errorf("%s: CSV of ?%s has %d rows, JSON %d", what, f.query(), len(cs), len(js))
			continue
		}
		for i := range js {
			a, b := js[i], cs[i]
			ac, bc := a.Compliance, b.Compliance
			a.Compliance, b.Compliance = nil, nil
			if a != b || !cmpSameFloat(ac, bc, 5e-5) {
				a.Compliance, b.Compliance = ac, bc
				t.Errorf("%s: CSV of ?%s row %d:\n  csv  %v\n  json %v", what, f.query(), i+1, b, a)
			}
		}
		cmpCheckRows(t, what+": CSV ?"+f.query(), cs, cmpExpectRows(truths, s.meta, f), 5e-5)
	}
	st, m, raw := do(t, "GET", s.parent.url+"/v1/compliance/bulletins?site=nowhere", token, nil)
	checkError(t, what+": GET /v1/compliance/bulletins?site=nowhere", st, m, raw, 404, "nowhere")
	st, m, raw = do(t, "GET", s.parent.url+"/v1/compliance/bulletins?released_from=2020/01/01", token, nil)
	checkError(t, what+": GET /v1/compliance/bulletins?released_from=2020/01/01", st, m, raw, 400, "released_from")
	t.Logf("%s: overview %d sites, %d computers, %d compliant, cells %v; %d bulletin rows; %d filters and 3 CSVs checked in %v", what,
		o.Totals.Sites, o.Totals.Computers, o.Totals.Compliant, o.Totals.Cells.arr(), len(all), len(filters), time.Since(t0).Round(time.Millisecond))
}

// checkChildReports compares a child's own reports (its site only, local) with the truth;
// bulletin metadata comes from the child's catalog.
func (s *cmpSuite) checkChildReports(t *testing.T, k *cmpKid, token string) {
	t.Helper()
	tr := cmpCount(k.name, k.cat, k.computers)
	cmpCheckOverview(t, k.name+": its own GET /v1/compliance", cmpGetOverview(t, k.p, token), []cmpSiteWant{{Truth: tr, Local: true}})
	cmpCheckRows(t, k.name+": its own GET /v1/compliance/bulletins", cmpGetRows(t, k.p, token, ""), cmpExpectRows([]cmpTruth{tr}, k.cat.Meta, cmpFilter{}), 1e-9)
	f := cmpFilter{Site: k.name, Severity: "critical"}
	cmpCheckRows(t, k.name+": its own GET /v1/compliance/bulletins?"+f.query(), cmpGetRows(t, k.p, token, f.query()), cmpExpectRows([]cmpTruth{tr}, k.cat.Meta, f), 1e-9)
	for _, o := range s.kids {
		if o != k {
			st, m, raw := do(t, "GET", k.p.url+"/v1/compliance/bulletins?site="+o.name, token, nil)
			checkError(t, k.name+": GET /v1/compliance/bulletins?site="+o.name+" (another site)", st, m, raw, 404, o.name)
			break
		}
	}
}

// testReports: each child's summary rule sends its summary; every number of the parent's
// reports matches the truth.
func (s *cmpSuite) testReports(t *testing.T) {
	s.fireAll(t, s.kids)
	s.checkReports(t, "after the first summaries", s.parent.token)
	for _, k := range s.kids {
		s.checkChildReports(t, k, k.p.token)
		tr := cmpCount(k.name, k.cat, k.computers)
		t.Logf("%s: %d computers, %d compliant, cells %v", k.name, tr.Computers, tr.Compliant, tr.Cells)
	}
}

// ---- ResendAndChange ----

// testResendAndChange: the same scans again change nothing and the rule sends nothing; one
// changed result moves the parent's numbers by exactly that change, in one new run.
func (s *cmpSuite) testResendAndChange(t *testing.T) {
	runs := map[string]int{}
	for _, k := range s.kids {
		runs[k.name] = len(cmpComplianceRuns(t, s.parent, k.name))
		for j, sub := range k.subs {
			cmpPost(t, k.p, sub, k.computers, fmt.Sprintf("%s: submission %d again", k.name, j+1))
		}
	}
	fired := time.Now().Add(-time.Second)
	for _, k := range s.kids {
		res := cmpComplianceNow(t, k.p)
		if res.Sent || res.Reason != "unchanged" || res.Seq != k.seq {
			t.Errorf("%s: rule after resending the same scans: %+v; want not sent, reason unchanged, seq %d", k.name, res, k.seq)
		}
		if n := len(cmpComplianceRuns(t, s.parent, k.name)); n != runs[k.name] {
			t.Errorf("%s: %d compliance runs at the parent, %d before an unchanged report; want no new run", k.name, n, runs[k.name])
		}
	}
	before := cmpGetOverview(t, s.parent, s.parent.token)
	cmpCheckOverview(t, "after an unchanged report", before, s.wants())
	for _, k := range s.kids {
		if site, _ := before.site(k.name); site.LastContact == nil || site.LastContact.Before(fired) {
			t.Errorf("%s: last_contact %v after an unchanged report at %v; the report should count as contact", k.name, site.LastContact, fired)
		}
	}

	// One computer of south changes one result: a compliant computer's installed update becomes
	// required, with a later scan time.
	k := s.kid("south")
	inBulletin := map[string]bool{}
	for _, ups := range k.cat.Bulletins {
		for _, u := range ups {
			inBulletin[u] = true
		}
	}
	var pc, upd string
	for _, id := range slices.Sorted(maps.Keys(k.computers)) {
		c := k.computers[id]
		one := cmpCount(k.name, k.cat, map[string]*cmpComputer{id: c})
		if one.Compliant != 1 {
			continue
		}
		for _, u := range slices.Sorted(maps.Keys(c.Results)) {
			if c.Results[u] == "installed" && inBulletin[u] {
				pc, upd = id, u
				break
			}
		}
		if pc != "" {
			break
		}
	}
	if pc == "" {
		t.Fatalf("test bug: south has no compliant computer with an installed update")
	}
	old := k.computers[pc]
	oldTruth := cmpCount(k.name, k.cat, k.computers)
	results := maps.Clone(old.Results)
	results[upd] = "required"
	at := old.At.Add(time.Minute)
	changed := &cmpScan{ComputerID: pc, At: at.Format(time.RFC3339Nano), time: at, Valid: true, Sent: results, Kept: maps.Clone(results)}
	cmpPost(t, k.p, &cmpSubmission{Scans: []*cmpScan{changed}, Token: k.agent}, k.computers, fmt.Sprintf("%s: %s with %s required", k.name, pc, upd))
	newTruth := cmpCount(k.name, k.cat, k.computers)
	var moved []string
	for id, c := range newTruth.Bulletins {
		if o := oldTruth.Bulletins[id]; o != c {
			moved = append(moved, fmt.Sprintf("%s %v→%v", id, o, c))
		}
	}
	sort.Strings(moved)
	t.Logf("%s: %s %s installed → required: compliant %d → %d, cells %v → %v, bulletins %v", k.name, pc, upd,
		oldTruth.Compliant, newTruth.Compliant, oldTruth.Cells, newTruth.Cells, moved)
	if newTruth.Compliant != oldTruth.Compliant-1 || len(moved) == 0 {
		t.Fatalf("test bug: the change should make %s non-compliant and move a bulletin", pc)
	}

	s.fireAll(t, []*cmpKid{k})
	for _, o := range s.kids {
		if o == k {
			continue
		}
		res := cmpComplianceNow(t, o.p)
		if res.Sent || res.Reason != "unchanged" || res.Seq != o.seq {
			t.Errorf("%s: rule after a change at south only: %+v; want not sent, unchanged, seq %d", o.name, res, o.seq)
		}
		if n := len(cmpComplianceRuns(t, s.parent, o.name)); n != runs[o.name] {
			t.Errorf("%s: %d compliance runs, %d before; want no new run", o.name, n, runs[o.name])
		}
	}
	if n := len(cmpComplianceRuns(t, s.parent, k.name)); n != runs[k.name]+1 {
		t.Errorf("%s: %d compliance runs, %d before the change; want exactly one more", k.name, n, runs[k.name])
	}
	after := cmpGetOverview(t, s.parent, s.parent.token)
	for _, o := range s.kids {
		a, _ := after.site(o.name)
		b, _ := before.site(o.name)
		moved := [4]int64{}
		for i := range moved {
			moved[i] = a.Cells.arr()[i] - b.Cells.arr()[i]
		}
		want := [4]int64{}
		if o == k {
			want = [4]int64{-1, +1, 0, 0}
		}
		if a.Computers != b.Computers || moved != want || (o == k) != (a.Compliant == b.Compliant-1) || (o != k && a.Compliant != b.Compliant) {
			t.Errorf("%s: the site moved from %v to %v; want only south's compliant -1 and cells %v", o.name, b, a, want)
		}
	}
	s.checkReports(t, "after one changed result", s.parent.token)

	// An older scan of the same computer is ignored (listed in older): the rule has nothing to
	// send.
	olderAt := old.At.Add(-time.Hour)
	older := &cmpScan{ComputerID: pc, At: olderAt.Format(time.RFC3339), time: olderAt, Valid: true, Sent: map[string]string{}}
	for u := range results {
		older.Sent[u] = "required"
	}
	older.Kept = maps.Clone(older.Sent)
	if got := cmpPost(t, k.p, &cmpSubmission{Scans: []*cmpScan{older}, Token: k.agent}, k.computers, fmt.Sprintf("%s: a scan of %s older than its stored one", k.name, pc)); !slices.Equal(got.Older, []string{pc}) {
		t.Errorf("%s: answer to an older scan of %s: %+v; want it listed in older", k.name, pc, got)
	}
	if res := cmpComplianceNow(t, k.p); res.Sent || res.Reason != "unchanged" || res.Seq != k.seq {
		t.Errorf("%s: rule after an older scan of %s: %+v; want not sent (the older scan is ignored), unchanged, seq %d", k.name, pc, res, k.seq)
	}
	if n := len(cmpComplianceRuns(t, s.parent, k.name)); n != runs[k.name]+1 {
		t.Errorf("%s: %d compliance runs after an older scan; want %d", k.name, n, runs[k.name]+1)
	}
	s.checkChildReports(t, k, k.p.token)
}

// ---- Sequences ----

// cmpMakeSummary builds a summary with consistent numbers over bulletins (each listed with its
// four counts).
func cmpMakeSummary(site string, computers, compliant int64, cells [4]int64, viewUpdates int64, bulletins map[string][4]int64) *compliance.Summary {
	sum := &compliance.Summary{Site: site, AsOf: time.Now().UTC(), Computers: computers, Compliant: compliant, Cells: cells,
		ViewUpdates: viewUpdates, Bulletins: []compliance.BulletinCounts{}}
	var all [4]int64
	for _, id := range slices.Sorted(maps.Keys(bulletins)) {
		sum.Bulletins = append(sum.Bulletins, compliance.BulletinCounts{ID: id, C: bulletins[id]})
		for i, n := range bulletins[id] {
			all[i] += n
		}
	}
	// One severity row for them all: the parent checks that the severity rows add up.
	sum.Severities = []compliance.SeverityCounts{{Severity: "", C: all}}
	return sum
}

// testSequences: a child's node credential (an extra child "rogue" enrolled and joined by the
// test, since no API reveals a child's stored credential) posts summaries by hand: the parent
// keeps the newest (sequences go up by one from 1), ignores older sequences and replays, refuses
// a wrong digest and a credential sending as another child.
func (s *cmpSuite) testSequences(t *testing.T) {
	p := s.parent
	node := hierJoin(t, p, "rogue")
	// rogue reports every language, so that the bulletins of its summaries are in its view.
	doJSON(t, "PUT", p.url+"/v1/hierarchy/v1/languages", node, map[string]any{"ranges": []string{"*"}}, 200, nil)
	north := s.kid("north")
	bN := slices.Sorted(maps.Keys(north.cat.Bulletins))[0]
	s2 := cmpMakeSummary("rogue", 10, 6, [4]int64{12, 5, 8, 15}, 4, map[string][4]int64{bN: {3, 2, 1, 4}, "TSA-2024-001": {5, 0, 2, 3}, "TSA-2022-010": {1, 1, 1, 7}})
	s1 := cmpMakeSummary("rogue", 7, 7, [4]int64{7, 0, 0, 21}, 4, map[string][4]int64{bN: {7, 0, 0, 0}})
	s2b := cmpMakeSummary("rogue", 99, 0, [4]int64{0, 396, 0, 0}, 4, map[string][4]int64{bN: {0, 99, 0, 0}})
	s3 := cmpMakeSummary("rogue", 12, 9, [4]int64{20, 3, 10, 15}, 4, map[string][4]int64{bN: {4, 3, 2, 3}, "TSA-2024-001": {6, 1, 2, 3}, "TSA-2022-010": {2, 0, 5, 5}})
	report := func(child string, seq uint64, sum *compliance.Summary, digest string) map[string]any {
		if digest == "" {
			digest = sum.Digest()
		}
		r := map[string]any{"child": child, "seq": seq, "digest": digest, "trigger": "test", "interval": "1h"}
		if sum != nil {
			r["summary"] = sum
		}
		return r
	}
	runs := func() []cmpRun { return cmpComplianceRuns(t, p, "rogue") }
	rogueLine := func(what string, want *compliance.Summary, seq uint64) {
		t.Helper()
		site, ok := cmpGetOverview(t, p, p.token).site("rogue")
		if !ok || site.Seq != seq || site.Computers != want.Computers || site.Compliant != want.Compliant || site.Cells.arr() != want.Cells {
			t.Errorf("%s: the parent's line of rogue is %v (found %t); want seq %d with %d computers, %d compliant, cells %v",
				what, site, ok, seq, want.Computers, want.Compliant, want.Cells)
		}
	}

	// Only a node credential may report.
	for _, c := range []struct {
		who, token string
		want       int
	}{{"no token", "", 401}, {"the admin token", p.token, 403}, {"an agent token", s.agent, 403}, {"an auditor token", s.auditor, 403}} {
		st, _, raw, _ := cmpPostSummary(t, p, c.token, report("rogue", 1, s2, ""), false)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		checkError(t, "POST /v1/hierarchy/v1/compliance with "+c.who, st, m, raw, c.want, "")
	}

	// seq 1, zstd-compressed: stored, one run.
	st, ans, raw, wire := cmpPostSummary(t, p, node, report("rogue", 1, s2, ""), true)
	rawLen := len(hierJSON(report("rogue", 1, s2, "")))
	if st != 200 || !ans.Accepted || ans.Seq != 1 {
		t.Fatalf("rogue seq 1: %d %s; want accepted", st, raw)
	}
	if r := runs(); len(r) != 1 || r[0].To != 1 || r[0].Records != 3 || r[0].Trigger != "test" || r[0].BytesWire != int64(wire) || r[0].BytesRaw != int64(rawLen) {
		t.Errorf("rogue's compliance runs after seq 1: %v; want one run to 1, 3 records, trigger test, %d bytes wire / %d raw", r, wire, rawLen)
	}
	rogueLine("after seq 1", s2, 1)

	// seq 0 after seq 1: older, ignored.
	st, ans, raw, _ = cmpPostSummary(t, p, node, report("rogue", 0, s1, ""), false)
	if st != 200 || ans.Accepted || !strings.Contains(strings.ToLower(ans.Reason), "older") {
		t.Errorf("rogue seq 0 after seq 1: %d %s; want 200 {accepted: false, reason mentioning older}", st, raw)
	}
	// seq 1 again with other content, and with the same content: replays, ignored.
	for _, c := range []struct {
		what string
		sum  *compliance.Summary
		zstd bool
	}{{"other content", s2b, true}, {"the same content", s2, false}} {
		st, ans, raw, _ = cmpPostSummary(t, p, node, report("rogue", 1, c.sum, ""), c.zstd)
		if st != 200 || ans.Accepted || ans.Reason == "" {
			t.Errorf("rogue seq 1 again with %s (a replay): %d %s; want 200 {accepted: false, reason}", c.what, st, raw)
		}
	}
	rogueLine("after an older sequence and replays", s2, 1)
	// The unchanged report of the stored sequence: accepted (contact), nothing stored.
	st, ans, raw, _ = cmpPostSummary(t, p, node, map[string]any{"child": "rogue", "seq": 1, "digest": s2.Digest(), "trigger": "test", "interval": "1h", "unchanged": true}, false)
	if st != 200 || !ans.Accepted {
		t.Errorf("rogue unchanged report of seq 1: %d %s; want accepted", st, raw)
	}
	// A digest that does not match the content is refused.
	st, _, raw, _ = cmpPostSummary(t, p, node, report("rogue", 2, s3, s2.Digest()), true)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	checkError(t, "rogue seq 2 with the digest of seq 1's summary", st, m, raw, 400, "digest")
	// A sequence past the next one is refused, naming the next.
	st, _, raw, _ = cmpPostSummary(t, p, node, report("rogue", 3, s3, ""), true)
	m = nil
	_ = json.Unmarshal(raw, &m)
	checkError(t, "rogue seq 3 after seq 1", st, m, raw, 409, "must have sequence 2")
	// rogue's credential sending as north: 403, north's line untouched.
	st, _, raw, _ = cmpPostSummary(t, p, node, report("north", north.seq+10, s3, ""), true)
	m = nil
	_ = json.Unmarshal(raw, &m)
	checkError(t, "rogue's node credential posting a summary as north", st, m, raw, 403, "")
	if r := runs(); len(r) != 1 {
		t.Errorf("rogue's compliance runs after an older sequence, replays, an unchanged report and refusals: %v; want still one", r)
	}
	rogueLine("after the refused reports", s2, 1)
	if n := len(cmpComplianceRuns(t, p, "north")); n != int(north.seq) {
		t.Errorf("north: %d compliance runs after rogue posted as north; want %d", n, north.seq)
	}

	// seq 2 as plain JSON: stored.
	st, ans, raw, wire = cmpPostSummary(t, p, node, report("rogue", 2, s3, ""), false)
	if st != 200 || !ans.Accepted || ans.Seq != 2 {
		t.Errorf("rogue seq 2 (plain JSON): %d %s; want accepted", st, raw)
	}
	if r := runs(); len(r) != 2 || r[0].To != 2 || r[0].Records != 3 || r[0].BytesWire != int64(wire) || r[0].BytesRaw != int64(wire) {
		t.Errorf("rogue's compliance runs after seq 2: %v; want two, the newest to 2 with 3 records and %d bytes wire = raw", r, wire)
	}
	rogueLine("after seq 2", s3, 2)
	tr := cmpTruth{Site: "rogue", Computers: s3.Computers, Compliant: s3.Compliant, Cells: s3.Cells, Bulletins: map[string][4]int64{}}
	for _, b := range s3.Bulletins {
		tr.Bulletins[b.ID] = b.C
	}
	s.rogue = &cmpSiteWant{Truth: tr, Seq: 2, Interval: "1h0m0s"}
	s.checkReports(t, "with rogue's summary", p.token)

	st, m, raw = do(t, "GET", p.url+"/v1/compliance", node, nil)
	checkError(t, "GET /v1/compliance with a node credential", st, m, raw, 403, "")
}

// ---- ParentLocal ----

// testParentLocal: computers scanned at the parent itself make it a site of its own reports
// (local: true), counted over its whole catalog, beside its children.
func (s *cmpSuite) testParentLocal(t *testing.T) {
	p := s.parent
	for _, site := range cmpGetOverview(t, p, p.token).Sites {
		if site.Local {
			t.Errorf("the parent lists itself before it has computers: %v", site)
		}
	}
	s.parentCat = cmpReadCatalog(t, p)
	ups := s.parentCat.updateIDs()
	rng := rand.New(rand.NewPCG(cmpSeed, 99))
	sub := &cmpSubmission{NDJSON: true, Token: s.agent}
	for i := 0; i < 60; i++ {
		at := s.base.Add(time.Duration(rng.IntN(3600)) * time.Second)
		sc := &cmpScan{ComputerID: fmt.Sprintf("hq-pc-%02d", i), At: at.Format(time.RFC3339), time: at, Valid: true,
			Sent: map[string]string{}, Kept: map[string]string{}}
		p := []float64{1, .6, .3, .05}[i%4]
		for _, u := range ups {
			if rng.Float64() < p {
				st := cmpStateNames[rng.IntN(4)]
				if i%3 == 0 && st == "required" {
					st = "installed"
				}
				sc.Sent[u], sc.Kept[u] = st, st
			}
		}
		sub.Scans = append(sub.Scans, sc)
	}
	s.local = map[string]*cmpComputer{}
	got := cmpPost(t, p, sub, s.local, "the parent's own 60 computers")
	tr := cmpCount(p.name, s.parentCat, s.local)
	t.Logf("parent %s: %d computers (%d results) over %d updates, %d bulletins: %d compliant, cells %v", p.name, tr.Computers, got.ResultsStored,
		len(s.parentCat.Updates), len(s.parentCat.Bulletins), tr.Compliant, tr.Cells)
	s.checkReports(t, "with the parent's own computers", p.token)
}

// ---- Roles ----

// testRoles: agents post scans but read no report; auditors read every report and write
// nothing; rollout reads reports but may not fire the summary rule.
func (s *cmpSuite) testRoles(t *testing.T) {
	p := s.parent
	k := s.kid("north")
	for _, site := range []struct {
		p     *proc
		agent string
	}{{p, s.agent}, {k.p, k.agent}} {
		for _, path := range []string{"/v1/compliance", "/v1/compliance/bulletins", "/v1/compliance/bulletins?format=csv", "/v1/compliance/bulletins?site=north"} {
			st, m, raw := do(t, "GET", site.p.url+path, site.agent, nil)
			checkError(t, site.p.name+": agent GET "+path, st, m, raw, 403, "")
		}
	}
	rollout := createToken(t, k.p.url, k.p.token, "rollout", "rollout-"+k.name).Token
	cmpGetOverview(t, p, s.rollout)
	cmpGetRows(t, p, s.rollout, "site=east")
	st, m, raw := do(t, "POST", k.p.url+"/v1/replication/now", rollout, map[string]any{"scope": "compliance"})
	checkError(t, k.name+": rollout POST /v1/replication/now {scope: compliance}", st, m, raw, 403, "")

	// The auditor reads every report (and the rest).
	s.checkReports(t, "read by the auditor", s.auditor)
	s.checkChildReports(t, k, k.auditor)
	for _, path := range []string{"/v1/replication/runs?child=north", "/v1/children", "/v1/audit", "/v1/catalog", "/v1/settings", "/v1/status"} {
		doJSON(t, "GET", p.url+path, s.auditor, nil, 200, nil)
	}
	// ... and writes nothing.
	scan := `{"computer_id":"auditor-pc","scanned_at":"` + s.base.Format(time.RFC3339) + `","results":{}}`
	bid := slices.Sorted(maps.Keys(k.cat.Bulletins))[0]
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/scans", scan},
		{"POST", "/v1/scans?format=ndjson", scan + "\n"},
		{"POST", "/v1/replication/now", map[string]any{"scope": "compliance"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "catalog"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "policies"}},
		{"PUT", "/v1/replication/rules", map[string]any{"catalog": "12h"}},
		{"POST", "/v1/policies", map[string]any{"bulletins": []string{bid}}},
		{"PATCH", "/v1/policies/p-000000000000", map[string]any{"enabled": false}},
		{"DELETE", "/v1/policies/p-000000000000", nil},
		{"PUT", "/v1/settings/server-tasks", map[string]any{"compliance_summary": "2s"}},
		{"POST", "/v1/tokens", map[string]any{"role": "admin", "name": "x"}},
		{"DELETE", "/v1/tokens/t-000000000000", nil},
		{"POST", "/v1/children", map[string]any{"name": "west"}},
		{"DELETE", "/v1/children/north", nil},
		{"POST", "/v1/catalog/import", map[string]any{"source": s.feedPath}},
		{"PATCH", "/v1/catalog/bulletins/" + bid, map[string]any{"disabled": true}},
		{"PUT", "/v1/catalog/bulletins/" + bid + "/custom-severity", map[string]any{"severity": "Urgent"}},
		{"POST", "/v1/catalog/severities", map[string]any{"name": "Sev9"}},
		{"DELETE", "/v1/catalog/severities/Urgent", nil},
		{"PUT", "/v1/languages", map[string]any{"ranges": []string{"*"}}},
		{"POST", "/v1/hierarchy/v1/compliance", map[string]any{"seq": 1}},
	}
	for _, site := range []struct {
		p       *proc
		auditor string
	}{{p, s.auditor}, {k.p, k.auditor}} {
		for _, w := range writes {
			st, m, raw := do(t, w.method, site.p.url+w.path, site.auditor, w.body)
			checkError(t, fmt.Sprintf("%s: auditor %s %s", site.p.name, w.method, w.path), st, m, raw, 403, "")
		}
	}
	// Nothing changed: the same reports, the same sequences.
	s.checkReports(t, "after refused auditor writes", s.auditor)
	s.checkChildReports(t, k, k.auditor)
	if res := cmpComplianceNow(t, k.p); res.Sent || res.Seq != k.seq {
		t.Errorf("%s: rule after refused writes: %+v; want unchanged at seq %d", k.name, res, k.seq)
	}
}

// ---- CatalogChange ----

// testCatalogChange: a catalog change at the parent, replicated, recomputes every child's counts:
// results naming a removed update count nowhere, a new update is unknown for every computer that
// scanned before it arrived, and a removed bulletin leaves the reports.
func (s *cmpSuite) testCatalogChange(t *testing.T) {
	n := &hierFeed{head: s.feed.head}
	for _, b := range s.feed.B {
		if b.ID != "TSA-2024-001" {
			c := *b
			n.B = append(n.B, &c)
		}
	}
	for _, u := range s.feed.U {
		if u.ID != "tsa-001-de" && u.ID != "tsa-001-en" {
			c := *u
			n.U = append(n.U, &c)
		}
	}
	polAddUpdate(t, n, "TSA-2024-002", "tsa-002-de-2", "de")
	n.write(t, s.feedPath)
	s.feed = n
	imp := hierImport(t, s.parent, map[string]any{"source": s.feedPath})
	if imp.Result.Bulletins.Removed != 1 || imp.Result.Updates.Removed != 2 || imp.Result.Updates.Added != 1 {
		t.Errorf("import of the changed feed: bulletins %s, updates %s; want 1 bulletin removed, 2 updates removed and 1 added", imp.Result.Bulletins, imp.Result.Updates)
	}
	for _, k := range s.kids { // not rogue: it never pulls
		hierReplicateNow(t, s.parent, k.name, "")
	}
	s.meta, _ = catListAll(t, s.parent, "")
	if s.parentCat != nil {
		s.parentCat = cmpReadCatalog(t, s.parent)
	}
	named := 0
	for _, k := range s.kids {
		old := cmpCount(k.name, k.cat, k.computers)
		k.cat = cmpReadCatalog(t, k.p)
		cur := cmpCount(k.name, k.cat, k.computers)
		for _, c := range k.computers {
			if _, ok := c.Results["tsa-001-de"]; ok {
				named++
			}
		}
		t.Logf("%s after the catalog change: %d bulletins, %d updates; compliant %d → %d, cells %v → %v", k.name,
			len(k.cat.Bulletins), len(k.cat.Updates), old.Compliant, cur.Compliant, old.Cells, cur.Cells)
	}
	if _, ok := s.kid("north").cat.Updates["tsa-002-de-2"]; !ok || named == 0 {
		t.Fatalf("test bug: north should hold the new update and computers should name the removed tsa-001-de (%d do)", named)
	}
	s.fireAll(t, s.kids)
	s.checkReports(t, "after a catalog change", s.parent.token)
	for _, k := range s.kids {
		s.checkChildReports(t, k, k.p.token)
	}
}

// ---- Stale ----

// testStale: with the summary rule at 2s (the parent's server-tasks settings, replicated), a
// running child is never stale; a stopped one is stale once its interval plus grace has passed.
func (s *cmpSuite) testStale(t *testing.T) {
	p := s.parent
	if st, _, raw := do(t, "PUT", p.url+"/v1/settings/server-tasks", p.token, map[string]any{"compliance_summary": "2s"}); st != 200 && st != 201 {
		t.Fatalf("PUT /v1/settings/server-tasks {compliance_summary: 2s}: %d %s", st, raw)
	}
	t0 := time.Now()
	for _, k := range s.kids {
		waitFor(t, 30*time.Second, func() (bool, string) {
			st, m, raw := do(t, "GET", k.p.url+"/v1/settings/server-tasks", k.p.token, nil)
			body, _ := m["body"].(map[string]any)
			return st == 200 && body["compliance_summary"] == "2s", fmt.Sprintf("%s: GET /v1/settings/server-tasks: %d %s", k.name, st, raw)
		})
	}
	t.Logf("server-tasks {compliance_summary: 2s} reached every child in %v", time.Since(t0).Round(time.Millisecond))

	// The children's rules follow the new schedule: they report with interval 2s.
	allAt2s := func() (bool, string) {
		o := cmpGetOverview(t, p, p.token)
		for _, k := range s.kids {
			site, _ := o.site(k.name)
			if site.Interval != "2s" || site.Stale {
				return false, fmt.Sprintf("%s at the parent: %v; want interval 2s (its rule on the new schedule), not stale", k.name, site)
			}
		}
		return true, ""
	}
	// docs/compliance.md: a changed schedule takes effect at once (the child reports, trigger
	// schedule-change). Should a child not follow, it is restarted (the rule fires at start and
	// reads the schedule then) so that staleness is tested anyway.
	if !eventually(t, 10*time.Second, allAt2s) {
		t.Logf("the children's rules did not follow the new schedule; restarting them (the rule fires at start and reads the schedule then) to test staleness anyway")
		for _, k := range s.kids {
			k.p.stop(t)
			k.p.restart(t)
		}
		waitFor(t, 15*time.Second, allAt2s)
	}
	t.Logf("every child reports with interval 2s, %v after the settings change", time.Since(t0).Round(time.Millisecond))
	runs := map[string]int{}
	for _, k := range s.kids {
		runs[k.name] = len(cmpComplianceRuns(t, p, k.name))
	}

	// Running children are never stale (watched for longer than interval + grace).
	watch := func(d time.Duration, skip string) {
		t.Helper()
		end := time.Now().Add(d)
		maxAge := map[string]time.Duration{}
		reported := false
		for time.Now().Before(end) {
			o := cmpGetOverview(t, p, p.token)
			for _, site := range o.Sites {
				if site.Site == skip {
					continue
				}
				if site.Stale && !reported {
					t.Errorf("%s is stale while running: %v", site.Site, site)
					reported = true
				}
				if site.LastContact != nil && site.Site != "rogue" {
					maxAge[site.Site] = max(maxAge[site.Site], o.AsOf.Sub(*site.LastContact))
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("watched %v: longest time since a running child's last contact %v", d, maxAge)
	}
	watch(8*time.Second, "")
	for _, k := range s.kids {
		if n := len(cmpComplianceRuns(t, p, k.name)); n != runs[k.name] {
			t.Errorf("%s: %d compliance runs after unchanged scheduled reports, %d before; want no new run", k.name, n, runs[k.name])
		}
	}

	// Stop east: it goes stale after its interval plus grace (2s + 5s); the others stay current.
	e := s.kid("east")
	e.p.stop(t)
	stopped := time.Now()
	var staleAfter time.Duration
	ok := eventually(t, 15*time.Second, func() (bool, string) {
		o := cmpGetOverview(t, p, p.token)
		for _, site := range o.Sites {
			if site.Site != "east" && site.Stale {
				t.Errorf("%s is stale while running (east stopped %v ago): %v", site.Site, time.Since(stopped).Round(time.Millisecond), site)
			}
		}
		site, _ := o.site("east")
		if !site.Stale {
			return false, fmt.Sprintf("east (stopped %v ago) at the parent: %v; want stale", time.Since(stopped).Round(time.Millisecond), site)
		}
		staleAfter = time.Since(stopped)
		return true, ""
	})
	if ok {
		t.Logf("east shown stale %v after it stopped", staleAfter.Round(time.Millisecond))
		if staleAfter > 11*time.Second {
			t.Errorf("east shown stale only %v after it stopped; want within about 10s (interval 2s + grace 5s)", staleAfter.Round(time.Millisecond))
		}
		if staleAfter < 3*time.Second {
			t.Errorf("east shown stale %v after it stopped; its last report is younger than interval 2s + grace 5s", staleAfter.Round(time.Millisecond))
		}
	}
	o := cmpGetOverview(t, p, p.token)
	if o.Totals.StaleSites != 1 {
		t.Errorf("GET /v1/compliance with east stopped: stale_sites %d, want 1; sites %v", o.Totals.StaleSites, o.Sites)
	}
	site, _ := o.site("east")
	if tr := cmpCount(e.name, e.cat, e.computers); site.Computers != tr.Computers || site.Compliant != tr.Compliant || site.Cells.arr() != tr.Cells {
		t.Errorf("east stale: %v; want its last summary's numbers (%d computers, %d compliant, cells %v)", site, tr.Computers, tr.Compliant, tr.Cells)
	}
	watch(3*time.Second, "east")

	// east back: it reports at start (its numbers unchanged, so only its sequence) and is
	// current again; its scans and its sequence survived the restart.
	e.p.restart(t)
	eventually(t, 15*time.Second, func() (bool, string) {
		site, _ := cmpGetOverview(t, p, p.token).site("east")
		return !site.Stale && site.Seq == e.seq && site.Interval == "2s", fmt.Sprintf("east after its restart: %v; want not stale, seq %d, interval 2s", site, e.seq)
	})
	if n := len(cmpComplianceRuns(t, p, e.name)); n != runs[e.name] {
		t.Errorf("east: %d compliance runs after its restart, %d before; want no new run (nothing changed)", n, runs[e.name])
	}
	s.checkChildReports(t, e, e.p.token)
}
