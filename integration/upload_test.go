package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCatalogImportUpload: `catalog import --upload FILE` streams a feed from the
// administrator's machine to the leader, which imports it although the file is neither on its
// disk nor in --import-allow (a plain import of the same path is refused). The upload is
// audited with its name, removed from the server once imported, and a second upload of the same
// bytes is unchanged. Too large a body gets 413 and changes nothing; a bad name gets 400; an
// auditor gets 403.
func TestCatalogImportUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := catGenerate(t, dir, "feed.json", "--bulletins", "40", "--languages", "4")
	big := catGenerate(t, dir, "big.json", "--bulletins", "400", "--languages", "4")
	si, _ := os.Stat(small)
	bi, _ := os.Stat(big)
	limit := (si.Size() + bi.Size()) / 2
	allowed := t.TempDir() // the only directory a plain import may read: not dir
	p := startSite(t, siteOpts{Name: "hq", Languages: []string{"*"}, Extra: []string{"--import-allow", allowed,
		"--catalog-max-bytes", strconv.FormatInt(limit, 10)}})
	env := []string{"PATCHTREE_SERVER=" + p.url, "PATCHTREE_TOKEN=" + p.token}

	st, m, raw := do(t, "POST", p.url+"/v1/catalog/import", p.token, map[string]any{"source": small})
	checkError(t, "plain import of a path outside --import-allow", st, m, raw, http.StatusForbidden, "")

	r := runCLIIn(t, dir, 2*time.Minute, env, "catalog", "import", "--upload", "feed.json")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("catalog import --upload: %v", r)
	}
	info := catGetInfo(t, p)
	if info.Version == 0 || info.Bulletins != 40 {
		t.Fatalf("after the upload the catalog is version %d with %d bulletins, want 40 bulletins", info.Version, info.Bulletins)
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		left, _ := filepath.Glob(filepath.Join(p.dataDir, "uploads", "*"))
		return len(left) == 0, "uploaded files left on the server: " + strings.Join(left, ", ")
	})

	r = runCLIIn(t, dir, 2*time.Minute, env, "catalog", "import", "--upload", "feed.json")
	if r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("second upload of the same bytes: want unchanged: %v", r)
	}

	before := catGetDigest(t, p)
	r = runCLIIn(t, dir, 2*time.Minute, env, "catalog", "import", "--upload", "big.json")
	if r.code == 0 || !strings.Contains(r.stderr, "too large") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("upload over --catalog-max-bytes: want one line saying too large: %v", r)
	}
	if after := catGetDigest(t, p); after.Tables["bulletins"] != before.Tables["bulletins"] || after.Tables["updates"] != before.Tables["updates"] {
		t.Fatal("a refused upload changed the catalog")
	}

	feed, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	// The refusals come before the body is read: a short one, so the client is not still
	// writing when the server answers and closes (the CLI waits with Expect: 100-continue).
	body := feed[:1024]
	for _, tc := range []struct {
		name, query, token string
		want               int
		substr             string
	}{
		{"path in the name", "name=..%2Fetc%2Fpasswd", p.token, http.StatusBadRequest, "upload name"},
		{"no name", "", p.token, http.StatusBadRequest, "upload name"},
		{"unknown option", "name=f.json&source=%2Fetc%2Fpasswd", p.token, http.StatusBadRequest, "unknown query parameter"},
		{"csaf kind", "name=f.json&kind=csaf", p.token, http.StatusBadRequest, "native feed"},
		{"auditor", "name=f.json", createToken(t, p.url, p.token, "auditor", "upload-auditor").Token, http.StatusForbidden, "auditor"},
	} {
		st, m, raw := do(t, "POST", p.url+"/v1/catalog/import/upload?"+tc.query, tc.token, body)
		checkError(t, tc.name, st, m, raw, tc.want, tc.substr)
	}

	var audit struct {
		Entries []struct {
			Action, Target string
			Detail         map[string]any
		}
	}
	doJSON(t, "GET", p.url+"/v1/audit?action=catalog.import", p.token, nil, 200, &audit)
	uploads := 0
	for _, e := range audit.Entries {
		if e.Detail["source"] == "upload feed.json" && strings.HasPrefix(e.Target, "import ") {
			uploads++
		}
	}
	if uploads != 2 {
		t.Fatalf("audit log has %d uploads of feed.json naming their run, want 2: %+v", uploads, audit.Entries)
	}
}
