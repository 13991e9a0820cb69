package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// captured is what a command printed.
type captured struct{ stdout, stderr string }

// runCaptured runs a command line with os.Stdout and os.Stderr sent to files, and returns its
// exit status and output.
func runCaptured(t *testing.T, args ...string) (int, captured) {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = out, errf
	code := run(args, out, errf)
	os.Stdout, os.Stderr = oldOut, oldErr
	out.Close()
	errf.Close()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return code, captured{string(o), string(e)}
}

// request is what a stub server received.
type request struct {
	method, uri, contentType, auth string
	body                           []byte
}

// stubServer answers every request with status and body (content type by its first byte) and
// records what it received.
func stubServer(t *testing.T, status int, body string) (string, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), b})
		mu.Unlock()
		if strings.HasPrefix(body, "{") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), got...)
	}
}

func TestScanSubmitUsageErrors(t *testing.T) {
	server := noServer(t)
	file := filepath.Join(t.TempDir(), "scan.json")
	os.WriteFile(file, []byte(`{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{}}`), 0o600)
	for _, args := range [][]string{
		{"scan"},
		{"scan", "send", file},
		{"scan", "submit"},
		{"scan", "submit", ""},
		{"scan", "submit", file, file},
		{"scan", "submit", file, "--output", "csv"},
		{"scan", "submit", file, "--nope"},
		{"scan", "submit", file, "--ndjson=maybe"},
	} {
		args = append(args, "--server", server)
		if code := run(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("patchtree %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	code, out := runCaptured(t, "scan", "submit", filepath.Join(t.TempDir(), "missing.ndjson"), "--server", server)
	if code != 1 || !strings.Contains(out.stderr, "missing.ndjson") || strings.Count(out.stderr, "\n") != 1 {
		t.Errorf("missing file: exit %d, stderr %q; want 1 and one line naming the file", code, out.stderr)
	}
}

func TestScanSubmitFormats(t *testing.T) {
	const answer = `{"received":2,"stored":2,"results_stored":3,"rejected":0,"errors":[]}`
	dir := t.TempDir()
	one := filepath.Join(dir, "pc-1.json")
	many := filepath.Join(dir, "batch.NDJSON")
	plain := filepath.Join(dir, "batch.txt")
	oneBody := `{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u-1":"installed"}}`
	manyBody := oneBody + "\n" + strings.Replace(oneBody, "pc-1", "pc-2", 1) + "\n"
	os.WriteFile(one, []byte(oneBody), 0o600)
	os.WriteFile(many, []byte(manyBody), 0o600)
	os.WriteFile(plain, []byte(manyBody), 0o600)

	old := scanStdin
	defer func() { scanStdin = old }()
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		uri   string
		ctype string
		body  string
	}{
		{"one scan", []string{one}, "", "/v1/scans", "application/json", oneBody},
		{"ndjson by extension", []string{many}, "", "/v1/scans?format=ndjson", "application/x-ndjson", manyBody},
		{"ndjson by flag", []string{plain, "--ndjson"}, "", "/v1/scans?format=ndjson", "application/x-ndjson", manyBody},
		{"stdin", []string{"-"}, oneBody, "/v1/scans", "application/json", oneBody},
		{"stdin ndjson", []string{"--ndjson", "-"}, manyBody, "/v1/scans?format=ndjson", "application/x-ndjson", manyBody},
	} {
		server, got := stubServer(t, http.StatusOK, answer)
		scanStdin = strings.NewReader(tc.stdin)
		args := append([]string{"scan", "submit", "--server", server + "/", "--token", "agent-secret"}, tc.args...)
		code, out := runCaptured(t, args...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", tc.name, code, out.stderr)
			continue
		}
		reqs := got()
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests, want 1", tc.name, len(reqs))
			continue
		}
		r := reqs[0]
		if r.method != http.MethodPost || r.uri != tc.uri || r.contentType != tc.ctype || r.auth != "Bearer agent-secret" || string(r.body) != tc.body {
			t.Errorf("%s: sent %s %s (%s, %q) %q", tc.name, r.method, r.uri, r.contentType, r.auth, r.body)
		}
		if !strings.Contains(out.stdout, "Results stored:  3") || out.stderr != "" {
			t.Errorf("%s: stdout %q stderr %q", tc.name, out.stdout, out.stderr)
		}
	}
}

func TestScanSubmitRejectedIsNotAFailure(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scans.ndjson")
	os.WriteFile(file, []byte("{}\n"), 0o600)
	var errs []string
	for i := range 25 {
		errs = append(errs, `{"line":`+strings.Repeat("1", 1+i%2)+`,"computer_id":"pc-2","update_id":"nope","error":"unknown update (not in this site's catalog)"}`)
	}
	answer := `{"received":3,"stored":3,"results_stored":2999,"rejected":30,"errors":[` + strings.Join(errs, ",") + `]}`
	server, _ := stubServer(t, http.StatusOK, answer)
	code, out := runCaptured(t, "scan", "submit", file, "--server", server)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (the request succeeded): %s", code, out.stderr)
	}
	if !strings.Contains(out.stderr, "30 record(s) rejected") || strings.Count(out.stderr, "\n") != 1 {
		t.Errorf("stderr %q: want one line with the rejected count", out.stderr)
	}
	for _, want := range []string{"Rejected:        30", "LINE  COMPUTER  UPDATE  ERROR", "unknown update", "... and 10 more"} {
		if !strings.Contains(out.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.stdout)
		}
	}
	if n := strings.Count(out.stdout, "pc-2"); n != scanErrorsShown {
		t.Errorf("table lists %d errors, want the first %d", n, scanErrorsShown)
	}

	code, out = runCaptured(t, "scan", "submit", file, "--server", server, "-o", "json")
	if code != 0 || strings.TrimSpace(out.stdout) != answer || !strings.Contains(out.stderr, "30 record(s) rejected") {
		t.Errorf("json: exit %d, stdout %q, stderr %q", code, out.stdout, out.stderr)
	}

	bad, _ := stubServer(t, http.StatusBadRequest, `{"error":"bad request: malformed scan submission: EOF"}`)
	if code, out := runCaptured(t, "scan", "submit", file, "--server", bad); code != 1 || !strings.Contains(out.stderr, "malformed scan submission") {
		t.Errorf("400: exit %d, stderr %q", code, out.stderr)
	}
}

func TestComplianceFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		by   string
		path string
	}{
		{nil, "site", "/v1/compliance"},
		{[]string{"--site", "emea", "-o", "csv"}, "site", "/v1/compliance"},
		{[]string{"--by", "bulletin"}, "bulletin", "/v1/compliance/bulletins"},
		{[]string{"--by", "bulletin", "--site", "emea", "--severity", "Critical", "--vendor", "Mozilla", "--released-from", "2024-01-01",
			"--released-to", "2024-12-31", "--bulletin", "MFSA-2024-01", "--output", "csv"}, "bulletin",
			"/v1/compliance/bulletins?bulletin=MFSA-2024-01&format=csv&released_from=2024-01-01&released_to=2024-12-31&severity=Critical&site=emea&vendor=Mozilla"},
		{[]string{"--by=bulletin", "--severity", "very high", "-o", "json"}, "bulletin", "/v1/compliance/bulletins?severity=very+high"},
	} {
		q, err := parseCompliance(tc.args)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if q.by != tc.by || q.path() != tc.path {
			t.Errorf("%v: by %s path %s, want %s %s", tc.args, q.by, q.path(), tc.by, tc.path)
		}
	}
}

func TestComplianceUsageErrors(t *testing.T) {
	server := noServer(t)
	for _, args := range [][]string{
		{"compliance", "emea"},
		{"compliance", "--by", "computer"},
		{"compliance", "--by", ""},
		{"compliance", "--output", "yaml"},
		{"compliance", "--site", ""},
		{"compliance", "--site", " "},
		{"compliance", "--severity", "Critical"},
		{"compliance", "--by", "site", "--vendor", "Mozilla"},
		{"compliance", "--released-from", "2024-01-01"},
		{"compliance", "--by", "bulletin", "--severity", ""},
		{"compliance", "--by", "bulletin", "--released-from", "2024-13-01"},
		{"compliance", "--by", "bulletin", "--released-to", "yesterday"},
		{"compliance", "--by", "bulletin", "--released-from", "2024-06-01", "--released-to", "2024-01-01"},
		{"compliance", "--nope"},
	} {
		args = append(args, "--server", server)
		code, out := runCaptured(t, args...)
		if code != 2 {
			t.Errorf("patchtree %s: exit %d, want 2", strings.Join(args, " "), code)
		}
		if strings.Count(out.stderr, "\n") != 1 || out.stdout != "" {
			t.Errorf("patchtree %s: stdout %q stderr %q; want one line on stderr", strings.Join(args, " "), out.stdout, out.stderr)
		}
	}
}

// overviewJSON is a parent's GET /v1/compliance answer: two children (one stale, one without
// applicable updates) and computers of its own.
const overviewJSON = `{"as_of":"2026-11-21T10:00:00Z",
 "totals":{"sites":3,"stale_sites":1,"computers":60,"compliant":45,"compliance":0.75,
           "cells":{"installed":400,"required":30,"not_required":50,"unknown":20}},
 "sites":[
  {"site":"hq","local":true,"computers":10,"compliant":10,"compliance":1,"cells":{"installed":100,"required":0,"not_required":0,"unknown":0},
   "as_of":"2026-11-21T10:00:00Z","stale":false},
  {"site":"apac","local":false,"computers":0,"compliant":0,"compliance":null,"cells":{"installed":0,"required":0,"not_required":0,"unknown":0},
   "as_of":"2026-11-21T09:00:00Z","last_contact":"2026-11-21T09:59:00Z","interval":"1h0m0s","stale":false,"seq":1},
  {"site":"emea","local":false,"computers":50,"compliant":35,"compliance":0.7,"cells":{"installed":300,"required":30,"not_required":50,"unknown":20},
   "as_of":"2026-11-21T07:00:00Z","last_contact":"2026-11-21T07:00:00Z","interval":"1h0m0s","stale":true,"seq":12}]}`

func TestComplianceBySite(t *testing.T) {
	server, got := stubServer(t, http.StatusOK, overviewJSON)
	code, out := runCaptured(t, "compliance", "--server", server, "--token", "auditor-secret", "--wide")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.stderr)
	}
	if r := got()[0]; r.uri != "/v1/compliance" || r.auth != "Bearer auditor-secret" {
		t.Errorf("sent %s with %q", r.uri, r.auth)
	}
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	want := [][]string{
		{"SITE", "COMPUTERS", "COMPLIANT", "COMPLIANCE", "%", "REQUIRED", "CELLS", "UNKNOWN", "CELLS", "AS", "OF", "STALE"},
		{"hq", "(local)", "10", "10", "100.0", "0", "0", "2026-11-21T10:00:00Z", "no"},
		{"apac", "0", "0", "-", "0", "0", "2026-11-21T09:00:00Z", "no"},
		{"emea", "50", "35", "70.0", "30", "20", "2026-11-21T07:00:00Z", "yes"},
		{"TOTAL", "60", "45", "75.0", "30", "20", "2026-11-21T10:00:00Z", "1", "of", "3"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table has %d lines, want %d:\n%s", len(lines), len(want), out.stdout)
	}
	for i, l := range lines {
		if f := strings.Fields(l); strings.Join(f, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %q, want %q", i, f, want[i])
		}
	}

	code, out = runCaptured(t, "compliance", "--server", server, "--output", "json")
	if code != 0 || strings.TrimSpace(out.stdout) != overviewJSON {
		t.Errorf("json: exit %d, printed %q; want the server's answer", code, out.stdout)
	}

	code, out = runCaptured(t, "compliance", "--server", server, "--site", "emea", "-o", "json")
	var one struct {
		Site string `json:"site"`
		Seq  int    `json:"seq"`
	}
	if code != 0 || json.Unmarshal([]byte(out.stdout), &one) != nil || one.Site != "emea" || one.Seq != 12 {
		t.Errorf("json of one site: exit %d, printed %q", code, out.stdout)
	}

	code, out = runCaptured(t, "compliance", "--server", server, "--site", "emea")
	if code != 0 || strings.Count(out.stdout, "\n") != 2 || !strings.Contains(out.stdout, "emea") || strings.Contains(out.stdout, "TOTAL") {
		t.Errorf("table of one site: exit %d:\n%s", code, out.stdout)
	}

	code, out = runCaptured(t, "compliance", "--server", server, "-o", "csv")
	wantCSV := "site,local,computers,compliant,compliance,installed,required,not_required,unknown,as_of,last_contact,interval,stale,seq\n" +
		"hq,true,10,10,1.0000,100,0,0,0,2026-11-21T10:00:00Z,,,false,\n" +
		"apac,false,0,0,,0,0,0,0,2026-11-21T09:00:00Z,2026-11-21T09:59:00Z,1h0m0s,false,1\n" +
		"emea,false,50,35,0.7000,300,30,50,20,2026-11-21T07:00:00Z,2026-11-21T07:00:00Z,1h0m0s,true,12\n"
	if code != 0 || out.stdout != wantCSV {
		t.Errorf("csv: exit %d:\n%s\nwant\n%s", code, out.stdout, wantCSV)
	}

	if code, out := runCaptured(t, "compliance", "--server", server, "--site", "amer"); code != 1 || !strings.Contains(out.stderr, `"amer"`) {
		t.Errorf("unknown site: exit %d, stderr %q", code, out.stderr)
	}
	forbidden, _ := stubServer(t, http.StatusForbidden, `{"error":"forbidden: role \"agent\" may not GET /v1/compliance"}`)
	if code, out := runCaptured(t, "compliance", "--server", forbidden); code != 1 || !strings.Contains(out.stderr, "HTTP 403") {
		t.Errorf("403: exit %d, stderr %q", code, out.stderr)
	}
}

const bulletinsJSON = `{"as_of":"2026-11-21T10:00:00Z","bulletins":[
 {"bulletin":"MFSA-2024-02","title":"Use-after-free","vendor":"Mozilla","severity":"High","custom_severity":"Urgent",
  "released":"2024-02-20","sites":2,"installed":40,"required":10,"not_required":5,"unknown":5,"applicable":50,"compliance":0.8},
 {"bulletin":"MFSA-2024-01","title":"Spoofing","vendor":"Mozilla","severity":"Low","released":"2024-01-23T00:00:00Z",
  "sites":1,"installed":0,"required":0,"not_required":7,"unknown":3,"applicable":0,"compliance":null}]}`

func TestComplianceByBulletin(t *testing.T) {
	server, got := stubServer(t, http.StatusOK, bulletinsJSON)
	code, out := runCaptured(t, "compliance", "--by", "bulletin", "--severity", "urgent", "--server", server, "--wide")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.stderr)
	}
	if uri := got()[0].uri; uri != "/v1/compliance/bulletins?severity=urgent" {
		t.Errorf("sent %s", uri)
	}
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	want := []string{
		"BULLETIN SEVERITY RELEASED SITES INSTALLED REQUIRED NOT REQUIRED UNKNOWN COMPLIANCE %",
		"MFSA-2024-02 Urgent (custom) 2024-02-20 2 40 10 5 5 80.0",
		"MFSA-2024-01 Low 2024-01-23 1 0 0 7 3 -",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.stdout)
	}
	for i, l := range lines {
		if f := strings.Join(strings.Fields(l), " "); f != want[i] {
			t.Errorf("line %d: %q, want %q", i, f, want[i])
		}
	}

	const csvAnswer = "bulletin,title,vendor,severity,custom_severity,released,sites,installed,required,not_required,unknown,applicable,compliance\n" +
		"MFSA-2024-02,\"Use-after-free, again\",Mozilla,High,Urgent,2024-02-20,2,40,10,5,5,50,0.8000\n"
	csvServer, got := stubServer(t, http.StatusOK, csvAnswer)
	code, out = runCaptured(t, "compliance", "--by", "bulletin", "--site", "emea", "--server", csvServer, "-o", "csv")
	if code != 0 || out.stdout != csvAnswer {
		t.Errorf("csv: exit %d, printed %q; want the server's CSV as is", code, out.stdout)
	}
	if uri := got()[0].uri; uri != "/v1/compliance/bulletins?format=csv&site=emea" {
		t.Errorf("csv: sent %s", uri)
	}

	notFound, _ := stubServer(t, http.StatusNotFound, `{"error":"site \"amer\" has no compliance summary here: not found"}`)
	if code, out := runCaptured(t, "compliance", "--by", "bulletin", "--site", "amer", "--server", notFound); code != 1 || !strings.Contains(out.stderr, "HTTP 404") {
		t.Errorf("404: exit %d, stderr %q", code, out.stderr)
	}
}

func TestReplicateNowComplianceScope(t *testing.T) {
	req, _, _, err := parseReplicateNow([]string{"--scope", "compliance"})
	if err != nil || req.Scope != "compliance" {
		t.Fatalf("--scope compliance: %+v %v", req, err)
	}
	for _, args := range [][]string{{"--scope", "compliance", "--child", "emea"}, {"--scope", "compliance", "--complete"},
		{"--scope", "compliance", "--policy", "p-1"}} {
		if _, _, _, err := parseReplicateNow(args); !isUsage(err) {
			t.Errorf("replicate-now %v: %v, want a usage error", args, err)
		}
	}
	server, got := stubServer(t, http.StatusOK, `{"scope":"compliance","summary":{"sent":true,"seq":7,"digest":"ab","bytes_wire":656,"bytes_raw":2716,"bulletins":40,"computers":25,"at":"2026-11-21T10:00:00Z"}}`)
	code, out := runCaptured(t, "replicate-now", "--scope", "compliance", "--server", server)
	if code != 0 || !strings.Contains(out.stdout, "compliance summary sent: seq 7, 25 computers, 40 bulletins") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.stdout, out.stderr)
	}
	if r := got()[0]; r.uri != "/v1/replication/now" || string(r.body) != `{"scope":"compliance"}` {
		t.Errorf("sent %s %s", r.uri, r.body)
	}
}

func TestDemoScans(t *testing.T) {
	updates := []string{"firefox-1.0-de", "firefox-1.0-fr", "thunderbird-2.0-de"}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a, err := demoScans("emea", updates, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := demoScans("emea", updates, 1, now)
	if !bytes.Equal(a, b) {
		t.Errorf("the same seed gave different scans")
	}
	if c, _ := demoScans("emea", updates, 2, now); bytes.Equal(a, c) {
		t.Errorf("another seed gave the same scans")
	}
	states := map[string]int{}
	computers := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(a))
	for sc.Scan() {
		var s struct {
			ComputerID string            `json:"computer_id"`
			ScannedAt  string            `json:"scanned_at"`
			Results    map[string]string `json:"results"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		at, err := time.Parse(time.RFC3339, s.ScannedAt)
		if err != nil || at.After(now) {
			t.Errorf("%s: scanned_at %q", s.ComputerID, s.ScannedAt)
		}
		computers[s.ComputerID] = true
		if len(s.Results) != len(updates) {
			t.Errorf("%s reports %d updates, want every one of %d", s.ComputerID, len(s.Results), len(updates))
		}
		for _, st := range s.Results {
			states[st]++
		}
	}
	if len(computers) != demoComputers || !computers["emea-pc-001"] {
		t.Errorf("%d computers, want %d named like emea-pc-001", len(computers), demoComputers)
	}
	for _, st := range []string{"installed", "required", "not_required"} {
		if states[st] == 0 {
			t.Errorf("no %s results in the mix: %v", st, states)
		}
	}
	if states["unknown"] != 0 {
		t.Errorf("simulated computers report every update; got %d unknown", states["unknown"])
	}
}

func TestSeverityCell(t *testing.T) {
	long := "Critical (Firefox 2.0 not affected in default configuration)"
	for _, tc := range []struct {
		b    bulletinCompliance
		want string
	}{
		{bulletinCompliance{Severity: "High"}, "High"},
		{bulletinCompliance{}, "-"},
		{bulletinCompliance{Severity: "Low", CustomSeverity: "Urgent"}, "Urgent (custom)"},
		{bulletinCompliance{Severity: long}, "Critical (Firefox 2.0 n…"},
		{bulletinCompliance{Severity: "Low", CustomSeverity: "Fix\nthis week please, all"}, "Fix this week pleas… (custom)"},
	} {
		if got := severityCell(&tc.b); got != tc.want {
			t.Errorf("severity %q custom %q: cell %q, want %q", tc.b.Severity, tc.b.CustomSeverity, got, tc.want)
		}
	}
}

// treeJSON is a root's GET /v1/compliance with a relay (emea) and a site below it (emea/de).
const treeJSON = `{"as_of":"2026-11-21T10:00:00Z",
 "totals":{"sites":3,"stale_sites":0,"computers":70,"compliant":50,"compliance":0.7142857,
           "cells":{"installed":400,"required":30,"not_required":50,"unknown":20}},
 "sites":[
  {"site":"apac","local":false,"computers":20,"compliant":20,"compliance":1,"cells":{"installed":100,"required":0,"not_required":0,"unknown":0},
   "as_of":"2026-11-21T09:00:00Z","last_contact":"2026-11-21T09:59:00Z","interval":"1h0m0s","stale":false,"seq":1,
   "path":"hq/apac","name":"apac","parent":"hq","depth":1,"subtree":{"sites":1,"stale_sites":0,"computers":20,"compliant":20,"compliance":1}},
  {"site":"emea","local":false,"computers":10,"compliant":5,"compliance":0.5,"cells":{"installed":100,"required":10,"not_required":0,"unknown":0},
   "as_of":"2026-11-21T09:00:00Z","last_contact":"2026-11-21T09:59:00Z","interval":"1h0m0s","stale":false,"seq":4,
   "path":"hq/emea","name":"emea","parent":"hq","depth":1,"subtree":{"sites":2,"stale_sites":0,"computers":50,"compliant":30,"compliance":0.6}},
  {"site":"emea/de","local":false,"computers":40,"compliant":25,"compliance":0.625,"cells":{"installed":200,"required":20,"not_required":50,"unknown":20},
   "as_of":"2026-11-21T08:00:00Z","last_contact":"2026-11-21T08:30:00Z","interval":"1h0m0s","stale":false,"seq":9,
   "path":"hq/emea/de","name":"de","parent":"hq/emea","depth":2,"subtree":{"sites":1,"stale_sites":0,"computers":40,"compliant":25,"compliance":0.625}}]}`

func TestComplianceBySitePath(t *testing.T) {
	server, got := stubServer(t, http.StatusOK, treeJSON)
	code, out := runCaptured(t, "compliance", "--server", server, "--depth", "2", "--wide")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.stderr)
	}
	if uri := got()[0].uri; uri != "/v1/compliance?depth=2" {
		t.Errorf("sent %s", uri)
	}
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	want := []string{
		"SITE COMPUTERS COMPLIANT COMPLIANCE % REQUIRED CELLS UNKNOWN CELLS AS OF STALE SUBTREE SITES SUBTREE COMPUTERS SUBTREE COMPLIANCE %",
		"apac 20 20 100.0 0 0 2026-11-21T09:00:00Z no 1 20 100.0",
		"emea 10 5 50.0 10 0 2026-11-21T09:00:00Z no 2 50 60.0",
		"emea/de 40 25 62.5 20 20 2026-11-21T08:00:00Z no 1 40 62.5",
		"TOTAL 70 50 71.4 30 20 2026-11-21T10:00:00Z 0 of 3 3 70 71.4",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.stdout)
	}
	for i, l := range lines {
		if f := strings.Join(strings.Fields(l), " "); f != want[i] {
			t.Errorf("line %d: %q, want %q", i, f, want[i])
		}
	}

	code, out = runCaptured(t, "compliance", "--server", server, "-o", "csv")
	wantCSV := "site,local,computers,compliant,compliance,installed,required,not_required,unknown,as_of,last_contact,interval,stale,seq," +
		"path,parent,depth,subtree_sites,subtree_stale_sites,subtree_computers,subtree_compliant,subtree_compliance\n" +
		"apac,false,20,20,1.0000,100,0,0,0,2026-11-21T09:00:00Z,2026-11-21T09:59:00Z,1h0m0s,false,1,hq/apac,hq,1,1,0,20,20,1.0000\n" +
		"emea,false,10,5,0.5000,100,10,0,0,2026-11-21T09:00:00Z,2026-11-21T09:59:00Z,1h0m0s,false,4,hq/emea,hq,1,2,0,50,30,0.6000\n" +
		"emea/de,false,40,25,0.6250,200,20,50,20,2026-11-21T08:00:00Z,2026-11-21T08:30:00Z,1h0m0s,false,9,hq/emea/de,hq/emea,2,1,0,40,25,0.6250\n"
	if code != 0 || out.stdout != wantCSV {
		t.Errorf("csv: exit %d:\n%s\nwant\n%s", code, out.stdout, wantCSV)
	}

	for _, site := range []string{"emea/de", "hq/emea/de"} {
		code, out = runCaptured(t, "compliance", "--server", server, "--site", site, "-o", "json")
		var one struct {
			Path string `json:"path"`
			Seq  int    `json:"seq"`
		}
		if code != 0 || json.Unmarshal([]byte(out.stdout), &one) != nil || one.Path != "hq/emea/de" || one.Seq != 9 {
			t.Errorf("--site %s -o json: exit %d, printed %q", site, code, out.stdout)
		}
	}
}

func TestComplianceTreeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		path string
	}{
		{[]string{"--depth", "0"}, "/v1/compliance?depth=0"},
		{[]string{"--depth=3", "--site", "emea"}, "/v1/compliance?depth=3"},
		{[]string{"--by", "bulletin", "--site", "hq/emea", "--subtree"}, "/v1/compliance/bulletins?site=hq%2Femea&subtree=true"},
	} {
		q, err := parseCompliance(tc.args)
		if err != nil || q.path() != tc.path {
			t.Errorf("%v: path %v %v, want %s", tc.args, q, err, tc.path)
			continue
		}
	}
	for _, args := range [][]string{
		{"--depth", "-1"},
		{"--by", "bulletin", "--depth", "1"},
		{"--subtree"},
		{"--by", "bulletin", "--subtree"},
		{"--site", "emea", "--subtree"},
	} {
		if _, err := parseCompliance(args); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
