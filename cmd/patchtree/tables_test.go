package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// checkWidth fails for every line of out wider than tableWidth runes and returns the widest.
func checkWidth(t *testing.T, what, out string) int {
	t.Helper()
	widest := 0
	for line := range strings.Lines(out) {
		n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n"))
		widest = max(widest, n)
		if n > tableWidth {
			t.Errorf("%s: line of %d runes, want at most %d:\n%s", what, n, tableWidth, line)
		}
	}
	if widest == 0 {
		t.Errorf("%s: printed nothing", what)
	}
	return widest
}

// sampleRuns are runs with the longest cells the server writes.
func sampleRuns() []replicationRun {
	started := time.Date(2026, 12, 2, 21, 6, 20, 0, time.UTC)
	return []replicationRun{
		{Child: "emea-de-frankfurt", Scope: "catalog+policies+settings", Mode: "differential", Trigger: "replicate-now",
			From: 1234567, To: 1234890, Records: 123456, Deletes: 4567, BytesWire: 123456789, BytesRaw: 987654321,
			StartedAt: started, DurationMS: 123456, Verified: true,
			Policies: &runPoliciesSection{Records: 12, Deletes: 3, Folders: []string{"servers/critical"}}},
		{Child: "apac", Scope: "catalog", Mode: "complete", Trigger: "first", From: 0, To: 99, Records: 5, StartedAt: started,
			Error: "apply batch 3: the child answered 503 Service Unavailable: site not ready: this server has not applied the site's log through the commit index"},
	}
}

func TestTablesFitWithoutWide(t *testing.T) {
	pct := func(f float64) *float64 { return &f }
	finished := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	lastRun := &store.ReplicationRun{Mode: "differential", Trigger: "continuous", Records: 123456, Verified: false}
	children := []hierarchy.ChildStatus{
		{Name: "emea-de-frankfurt", Connected: true, Ranges: []string{"de", "de-AT", "de-CH", "en", "en-GB", "fr", "it"},
			Cursor: 12345678, LagIndex: 123456, LastRun: lastRun,
			Status: "failing: apply batch 3: the child answered 503 Service Unavailable: site not ready; retrying in 30s"},
		{Name: "apac", Ranges: []string{"ja"}, Status: "ok"},
	}
	tree := &hierarchy.Tree{Sites: []hierarchy.TreeSite{
		{Path: "headquarters", Depth: 0, Role: "parent", Ranges: []string{"*"}, RootVersion: 123456},
		{Path: "headquarters/emea-relay-europe", Depth: 1, Role: "relay", Ranges: []string{"de", "en", "fr", "it", "pt-BR"},
			Connected: true, RootVersion: 123455, LagIndex: 123456, LagSeconds: 3725,
			LastRuns: map[string]store.RunBrief{"catalog": {Mode: "differential", FinishedAt: finished}},
			Alerts:   []string{"pt-BR", "es-419", "zh-Hant-TW"}},
		{Path: "headquarters/emea-relay-europe/emea-de-frankfurt-am-main", Depth: 2, Role: "child", Ranges: []string{"de"},
			LastRuns: map[string]store.RunBrief{"catalog": {Mode: "complete", FinishedAt: finished}}},
	}}
	policies := []policy{{ID: "p-0123456789abcdef", Name: "Critical browser updates for every Windows server in the fleet",
		Folder: "servers/windows/critical", Enabled: true, Revision: 12345, Origin: "parent",
		Bulletins: []string{"MFSA-2019-01", "MFSA-2019-02", "MFSA-2019-03", "MFSA-2019-04"},
		Updates:   []policyUpdate{{ID: "u1", Enabled: true}, {ID: "u2"}}}}
	sites := &complianceOverview{AsOf: finished, Sites: []siteCompliance{
		{Site: "headquarters", Local: true, Computers: 1234567, Compliant: 1234000, Compliance: pct(0.9995),
			Cells: cellCounts{Required: 12345678, Unknown: 1234567}, AsOf: finished, Path: "headquarters"},
		{Site: "emea-de-frankfurt", Computers: 123456, Compliant: 12345, Compliance: pct(0.1),
			Cells: cellCounts{Required: 1234567, Unknown: 123456}, AsOf: finished, Stale: true,
			Path: "headquarters/emea-relay-europe/emea-de-frankfurt", Depth: 2,
			Subtree: &subtreeTotal{Sites: 123, Computers: 1234567, Compliance: pct(0.5)}},
	}}
	sites.Totals.Computers, sites.Totals.Sites = 1358023, 2
	flat := &complianceOverview{AsOf: finished, Sites: []siteCompliance{sites.Sites[0], {Site: "emea-de-frankfurt",
		Computers: 123456, Compliant: 12345, Compliance: pct(0.1), Cells: cellCounts{Required: 1234567, Unknown: 123456}, AsOf: finished}}}
	bulletins := []bulletinCompliance{{Bulletin: "MFSA-2019-0123", Severity: "Critical", CustomSeverity: "Urgent, patch within 24 hours",
		Released: "2019-01-29T00:00:00Z", Sites: 1234, Installed: 12345678, Required: 1234567, NotRequired: 12345678, Unknown: 1234567, Compliance: pct(0.9)}}

	for _, tc := range []struct {
		name  string
		print func(w *bytes.Buffer, wide bool) error
	}{
		{"runs", func(w *bytes.Buffer, wide bool) error { return printRuns(w, sampleRuns(), wide) }},
		{"child list", func(w *bytes.Buffer, wide bool) error { return printChildren(w, children, wide) }},
		{"tree", func(w *bytes.Buffer, wide bool) error { return printTree(w, tree, wide) }},
		{"policy list", func(w *bytes.Buffer, wide bool) error { return printPolicies(w, policies, wide) }},
		{"compliance by site with relays", func(w *bytes.Buffer, wide bool) error { return printSites(w, sites, true, wide) }},
		{"compliance by site", func(w *bytes.Buffer, wide bool) error { return printSites(w, flat, true, wide) }},
		{"compliance by bulletin", func(w *bytes.Buffer, wide bool) error { return printBulletins(w, bulletins, wide) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var narrow, wide bytes.Buffer
			if err := tc.print(&narrow, false); err != nil {
				t.Fatal(err)
			}
			checkWidth(t, tc.name, narrow.String())
			if err := tc.print(&wide, true); err != nil {
				t.Fatal(err)
			}
			if strings.Count(wide.String(), "\n") != strings.Count(narrow.String(), "\n") {
				t.Errorf("--wide printed %d lines, without it %d", strings.Count(wide.String(), "\n"), strings.Count(narrow.String(), "\n"))
			}
			if len(wide.String()) <= len(narrow.String()) {
				t.Errorf("--wide printed no more than the narrow table:\n%s\n%s", wide.String(), narrow.String())
			}
		})
	}
}

func TestRunsColumns(t *testing.T) {
	var b bytes.Buffer
	if err := printRuns(&b, sampleRuns(), false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	for i, want := range []string{"OK", "cat+pol+set  diff", "complete"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("runs line %d lacks %q:\n%s", i, want, b.String())
		}
	}
	if !strings.Contains(lines[1], " yes ") || !strings.Contains(lines[2], " no ") || !strings.HasSuffix(lines[2], "…") {
		t.Errorf("runs: want the OK column whole and the error cut:\n%s", b.String())
	}
	b.Reset()
	if err := printRuns(&b, sampleRuns(), true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TRIGGER", "POLICIES", "WIRE", "RAW", "2026-12-02T21:06:20Z", "replicate-now", "123456789",
		"the commit index"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("runs --wide lacks %q:\n%s", want, b.String())
		}
	}
}

// TestCatalogShowFits runs catalog show (the list and one bulletin) against a stub server.
func TestCatalogShowFits(t *testing.T) {
	long := strings.Repeat("Mozilla Firefox security update for a very long product name ", 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/catalog":
			w.Write([]byte(`{"version":7,"bulletins":1,"updates":1}`))
		case "/v1/catalog/bulletins":
			w.Write([]byte(`{"total":1,"bulletins":[{"ID":"MFSA-2019-0123","Released":"2019-01-29","Severity":"Critical",` +
				`"custom_severity":"Urgent","Updates":12,"Title":"` + long + `"}]}`))
		default:
			w.Write([]byte(`{"bulletin":{"ID":"MFSA-2019-0123","Title":"t"},"updates":[{"ID":"u-0123456789abcdef",` +
				`"Language":"de-AT","file_name":"Firefox Setup 66.0.3.exe","Title":"` + long + `"}]}`))
		}
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{{"catalog", "show"}, {"catalog", "show", "MFSA-2019-0123"}} {
		code, out := runCaptured(t, append(args, "--server", srv.URL)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, out.stderr)
		}
		table := out.stdout[strings.LastIndex(out.stdout, "\n\n")+2:]
		checkWidth(t, strings.Join(args, " "), table)
		code, out = runCaptured(t, append(args, "--server", srv.URL, "--wide")...)
		if code != 0 || !strings.Contains(out.stdout, long) {
			t.Errorf("%v --wide: exit %d, want the full title:\n%s", args, code, out.stdout)
		}
	}
}
