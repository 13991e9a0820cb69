package integration

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Helpers of the compliance tests (compliance_test.go), prefixed cmp* so that they do not collide
// with the other test files of the package. Every expected number is computed by the test from
// the scans it sent and the catalogs it read over HTTP, following docs/compliance.md's counting
// rules; nothing is taken from the server's code.

// The four scan states in the order the test indexes its counts.
const (
	cmpInstalled = iota
	cmpRequired
	cmpNotRequired
	cmpUnknown
)

var cmpStateNames = [4]string{"installed", "required", "not_required", "unknown"}

func cmpStateIndex(s string) int {
	for i, n := range cmpStateNames {
		if n == s {
			return i
		}
	}
	return -1
}

// cmpCells are the four cell (or computer) counts as the reports write them.
type cmpCells struct {
	Installed   int64 `json:"installed"`
	Required    int64 `json:"required"`
	NotRequired int64 `json:"not_required"`
	Unknown     int64 `json:"unknown"`
}

func (c cmpCells) arr() [4]int64 { return [4]int64{c.Installed, c.Required, c.NotRequired, c.Unknown} }

// cmpSiteRep is one site of GET /v1/compliance.
type cmpSiteRep struct {
	Site        string     `json:"site"`
	Local       bool       `json:"local"`
	Computers   int64      `json:"computers"`
	Compliant   int64      `json:"compliant"`
	Compliance  *float64   `json:"compliance"`
	Cells       cmpCells   `json:"cells"`
	AsOf        time.Time  `json:"as_of"`
	LastContact *time.Time `json:"last_contact"`
	Interval    string     `json:"interval"`
	Stale       bool       `json:"stale"`
	Seq         uint64     `json:"seq"`
}

func (s cmpSiteRep) String() string {
	lc := "none"
	if s.LastContact != nil {
		lc = s.LastContact.Format("15:04:05.000")
	}
	return fmt.Sprintf("%s local=%t computers=%d compliant=%d cells=%v seq=%d interval=%q stale=%t last_contact=%s",
		s.Site, s.Local, s.Computers, s.Compliant, s.Cells.arr(), s.Seq, s.Interval, s.Stale, lc)
}

// cmpOverview is GET /v1/compliance.
type cmpOverview struct {
	AsOf   time.Time `json:"as_of"`
	Totals struct {
		Sites      int      `json:"sites"`
		StaleSites int      `json:"stale_sites"`
		Computers  int64    `json:"computers"`
		Compliant  int64    `json:"compliant"`
		Compliance *float64 `json:"compliance"`
		Cells      cmpCells `json:"cells"`
	} `json:"totals"`
	Sites []cmpSiteRep `json:"sites"`
}

func (o cmpOverview) site(name string) (cmpSiteRep, bool) {
	for _, s := range o.Sites {
		if s.Site == name {
			return s, true
		}
	}
	return cmpSiteRep{}, false
}

// cmpRow is one row of GET /v1/compliance/bulletins.
type cmpRow struct {
	Bulletin       string   `json:"bulletin"`
	Title          string   `json:"title"`
	Vendor         string   `json:"vendor"`
	Severity       string   `json:"severity"`
	CustomSeverity string   `json:"custom_severity"`
	Released       string   `json:"released"`
	Sites          int      `json:"sites"`
	Installed      int64    `json:"installed"`
	Required       int64    `json:"required"`
	NotRequired    int64    `json:"not_required"`
	Unknown        int64    `json:"unknown"`
	Applicable     int64    `json:"applicable"`
	Compliance     *float64 `json:"compliance"`
}

func (r cmpRow) String() string {
	c := "null"
	if r.Compliance != nil {
		c = strconv.FormatFloat(*r.Compliance, 'f', 6, 64)
	}
	return fmt.Sprintf("%s [%s/%s/%s/%s %s] sites=%d i=%d r=%d nr=%d u=%d applicable=%d compliance=%s",
		r.Bulletin, r.Vendor, r.Severity, r.CustomSeverity, r.Released, r.Title, r.Sites, r.Installed, r.Required, r.NotRequired, r.Unknown, r.Applicable, c)
}

// cmpSummaryResult is the summary rule's outcome in a child's POST /v1/replication/now answer.
type cmpSummaryResult struct {
	Sent      bool      `json:"sent"`
	Seq       uint64    `json:"seq"`
	Digest    string    `json:"digest"`
	BytesWire int64     `json:"bytes_wire"`
	BytesRaw  int64     `json:"bytes_raw"`
	Bulletins int       `json:"bulletins"`
	Computers int64     `json:"computers"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// cmpRun is a run of GET /v1/replication/runs with the fields a compliance run fills.
type cmpRun struct {
	ID        string    `json:"id"`
	Child     string    `json:"child"`
	Scope     string    `json:"scope"`
	Mode      string    `json:"mode"`
	Trigger   string    `json:"trigger"`
	From      uint64    `json:"from"`
	To        uint64    `json:"to"`
	Records   int       `json:"records"`
	BytesWire int64     `json:"bytes_wire"`
	BytesRaw  int64     `json:"bytes_raw"`
	StartedAt time.Time `json:"started_at"`
	Verified  bool      `json:"verified"`
	Error     string    `json:"error"`
}

func (r cmpRun) String() string {
	return fmt.Sprintf("run %s of %s: scope %q %s/%s to %d, %d records, %d bytes wire / %d raw %s",
		r.ID, r.Child, r.Scope, r.Mode, r.Trigger, r.To, r.Records, r.BytesWire, r.BytesRaw, r.Error)
}

// cmpComplianceRuns are the runs with scope compliance of a child at the parent (newest first).
func cmpComplianceRuns(t *testing.T, parent *proc, child string) []cmpRun {
	t.Helper()
	var l struct {
		Runs []cmpRun `json:"runs"`
	}
	doJSON(t, "GET", parent.url+"/v1/replication/runs?limit=100000&child="+url.QueryEscape(child), parent.token, nil, 200, &l)
	var out []cmpRun
	for _, r := range l.Runs {
		if r.Child != child {
			t.Errorf("GET /v1/replication/runs?child=%s lists a run of %q", child, r.Child)
		}
		if r.Scope == "compliance" {
			out = append(out, r)
		}
	}
	return out
}

// cmpComplianceNow fires a child's compliance summary rule (replicate now, scope compliance, on
// the child with its admin token) and returns the rule's outcome.
func cmpComplianceNow(t *testing.T, child *proc) cmpSummaryResult {
	t.Helper()
	st, raw := polPost(t, "POST", child.url+"/v1/replication/now", child.token, map[string]any{"scope": "compliance"})
	var ans struct {
		Scope   string            `json:"scope"`
		Summary *cmpSummaryResult `json:"summary"`
	}
	if st != 200 || json.Unmarshal(raw, &ans) != nil || ans.Summary == nil {
		t.Fatalf("%s: POST /v1/replication/now {scope: compliance}: status %d, body %s; want 200 with the summary result", child.name, st, raw)
	}
	if ans.Scope != "compliance" {
		t.Errorf("%s: replicate now {scope: compliance} answered scope %q", child.name, ans.Scope)
	}
	t.Logf("%s: compliance summary rule → sent %t seq %d reason %q, %d bulletins, %d computers, %d bytes wire / %d raw",
		child.name, ans.Summary.Sent, ans.Summary.Seq, ans.Summary.Reason, ans.Summary.Bulletins, ans.Summary.Computers, ans.Summary.BytesWire, ans.Summary.BytesRaw)
	return *ans.Summary
}

// cmpGetOverview is GET /v1/compliance with token.
func cmpGetOverview(t *testing.T, p *proc, token string) cmpOverview {
	t.Helper()
	var o cmpOverview
	doJSON(t, "GET", p.url+"/v1/compliance", token, nil, 200, &o)
	return o
}

// cmpGetRows is GET /v1/compliance/bulletins?query (JSON) with token.
func cmpGetRows(t *testing.T, p *proc, token, query string) []cmpRow {
	t.Helper()
	var l struct {
		AsOf      time.Time `json:"as_of"`
		Bulletins []cmpRow  `json:"bulletins"`
	}
	u := p.url + "/v1/compliance/bulletins"
	if query != "" {
		u += "?" + query
	}
	raw := doJSONRaw(t, "GET", u, token, nil, 200, &l)
	if l.Bulletins == nil {
		t.Errorf("GET %s: no bulletins array: %.300s", u, raw)
	}
	return l.Bulletins
}

// cmpGetCSV is GET /v1/compliance/bulletins?query&format=csv, parsed into rows by the header's
// column names; it checks the content type and the header.
func cmpGetCSV(t *testing.T, p *proc, token, query string) []cmpRow {
	t.Helper()
	u := p.url + "/v1/compliance/bulletins?format=csv"
	if query != "" {
		u += "&" + query
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, read error %v, body %.300s", u, resp.StatusCode, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("GET %s: Content-Type %q, want text/csv", u, ct)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("GET %s: not CSV with a header line (%v): %.300s", u, err, body)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"bulletin", "title", "vendor", "severity", "custom_severity", "released", "sites",
		"installed", "required", "not_required", "unknown", "applicable", "compliance"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("GET %s: header %v lacks column %q", u, recs[0], h)
		}
	}
	out := []cmpRow{}
	for n, rec := range recs[1:] {
		if len(rec) != len(recs[0]) {
			t.Errorf("GET %s: line %d has %d fields, header %d", u, n+2, len(rec), len(recs[0]))
			continue
		}
		num := func(name string) int64 {
			v, err := strconv.ParseInt(rec[col[name]], 10, 64)
			if err != nil {
				t.Errorf("GET %s: line %d: %s %q is not an integer", u, n+2, name, rec[col[name]])
			}
			return v
		}
		r := cmpRow{Bulletin: rec[col["bulletin"]], Title: rec[col["title"]], Vendor: rec[col["vendor"]], Severity: rec[col["severity"]],
			CustomSeverity: rec[col["custom_severity"]], Released: rec[col["released"]], Sites: int(num("sites")),
			Installed: num("installed"), Required: num("required"), NotRequired: num("not_required"), Unknown: num("unknown"),
			Applicable: num("applicable")}
		if c := rec[col["compliance"]]; c != "" {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				t.Errorf("GET %s: line %d: compliance %q is not a number", u, n+2, c)
			}
			r.Compliance = &v
		}
		out = append(out, r)
	}
	return out
}

// cmpSameFloat compares two optional ratios within tol.
func cmpSameFloat(a, b *float64, tol float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= tol
}

func cmpRatio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b)
	return &v
}

func cmpFmtRatio(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'f', 6, 64)
}

// ---- the sites' catalogs ----

// cmpCatalog is a site's catalog as read over HTTP: each bulletin's update ids and every update.
type cmpCatalog struct {
	Bulletins map[string][]string
	Updates   map[string]string // update id → language
	Meta      map[string]catSummary
}

func (c *cmpCatalog) updateIDs() []string {
	out := make([]string, 0, len(c.Updates))
	for id := range c.Updates {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// cmpReadCatalog reads a site's bulletins (the list, then each bulletin with its updates).
func cmpReadCatalog(t *testing.T, p *proc) *cmpCatalog {
	t.Helper()
	list, _ := catListAll(t, p, "")
	c := &cmpCatalog{Bulletins: map[string][]string{}, Updates: map[string]string{}, Meta: list}
	for id := range list {
		b := catGetBulletin(t, p, id)
		if len(b.Updates) != len(b.Bulletin.UpdateIDs) {
			t.Fatalf("%s: bulletin %s lists %d update ids and comes with %d updates", p.name, id, len(b.Bulletin.UpdateIDs), len(b.Updates))
		}
		seen := map[string]bool{}
		for _, u := range b.Updates {
			if seen[u.ID] {
				t.Fatalf("%s: bulletin %s lists update %s twice", p.name, id, u.ID)
			}
			seen[u.ID] = true
			c.Updates[u.ID] = u.Language
		}
		c.Bulletins[id] = b.Bulletin.UpdateIDs
	}
	if info := catGetInfo(t, p); info.Updates != len(c.Updates) || info.Bulletins != len(c.Bulletins) {
		t.Fatalf("%s: GET /v1/catalog counts %d bulletins and %d updates; the bulletins list %d and %d",
			p.name, info.Bulletins, info.Updates, len(c.Bulletins), len(c.Updates))
	}
	return c
}

// ---- scans ----

// cmpWantErr is a record error the server must report.
type cmpWantErr struct {
	Line       int
	ComputerID string
	UpdateID   string
	Mention    string // a word the message must contain (case-insensitive)
}

func (e cmpWantErr) key() string { return fmt.Sprintf("%d|%s|%s", e.Line, e.ComputerID, e.UpdateID) }

// cmpScan is one scan as the test sends it, with what the server must keep of it.
type cmpScan struct {
	ComputerID string
	NoID       bool   // leave computer_id out
	At         string // scanned_at as sent
	NoAt       bool   // leave scanned_at out
	NoResults  bool   // leave results out
	Sent       map[string]string
	// Valid says whether the scan as a whole is valid; Kept are its valid results and Bad its
	// rejected ones (update id → why: a word the error must mention).
	Valid  bool
	Kept   map[string]string
	Bad    map[string]string
	Reason string // why the scan is rejected whole: a word the error must mention
	time   time.Time
}

func (s *cmpScan) encode() []byte {
	m := map[string]any{}
	if !s.NoID {
		m["computer_id"] = s.ComputerID
	}
	if !s.NoAt {
		m["scanned_at"] = s.At
	}
	if !s.NoResults {
		r := s.Sent
		if r == nil {
			r = map[string]string{}
		}
		m["results"] = r
	}
	return hierJSON(m)
}

// cmpSubmission is one POST /v1/scans: one scan (single) or an NDJSON batch.
type cmpSubmission struct {
	Scans  []*cmpScan
	NDJSON bool
	Token  string
	// Blank, if positive, puts a blank line before the scan of that index (NDJSON): it is no
	// scan, but it counts in the line numbers.
	Blank int
	body  []byte
}

// line is the NDJSON line number of scan i (0 for a single object).
func (s *cmpSubmission) line(i int) int {
	switch {
	case !s.NDJSON:
		return 0
	case s.Blank > 0 && i >= s.Blank:
		return i + 2
	}
	return i + 1
}

func (s *cmpSubmission) build() []byte {
	if s.body != nil {
		return s.body
	}
	if !s.NDJSON {
		if len(s.Scans) != 1 {
			panic("a single-object submission holds one scan")
		}
		s.body = s.Scans[0].encode()
		return s.body
	}
	var b bytes.Buffer
	for i, sc := range s.Scans {
		if s.Blank > 0 && i == s.Blank {
			b.WriteString("  \n")
		}
		b.Write(sc.encode())
		b.WriteByte('\n')
	}
	s.body = b.Bytes()
	return s.body
}

// cmpScansResp is POST /v1/scans's answer.
type cmpScansResp struct {
	Received      int      `json:"received"`
	Stored        int      `json:"stored"`
	ResultsStored int      `json:"results_stored"`
	Older         []string `json:"older"`
	Rejected      int      `json:"rejected"`
	Errors        []struct {
		Line       int    `json:"line"`
		ComputerID string `json:"computer_id"`
		UpdateID   string `json:"update_id"`
		Error      string `json:"error"`
	} `json:"errors"`
}

// errorsWanted are the rejected records of a submission: every invalid result of a valid scan,
// and every invalid scan (once, whatever its results).
func (s *cmpSubmission) errorsWanted() []cmpWantErr {
	var errs []cmpWantErr
	for i, sc := range s.Scans {
		line := s.line(i)
		id := sc.ComputerID
		if sc.NoID {
			id = ""
		}
		if !sc.Valid {
			errs = append(errs, cmpWantErr{Line: line, ComputerID: id, Mention: sc.Reason})
			continue
		}
		for u, why := range sc.Bad {
			errs = append(errs, cmpWantErr{Line: line, ComputerID: id, UpdateID: u, Mention: why})
		}
	}
	return errs
}

// cmpPost sends a submission, records its valid scans in the model of the site's computers and
// checks every count of the answer and every listed error: received counts every scan sent;
// stored and results_stored the valid scans that replaced their computer's scan (and their valid
// results); older the computers whose stored scan is newer than the one sent (ignored).
func cmpPost(t *testing.T, p *proc, sub *cmpSubmission, computers map[string]*cmpComputer, what string) cmpScansResp {
	t.Helper()
	u := p.url + "/v1/scans"
	ct := "application/json"
	if sub.NDJSON {
		u += "?format=ndjson"
		ct = "application/x-ndjson"
	}
	body := sub.build()
	req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+sub.Token)
	resp, err := hierLongClient.Do(req)
	if err != nil {
		t.Fatalf("%s: POST %s (%d bytes): %v", what, u, len(body), err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got cmpScansResp
	if resp.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
		t.Fatalf("%s: POST %s (%d scans, %d bytes): status %d, body %.500s; want 200", what, u, len(sub.Scans), len(body), resp.StatusCode, raw)
	}
	errs := sub.errorsWanted()
	want := cmpScansResp{Received: len(sub.Scans), Rejected: len(errs)}
	want.Stored, want.ResultsStored, want.Older = cmpApply(computers, sub)
	if got.Received != want.Received || got.Stored != want.Stored || got.ResultsStored != want.ResultsStored || got.Rejected != want.Rejected {
		t.Errorf("%s: POST %s (%d scans): received %d stored %d results_stored %d rejected %d; want %d %d %d %d",
			what, u, len(sub.Scans), got.Received, got.Stored, got.ResultsStored, got.Rejected,
			want.Received, want.Stored, want.ResultsStored, want.Rejected)
	}
	if got.Older == nil || !slices.Equal(hierSorted(got.Older), hierSorted(want.Older)) {
		t.Errorf("%s: older %v (null: %t), want %v", what, got.Older, got.Older == nil, want.Older)
	}
	// At most 1,000 errors are listed; rejected is the exact count.
	if len(got.Errors) != min(len(errs), 1000) {
		t.Errorf("%s: %d errors listed, want %d (rejected %d)", what, len(got.Errors), min(len(errs), 1000), want.Rejected)
	}
	wantBy := map[string]cmpWantErr{}
	for _, e := range errs {
		if _, dup := wantBy[e.key()]; dup {
			t.Fatalf("test bug: two expected errors %s", e.key())
		}
		wantBy[e.key()] = e
	}
	for _, e := range got.Errors {
		k := fmt.Sprintf("%d|%s|%s", e.Line, e.ComputerID, e.UpdateID)
		w, ok := wantBy[k]
		if !ok {
			t.Errorf("%s: unexpected error listed: line %d computer %q update %q: %s", what, e.Line, e.ComputerID, e.UpdateID, e.Error)
			continue
		}
		delete(wantBy, k)
		if e.Error == "" || !strings.Contains(strings.ToLower(e.Error), strings.ToLower(w.Mention)) {
			t.Errorf("%s: error of line %d computer %q update %q is %q; want a message mentioning %q", what, e.Line, e.ComputerID, e.UpdateID, e.Error, w.Mention)
		}
	}
	for _, w := range wantBy {
		if len(errs) <= 1000 {
			t.Errorf("%s: error not listed: line %d computer %q update %q (%s)", what, w.Line, w.ComputerID, w.UpdateID, w.Mention)
		}
	}
	return got
}

// ---- ground truth ----

// cmpComputer is a computer's latest stored scan as the test models it.
type cmpComputer struct {
	At      time.Time
	Results map[string]string
}

// cmpApply records a submission's valid scans in order: each replaces the computer's previous
// scan unless that one is newer (then it is ignored). It returns the scans stored, their results,
// and the computers whose older scans were ignored.
func cmpApply(computers map[string]*cmpComputer, sub *cmpSubmission) (stored, results int, older []string) {
	older = []string{}
	for _, sc := range sub.Scans {
		if !sc.Valid {
			continue
		}
		if old := computers[sc.ComputerID]; old != nil && old.At.After(sc.time) {
			older = append(older, sc.ComputerID)
			continue
		}
		stored++
		results += len(sc.Kept)
		computers[sc.ComputerID] = &cmpComputer{At: sc.time, Results: maps.Clone(sc.Kept)}
	}
	return stored, results, older
}

// cmpTruth is a site's expected summary.
type cmpTruth struct {
	Site      string
	Computers int64
	Compliant int64
	Cells     [4]int64
	Bulletins map[string][4]int64
}

// cmpBulletinState is a computer's state for a bulletin over the bulletin's updates in the
// site's catalog: required if any is required; else unknown if any is unknown or not named; else
// installed if any is installed; else not_required.
func cmpBulletinState(updates []string, results map[string]string) int {
	var has [4]bool
	for _, u := range updates {
		st := cmpUnknown
		if s, ok := results[u]; ok {
			st = cmpStateIndex(s)
		}
		has[st] = true
	}
	switch {
	case has[cmpRequired]:
		return cmpRequired
	case has[cmpUnknown]:
		return cmpUnknown
	case has[cmpInstalled]:
		return cmpInstalled
	}
	return cmpNotRequired
}

// cmpCount computes a site's summary from its catalog and its computers' latest scans.
func cmpCount(site string, cat *cmpCatalog, computers map[string]*cmpComputer) cmpTruth {
	tr := cmpTruth{Site: site, Computers: int64(len(computers)), Bulletins: map[string][4]int64{}}
	for id := range cat.Bulletins {
		tr.Bulletins[id] = [4]int64{}
	}
	for _, c := range computers {
		for u := range cat.Updates {
			st := cmpUnknown
			if s, ok := c.Results[u]; ok {
				st = cmpStateIndex(s)
			}
			tr.Cells[st]++
		}
		compliant := true
		for id, ups := range cat.Bulletins {
			st := cmpBulletinState(ups, c.Results)
			v := tr.Bulletins[id]
			v[st]++
			tr.Bulletins[id] = v
			if st == cmpRequired {
				compliant = false
			}
		}
		if compliant {
			tr.Compliant++
		}
	}
	return tr
}

// cmpSiteWant is what a site's line of GET /v1/compliance must say besides its numbers.
type cmpSiteWant struct {
	Truth    cmpTruth
	Seq      uint64
	Interval string
	Local    bool
}

// cmpCheckOverview compares GET /v1/compliance with the expected sites; it returns whether every
// number matched.
func cmpCheckOverview(t *testing.T, what string, o cmpOverview, want []cmpSiteWant) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		ok = false
		t.Errorf(what+": "+format, args...)
	}
	var computers, compliant int64
	var cells [4]int64
	names := map[string]bool{}
	for _, w := range want {
		names[w.Truth.Site] = true
		computers += w.Truth.Computers
		compliant += w.Truth.Compliant
		for i := range cells {
			cells[i] += w.Truth.Cells[i]
		}
		s, found := o.site(w.Truth.Site)
		if !found {
			fail("no site %q in %v", w.Truth.Site, o.Sites)
			continue
		}
		if s.Computers != w.Truth.Computers || s.Compliant != w.Truth.Compliant || s.Cells.arr() != w.Truth.Cells ||
			!cmpSameFloat(s.Compliance, cmpRatio(w.Truth.Compliant, w.Truth.Computers), 1e-9) {
			fail("site %s: computers %d compliant %d (compliance %s) cells %v; want %d %d (%s) %v", s.Site, s.Computers, s.Compliant,
				cmpFmtRatio(s.Compliance), s.Cells.arr(), w.Truth.Computers, w.Truth.Compliant, cmpFmtRatio(cmpRatio(w.Truth.Compliant, w.Truth.Computers)), w.Truth.Cells)
		}
		if s.Local != w.Local || (w.Seq != 0 && s.Seq != w.Seq) || (w.Interval != "" && s.Interval != w.Interval) || s.AsOf.IsZero() {
			fail("site %s: %v; want local %t, seq %d, interval %q, an as_of", s.Site, s, w.Local, w.Seq, w.Interval)
		}
		if !w.Local && s.LastContact == nil {
			fail("site %s: no last_contact", s.Site)
		}
	}
	for _, s := range o.Sites {
		if !names[s.Site] {
			fail("unexpected site %v", s)
		}
	}
	tt := o.Totals
	if tt.Sites != len(want) || tt.Computers != computers || tt.Compliant != compliant || tt.Cells.arr() != cells ||
		!cmpSameFloat(tt.Compliance, cmpRatio(compliant, computers), 1e-9) {
		fail("totals: sites %d computers %d compliant %d (compliance %s) cells %v; want %d %d %d (%s) %v", tt.Sites, tt.Computers, tt.Compliant,
			cmpFmtRatio(tt.Compliance), tt.Cells.arr(), len(want), computers, compliant, cmpFmtRatio(cmpRatio(compliant, computers)), cells)
	}
	stale := 0
	for _, s := range o.Sites {
		if s.Stale {
			stale++
		}
	}
	if tt.StaleSites != stale {
		fail("totals: stale_sites %d, but %d sites are stale", tt.StaleSites, stale)
	}
	return ok
}

// cmpFilter selects bulletin rows as GET /v1/compliance/bulletins does.
type cmpFilter struct {
	Site, Severity, Vendor, From, To, Bulletin string
}

func (f cmpFilter) query() string {
	v := url.Values{}
	for k, s := range map[string]string{"site": f.Site, "severity": f.Severity, "vendor": f.Vendor,
		"released_from": f.From, "released_to": f.To, "bulletin": f.Bulletin} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

func (f cmpFilter) match(m catSummary) bool {
	if f.Severity != "" && !strings.EqualFold(f.Severity, m.Severity) && !strings.EqualFold(f.Severity, m.CustomSeverity) {
		return false
	}
	if f.Vendor != "" && !strings.EqualFold(f.Vendor, m.Vendor) {
		return false
	}
	day := m.Released
	if len(day) > 10 {
		day = day[:10]
	}
	if f.From != "" && (day == "" || day < f.From) {
		return false
	}
	if f.To != "" && (day == "" || day > f.To) {
		return false
	}
	return f.Bulletin == "" || f.Bulletin == m.ID
}

// cmpExpectRows computes the per-bulletin rows across the selected sites; metadata comes from
// the reporting site's catalog (meta).
func cmpExpectRows(truths []cmpTruth, meta map[string]catSummary, f cmpFilter) map[string]cmpRow {
	rows := map[string]cmpRow{}
	for _, tr := range truths {
		if f.Site != "" && tr.Site != f.Site {
			continue
		}
		for id, c := range tr.Bulletins {
			m := meta[id]
			m.ID = id
			if !f.match(m) {
				continue
			}
			r, ok := rows[id]
			if !ok {
				r = cmpRow{Bulletin: id, Title: m.Title, Vendor: m.Vendor, Severity: m.Severity, CustomSeverity: m.CustomSeverity, Released: m.Released}
			}
			r.Sites++
			r.Installed += c[cmpInstalled]
			r.Required += c[cmpRequired]
			r.NotRequired += c[cmpNotRequired]
			r.Unknown += c[cmpUnknown]
			rows[id] = r
		}
	}
	for id, r := range rows {
		r.Applicable = r.Installed + r.Required
		r.Compliance = cmpRatio(r.Installed, r.Applicable)
		rows[id] = r
	}
	return rows
}

// cmpCheckRows compares report rows with the expected ones (tol: how close compliance must be);
// rows must come newest release first. It returns whether they matched.
func cmpCheckRows(t *testing.T, what string, got []cmpRow, want map[string]cmpRow, tol float64) bool {
	t.Helper()
	ok := true
	seen := map[string]bool{}
	bad := 0
	for i, r := range got {
		if seen[r.Bulletin] {
			t.Errorf("%s: bulletin %s listed twice", what, r.Bulletin)
			ok = false
		}
		seen[r.Bulletin] = true
		if i > 0 && r.Released > got[i-1].Released {
			t.Errorf("%s: rows not newest release first: %s (%s) after %s (%s)", what, r.Bulletin, r.Released, got[i-1].Bulletin, got[i-1].Released)
			ok = false
		}
		w, found := want[r.Bulletin]
		if !found {
			t.Errorf("%s: unexpected row %v", what, r)
			ok = false
			continue
		}
		wc, gc := w.Compliance, r.Compliance
		w.Compliance, r.Compliance = nil, nil
		if w != r || !cmpSameFloat(wc, gc, tol) {
			w.Compliance, r.Compliance = wc, gc
			if bad++; bad <= 8 {
				t.Errorf("%s: row\n  got  %v\n  want %v", what, r, w)
			}
			ok = false
		}
	}
	if bad > 8 {
		t.Errorf("%s: %d rows differ in all", what, bad)
	}
	var missing []string
	for id := range want {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%s: %d of %d expected rows missing, e.g. %v", what, len(missing), len(want), missing[:min(5, len(missing))])
		ok = false
	}
	return ok
}

// ---- summaries sent by hand (as a child would) ----

// cmpSummaryAnswer is the parent's answer to a summary report.
type cmpSummaryAnswer struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason"`
	Seq      uint64 `json:"seq"`
}

// cmpPostSummary posts a summary report to the parent's protocol endpoint with a node credential,
// zstd-compressed or as plain JSON. It returns the status, the decoded answer, the raw answer and
// the number of bytes sent.
func cmpPostSummary(t *testing.T, parent *proc, token string, report any, compress bool) (int, cmpSummaryAnswer, []byte, int) {
	t.Helper()
	body := []byte(hierJSON(report))
	req, _ := http.NewRequestWithContext(context.Background(), "POST", parent.url+"/v1/hierarchy/v1/compliance", nil)
	if compress {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		body = enc.EncodeAll(body, nil)
		enc.Close()
		req.Header.Set("Content-Encoding", "zstd")
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/hierarchy/v1/compliance: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ans cmpSummaryAnswer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &ans); err != nil {
			t.Fatalf("POST /v1/hierarchy/v1/compliance: decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, ans, raw, len(body)
}

// ---- feeds ----

// cmpAddBulletin appends a bulletin with new updates {id, language} to the feed.
func cmpAddBulletin(f *hierFeed, id, vendor, severity, released string, updates [][2]string) {
	b := &hierRecB{ID: id}
	have := map[string]bool{}
	for _, u := range f.U {
		have[u.ID] = true
	}
	for _, u := range updates {
		if !have[u[0]] {
			f.U = append(f.U, polNewUpdate(u[0], u[1]))
			have[u[0]] = true
		}
		b.UpdateIDs = append(b.UpdateIDs, u[0])
	}
	b.raw = hierJSON(map[string]any{"id": id, "vendor": vendor, "title": vendor + " fixes " + id, "severity": severity,
		"released": released, "revised": released, "cves": []string{"CVE-2099-" + id[len(id)-3:]}, "update_ids": b.UpdateIDs})
	f.B = append(f.B, b)
}
