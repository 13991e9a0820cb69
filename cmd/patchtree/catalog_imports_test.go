package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// importsServer answers the import routes: the newer import is running for polls polls of it,
// then ends in finalState; the older one succeeded.
func importsServer(t *testing.T, polls int32, finalState string) string {
	t.Helper()
	var seen atomic.Int32
	run := func(id, state, phase, errMsg string) string {
		return fmt.Sprintf(`{"id":%q,"source":"https://vendor.example/feeds/a-very-long-path/for-the-catalog/feed-2026-12-02.json.zst",`+
			`"kind":"native","mode":"incremental","state":%q,"phase":%q,"error":%q,"started_at":"2026-12-02T21:00:00Z",`+
			`"catalog_version":123456,"result":{"bulletins":{"added":1118,"changed":12,"removed":3},"updates":{"added":40693,"changed":1234,"removed":56}}}`,
			id, state, phase, errMsg)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/catalog/imports":
			fmt.Fprintf(w, `{"imports":[%s,%s]}`, run("20261202T212231-c2a59b", "running", "parsing", ""), run("20261201T080000-0a1b2c", "succeeded", "done", ""))
		case "/v1/catalog/imports/20261202T212231-c2a59b":
			if seen.Add(1) <= polls {
				w.Write([]byte(run("20261202T212231-c2a59b", "running", "parsing", "")))
				return
			}
			errMsg := ""
			if finalState == "failed" {
				errMsg = "feed ended early"
			}
			w.Write([]byte(run("20261202T212231-c2a59b", finalState, "done", errMsg)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCatalogImportsList(t *testing.T) {
	server := importsServer(t, 0, "succeeded")
	code, out := runCaptured(t, "catalog", "imports", "--server", server)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.stderr)
	}
	checkWidth(t, "catalog imports", out.stdout)
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "20261202T212231-c2a59b") || !strings.Contains(lines[1], "running") ||
		!strings.Contains(lines[2], "1118/12/3") || !strings.Contains(lines[2], "40693/1234/56") {
		t.Errorf("catalog imports:\n%s", out.stdout)
	}
	code, out = runCaptured(t, "catalog", "imports", "--server", server, "--wide")
	if code != 0 || !strings.Contains(out.stdout, "feed-2026-12-02.json.zst") || !strings.Contains(out.stdout, "running (parsing)") {
		t.Errorf("catalog imports --wide: exit %d, want the whole source:\n%s", code, out.stdout)
	}
}

func TestCatalogImportsFollow(t *testing.T) {
	code, out := runCaptured(t, "catalog", "imports", "--follow", "--server", importsServer(t, 2, "succeeded"))
	if code != 0 || !strings.Contains(out.stdout, "import 20261202T212231-c2a59b: succeeded") || !strings.Contains(out.stderr, "import 20261202T212231-c2a59b: parsing") {
		t.Errorf("--follow of the running import: exit %d\nstdout %s\nstderr %s", code, out.stdout, out.stderr)
	}
	code, out = runCaptured(t, "catalog", "imports", "20261202T212231-c2a59b", "--follow", "--server", importsServer(t, 1, "failed"))
	if code != 1 || !strings.Contains(out.stderr, "import 20261202T212231-c2a59b failed: feed ended early") {
		t.Errorf("--follow of a failing import: exit %d, want 1 and the error\nstdout %s\nstderr %s", code, out.stdout, out.stderr)
	}
	code, out = runCaptured(t, "catalog", "imports", "20261202T212231-c2a59b", "--server", importsServer(t, 5, "succeeded"))
	if code != 0 || !strings.Contains(out.stdout, "import 20261202T212231-c2a59b: running, parsing") {
		t.Errorf("one running import without --follow: exit %d\nstdout %s\nstderr %s", code, out.stdout, out.stderr)
	}
}
