package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// secImportSecret is the content planted in every source the attacker points an import at;
// no answer of the API may carry it.
const secImportSecret = "SECRET-7f3a9c-DO-NOT-ECHO"

// secImportStall is the parent's --import-stall-timeout in this test.
const secImportStall = 4 * time.Second

// testImportSources is finding 6: import sources read the server's files and fetch any URL,
// and the errors leak. A parent started with --import-allow <dir>,<prefix> refuses every
// source outside them (files, symbolic links out, FIFOs, URLs, redirects), its errors carry
// none of the content, non-admins see no error details, and a stalled source times out or is
// cancelled so that the next import runs. The catalog digest never moves.
func testImportSources(t *testing.T) {
	allowDir := t.TempDir()
	outside := t.TempDir()
	secretFile := filepath.Join(outside, "secret.json")
	if err := os.WriteFile(secretFile, []byte(`{"format": "`+secImportSecret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secretFile, filepath.Join(allowDir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowDir, "passwd"), []byte("root:x:0:0:"+secImportSecret+":/root:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(allowDir, "pipe.json")
	haveFIFO := exec.Command("mkfifo", fifo).Run() == nil
	feed := catGenerate(t, allowDir, "feed.json", "--bulletins", "5", "--languages", "3", "--seed", "6")

	// A loopback server the attacker wants read, and the allowed feed server that redirects
	// there, fails with a secret body, or stalls.
	var secretHits atomic.Int64
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		w.Write([]byte(secImportSecret))
	}))
	t.Cleanup(secret.Close)
	release := make(chan struct{})
	stalled := make(chan struct{}, 4)
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/feeds/redirect.json":
			http.Redirect(w, r, secret.URL+"/feeds/x.json", http.StatusFound)
		case "/feeds/error.json":
			http.Error(w, secImportSecret, http.StatusInternalServerError)
		case "/feeds/stall.json":
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"format": "patchtree.catalog/v1", `))
			http.NewResponseController(w).Flush()
			stalled <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(feeds.Close)
	t.Cleanup(func() { close(release) }) // first: lets stalled handlers return before Close
	prefix := feeds.URL + "/feeds/"

	p := startSite(t, siteOpts{Name: "sec-import", Languages: []string{"*"}, Extra: []string{
		"--import-allow", allowDir + "," + prefix, "--import-stall-timeout", secImportStall.String()}})
	auditor := createToken(t, p.url, p.token, "auditor", "sec-import-auditor").Token

	if run, _ := catImport(t, p, map[string]any{"source": feed}); run.State != "succeeded" {
		t.Fatalf("import of the allowed feed: %s %q", run.State, run.Error)
	}
	before := getDigest(t, p.url, p.token)
	tables := secTablesSansAudit(t, p)
	hwm := vmHWM(t, p)
	// noEcho fails when an answer carries the planted secret or the content of a server file.
	noEcho := func(what string, raw []byte, more ...string) {
		t.Helper()
		for _, s := range append([]string{secImportSecret, "root:x", "PATH=", p.token}, more...) {
			if s != "" && strings.Contains(string(raw), s) {
				t.Errorf("%s: the answer repeats %q: %s", what, s, raw)
			}
		}
	}

	// Refused before a run exists: 403 naming the source and the failing check.
	refused := []struct{ name, src, check string }{
		{"/etc/passwd", "/etc/passwd", "is not under an allowed import location (--import-allow)"},
		{"/proc/self/environ", "/proc/self/environ", "is not under an allowed import location"},
		{"the site's own admin.token", filepath.Join(p.dataDir, "admin.token"), "is not under an allowed import location"},
		{"a symbolic link out of the allowed dir", filepath.Join(allowDir, "link.json"), "symbolic link"},
		{"a .. out of the allowed dir", allowDir + "/../" + filepath.Base(outside) + "/secret.json", "is not under an allowed import location"},
		{"a loopback URL outside the prefix", secret.URL + "/feeds/x.json", "is not under an allowed import URL prefix"},
		{"a URL that only shares a string prefix", feeds.URL + "/feeds2/x.json", "is not under an allowed import URL prefix"},
	}
	if haveFIFO {
		refused = append(refused, struct{ name, src, check string }{"a FIFO in the allowed dir", fifo, "is a FIFO"})
	} else {
		t.Log("mkfifo unavailable: the FIFO case is skipped")
	}
	for _, c := range refused {
		st, m, raw := do(t, "POST", p.url+"/v1/catalog/import", p.token, map[string]any{"source": c.src})
		checkError(t, "import "+c.name, st, m, raw, http.StatusForbidden, c.check)
		if msg, _ := m["error"].(string); !strings.Contains(msg, c.src) {
			t.Errorf("import %s: error %q does not name the source", c.name, msg)
		}
		noEcho("import "+c.name, raw)
	}
	requireDigestUnchanged(t, p, "refused imports", before)

	// Accepted, then failed without following the redirect or repeating the body.
	failed := []struct{ name, src, check string }{
		{"a redirect off the prefix", prefix + "redirect.json", "not under an allowed import URL prefix"},
		{"a 500 with a secret body", prefix + "error.json", "HTTP status 500 Internal Server Error"},
		{"a file that is not a feed", filepath.Join(allowDir, "passwd"), "not a patchtree feed or CSAF document"},
	}
	for _, c := range failed {
		run, _ := catImport(t, p, map[string]any{"source": c.src})
		if run.State != "failed" || !strings.Contains(run.Error, c.check) {
			t.Errorf("import %s: state %s error %q, want failed saying %q", c.name, run.State, run.Error, c.check)
		}
		_, _, raw := do(t, "GET", p.url+"/v1/catalog/imports/"+run.ID, p.token, nil)
		noEcho("import "+c.name+" (admin view)", raw)
		secRequireRedacted(t, p, auditor, run.ID, "failed")
	}
	if n := secretHits.Load(); n != 0 {
		t.Errorf("the loopback server the attacker targeted was fetched %d times", n)
	}
	_, _, raw := do(t, "GET", p.url+"/v1/catalog/imports", auditor, nil)
	noEcho("GET /v1/catalog/imports as auditor", raw, allowDir+"/passwd: ")
	if strings.Contains(string(raw), "HTTP status 500") || strings.Contains(string(raw), "refused") || strings.Contains(string(raw), "not a patchtree feed") {
		t.Errorf("GET /v1/catalog/imports as auditor shows error details: %s", raw)
	}
	secRequireTablesUnchanged(t, p, "failed imports", tables)

	// A stalled source times out on its own.
	start := time.Now()
	run, _ := catImport(t, p, map[string]any{"source": prefix + "stall.json"})
	if run.State != "failed" || !strings.Contains(run.Error, "--import-stall-timeout") || !strings.Contains(run.Error, prefix+"stall.json") {
		t.Errorf("stalled import: state %s error %q, want failed naming the source and --import-stall-timeout", run.State, run.Error)
	}
	t.Logf("stalled import ended after %s (--import-stall-timeout %s)", time.Since(start).Round(time.Millisecond), secImportStall)

	// A stalled source is cancelled by DELETE (admin only), after which another import runs.
	run = catStart(t, p, map[string]any{"source": prefix + "stall.json"})
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled source was never requested")
	}
	for len(stalled) > 0 {
		<-stalled
	}
	st, m, raw := do(t, "DELETE", p.url+"/v1/catalog/imports/"+run.ID, auditor, nil)
	checkError(t, "DELETE import as auditor", st, m, raw, http.StatusForbidden, "auditor")
	st, m, raw = do(t, "POST", p.url+"/v1/catalog/import", p.token, map[string]any{"source": feed})
	checkError(t, "second import while one is stalled", st, m, raw, http.StatusConflict, "already running")
	var cancelled catRun
	doJSON(t, "DELETE", p.url+"/v1/catalog/imports/"+run.ID, p.token, nil, http.StatusOK, &cancelled)
	if cancelled.State != "cancelled" {
		t.Errorf("DELETE of the stalled import: state %q, want cancelled", cancelled.State)
	}
	st, m, raw = do(t, "DELETE", p.url+"/v1/catalog/imports/"+run.ID, p.token, nil)
	checkError(t, "DELETE of a finished import", st, m, raw, http.StatusConflict, "already finished")
	st, m, raw = do(t, "DELETE", p.url+"/v1/catalog/imports/"+url.PathEscape("no-such-run"), p.token, nil)
	checkError(t, "DELETE of an unknown import", st, m, raw, http.StatusNotFound, "no-such-run")
	secRequireRedacted(t, p, auditor, run.ID, "cancelled")
	secRequireTablesUnchanged(t, p, "stalled and cancelled imports", tables)

	next := catGenerate(t, allowDir, "next.json", "--bulletins", "6", "--languages", "3", "--seed", "7")
	if run, _ := catImport(t, p, map[string]any{"source": next}); run.State != "succeeded" {
		t.Errorf("import after the cancelled one: %s %q", run.State, run.Error)
	}
	checkHWMGrowth(t, p, "import sources", hwm)
}

// secRequireRedacted checks that a non-admin sees a finished run's progress and state but not
// its error.
func secRequireRedacted(t *testing.T, p *proc, token, id, state string) {
	t.Helper()
	var r catRun
	doJSON(t, "GET", p.url+"/v1/catalog/imports/"+id, token, nil, http.StatusOK, &r)
	want := fmt.Sprintf("import %s; details for admins", state)
	if r.State != state || r.Error != want {
		t.Errorf("run %s as a non-admin: state %q error %q, want %q and %q", id, r.State, r.Error, state, want)
	}
}

// secTablesSansAudit is GET /v1/digest table by table, without the audit log and the index
// table's row for it: an accepted import request (202) is audited, whatever the run then does.
func secTablesSansAudit(t *testing.T, p *proc) map[string]string {
	t.Helper()
	var d catDigest
	doJSON(t, "GET", p.url+"/v1/digest", p.token, nil, http.StatusOK, &d)
	out := map[string]string{}
	for name, td := range d.Tables {
		if name != "audit" && name != "index" {
			out[name] = td.Digest
		}
	}
	return out
}

// secRequireTablesUnchanged fails when a table other than the audit log changed since before.
func secRequireTablesUnchanged(t *testing.T, p *proc, what string, before map[string]string) {
	t.Helper()
	after := secTablesSansAudit(t, p)
	for name, d := range after {
		if before[name] != d {
			t.Errorf("%s: table %s changed", what, name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s: %d tables in the digest, were %d", what, len(after), len(before))
	}
}
