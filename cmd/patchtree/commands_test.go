package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func isUsage(err error) bool { return errors.As(err, new(usageError)) }

// noServer is a server that fails the test if a command reaches it.
func noServer(t *testing.T) string {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, `{"error":"unexpected"}`, http.StatusTeapot)
	}))
	t.Cleanup(func() {
		srv.Close()
		if n := hits.Load(); n > 0 {
			t.Errorf("the command sent %d requests; want none", n)
		}
	})
	return srv.URL
}

func TestPolicyCreateFlags(t *testing.T) {
	req, cf, err := parsePolicyCreate([]string{"--bulletin", "MFSA-2019-01", "--bulletin", "MFSA-2019-02", "--bulletin", "MFSA-2019-01",
		"--folder", "Firefox/2019", "--disable-update", "u-1", "--disable-update", "u-2", "--disabled", "--run", "asap",
		"--override-maintenance-windows", "--replicate-now", "-o", "json"})
	if err != nil {
		t.Fatal(err)
	}
	if cf.output != "json" {
		t.Errorf("output %q, want json", cf.output)
	}
	got, _ := json.Marshal(req)
	want := `{"folder":"Firefox/2019","bulletins":["MFSA-2019-01","MFSA-2019-02"],"updates":[{"id":"u-1","enabled":false},{"id":"u-2","enabled":false}],` +
		`"enabled":false,"run":"asap","override_maintenance_windows":true,"replicate_now":true}`
	if string(got) != want {
		t.Errorf("body\n %s\nwant\n %s", got, want)
	}

	req, _, err = parsePolicyCreate([]string{"--bulletin", "MFSA-2019-01"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(req); string(got) != `{"bulletins":["MFSA-2019-01"]}` {
		t.Errorf("minimal body %s: unset flags must leave the server's defaults", got)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	server := noServer(t)
	for _, args := range [][]string{
		{"policy"},
		{"policy", "rename"},
		{"policy", "create"},
		{"policy", "create", "--name", "x"},
		{"policy", "create", "--bulletin", ""},
		{"policy", "create", "--bulletin", "MFSA-2019-01", "--disable-update", " "},
		{"policy", "create", "MFSA-2019-01"},
		{"policy", "create", "--bulletin", "MFSA-2019-01", "--output", "yaml"},
		{"policy", "create", "--bulletin", "MFSA-2019-01", "--nope"},
		{"policy", "list", "extra"},
		{"policy", "show"},
		{"policy", "show", "p-1", "p-2"},
		{"policy", "enable"},
		{"policy", "disable"},
		{"policy", "delete"},
		{"policy", "delete", ""},
	} {
		args = append(args, "--server", server)
		if code := run(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("patchtree %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestAuditFlags(t *testing.T) {
	q, _, err := auditQuery([]string{"--action", "policy.", "--since", "00000000000000000042-0000", "--limit", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q.Encode(), "action=policy.&limit=5&since=00000000000000000042-0000"; got != want {
		t.Errorf("query %q, want %q", got, want)
	}
	for _, args := range [][]string{{"--limit", "0"}, {"--limit", "-1"}, {"extra"}, {"--limit", "x"}} {
		if _, _, err := auditQuery(args); !isUsage(err) {
			t.Errorf("audit %v: %v, want a usage error", args, err)
		}
	}
}

func TestCompactDetail(t *testing.T) {
	if got := compactDetail(json.RawMessage("{\n  \"a\": 1,\n  \"b\": [1, 2]\n}"), 80); got != `{"a":1,"b":[1,2]}` {
		t.Errorf("compacted %q", got)
	}
	long := json.RawMessage(`{"titles":"` + strings.Repeat("é", 200) + `"}`)
	if got := compactDetail(long, 80); len([]rune(got)) != 80 || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated to %d characters: %q", len([]rune(got)), got)
	}
	for _, empty := range []string{"", "null", " "} {
		if got := compactDetail(json.RawMessage(empty), 80); got != "-" {
			t.Errorf("detail %q printed as %q", empty, got)
		}
	}
}

func TestSettingsSetReadsJSON(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "tasks.json")
	os.WriteFile(good, []byte("{\n  \"catalog_import\": \"02:00\"\n}\n"), 0o600)
	name, body, _, err := parseSettingsSet([]string{"server-tasks", good})
	if err != nil {
		t.Fatal(err)
	}
	if name != "server-tasks" || string(body) != `{"catalog_import":"02:00"}` {
		t.Errorf("got %s %s", name, body)
	}

	old := settingsStdin
	defer func() { settingsStdin = old }()
	settingsStdin = strings.NewReader(`{"max_concurrent": 4}`)
	if _, body, _, err := parseSettingsSet([]string{"remediation", "-"}); err != nil || string(body) != `{"max_concurrent":4}` {
		t.Errorf("from stdin: %s %v", body, err)
	}
}

func TestSettingsSetRefusesBadJSONBeforeAnyRequest(t *testing.T) {
	server := noServer(t)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":    "",
		"garbage":  "catalog_import = 02:00\n",
		"truncate": `{"catalog_import": "02:00"`,
		"two":      `{} {}`,
		"array":    `[{"catalog_import": "02:00"}]`,
		"string":   `"02:00"`,
	} {
		file := filepath.Join(dir, name+".json")
		os.WriteFile(file, []byte(content), 0o600)
		_, _, _, err := parseSettingsSet([]string{"server-tasks", file})
		if !isUsage(err) {
			t.Errorf("%s: %v, want a usage error", name, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", name, err)
		}
		if code := run([]string{"settings", "set", "server-tasks", file, "--server", server}, io.Discard, io.Discard); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
	for _, args := range [][]string{{"settings", "set"}, {"settings", "set", "server-tasks"}, {"settings", "set", "a", "b", "c"},
		{"settings", "show"}, {"settings", "list", "x"}, {"settings", "get", "x"}} {
		if code := run(append(args, "--server", server), io.Discard, io.Discard); code != 2 {
			t.Errorf("patchtree %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if code := run([]string{"settings", "set", "server-tasks", filepath.Join(dir, "missing.json"), "--server", server}, io.Discard, io.Discard); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

func TestReplicateNowFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `{"child":"","scope":"catalog","mode":"differential","wait":false,"timeout":"2m0s"}`},
		{[]string{"--child", "emea", "--scope", "all", "--complete", "--wait", "--timeout", "30s"},
			`{"child":"emea","scope":"all","mode":"complete","wait":true,"timeout":"30s"}`},
		{[]string{"--folder", "Firefox/2019"}, `{"child":"","scope":"policies","folder":"Firefox/2019","mode":"differential","wait":false,"timeout":"2m0s"}`},
		{[]string{"--policy", "p-0123456789ab", "--scope", "policies"},
			`{"child":"","scope":"policies","policy":"p-0123456789ab","mode":"differential","wait":false,"timeout":"2m0s"}`},
		{[]string{"--scope", "settings"}, `{"child":"","scope":"settings","mode":"differential","wait":false,"timeout":"2m0s"}`},
	} {
		req, _, _, err := parseReplicateNow(tc.args)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if got, _ := json.Marshal(req); string(got) != tc.want {
			t.Errorf("%v: body\n %s\nwant\n %s", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{
		{"--scope", "everything"},
		{"--policy", "p-1", "--scope", "catalog"},
		{"--folder", "F", "--scope", "all"},
		{"--policy", "p-1", "--folder", "F"},
		{"--timeout", "0s"},
		{"emea"},
	} {
		if _, _, _, err := parseReplicateNow(args); !isUsage(err) {
			t.Errorf("replicate-now %v: %v, want a usage error", args, err)
		}
	}
}

func TestRunSummary(t *testing.T) {
	var r replicationRun
	raw := `{"child":"emea","scope":"catalog+policies","mode":"differential","trigger":"policy-dependency","records":12,"deletes":0,
		"policies":{"mode":"differential","trigger":"replicate-now","folders":["Firefox/2019"],"ids":[],"records":10,"deletes":1}}`
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	got := runSummary(&r, true, "")
	for _, want := range []string{"catalog+policies differential policy-dependency run: 12 records, 0 deletes",
		"policies: differential replicate-now, 10 records, 1 deletes (folder Firefox/2019)", "verified true"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	only := replicationRun{Scope: "policies", Policies: &runPoliciesSection{Mode: "differential", Trigger: "replicate-now", IDs: []string{"p-1"}, Records: 1}}
	if got, want := runSummary(&only, false, "digest mismatch"), "policies run: 0 bytes on the wire (0 raw), 0 ms; policies: differential replicate-now, 1 records, 0 deletes (policy p-1); verified false digest mismatch"; got != want {
		t.Errorf("policies-only summary\n %q\nwant\n %q", got, want)
	}
	if got := policiesCell(r.Policies); got != "10/1 (folder Firefox/2019)" {
		t.Errorf("runs cell %q", got)
	}
	if got := policiesCell(nil); got != "-" {
		t.Errorf("runs cell without policies %q", got)
	}
}

func TestPolicyTables(t *testing.T) {
	p := policy{ID: "p-0123456789ab", Name: "MFSA-2019-01 and 4 more", Folder: "Firefox/2019", Enabled: true,
		Bulletins: []string{"MFSA-2019-01", "MFSA-2019-02", "MFSA-2019-03", "MFSA-2019-04", "MFSA-2019-05"},
		Updates:   []policyUpdate{{ID: "u-1", Bulletin: "MFSA-2019-01", Language: "en-US", Enabled: true}, {ID: "u-2", Bulletin: "MFSA-2019-01", Language: "de"}},
		Origin:    "local", Revision: 3}
	var b strings.Builder
	if err := printPolicyTable(&b, []policy{p}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "REVISION", "p-0123456789ab", "MFSA-2019-01,MFSA-2019-02,MFSA-2019-03 +2", "1/2", "local"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("policy table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := printPolicy(&b, &p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 of 2 enabled", "UPDATE", "u-2", "de", "false"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("policy show lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSettingsListShowsUnsetNames(t *testing.T) {
	var b strings.Builder
	docs := []settingDoc{{Name: "assessment", Origin: "parent", Body: json.RawMessage(`{"scan_interval": "6h"}`)}}
	if err := printSettingsList(&b, docs, []string{"server-tasks", "assessment"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, `{"scan_interval":"6h"}`) || !strings.Contains(out, "(not set)") || strings.Count(out, "assessment") != 1 {
		t.Errorf("settings list:\n%s", out)
	}
}
