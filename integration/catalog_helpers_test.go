package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"patchtree/integration/shareddata"
)

// Catalog integration tests: imports of the real Mozilla feed and CISA CSAF provider (from
// ../shared/data, skipped when absent) and of synthetic feeds through the HTTP API and the CLI,
// durability of an acknowledged import across SIGKILL, and whole-version reads while an import
// commits.

// ---- response shapes (prefixed cat* so they do not collide with other test files) ----

type catCounts struct {
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Removed   int `json:"removed"`
	Unchanged int `json:"unchanged"`
}

func (c catCounts) String() string {
	return fmt.Sprintf("+%d ~%d -%d =%d", c.Added, c.Changed, c.Removed, c.Unchanged)
}

// catRun is an import run as GET /v1/catalog/imports/{id} reports it.
type catRun struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	Kind       string    `json:"kind"`
	Feed       string    `json:"feed"`
	Mode       string    `json:"mode"`
	State      string    `json:"state"`
	Error      string    `json:"error"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Result     struct {
		Bulletins        catCounts `json:"bulletins"`
		Updates          catCounts `json:"updates"`
		SkippedUpdates   int       `json:"skipped_updates"`
		SkippedBulletins int       `json:"skipped_bulletins"`
		Warnings         []string  `json:"warnings"`
	} `json:"result"`
	CatalogVersion uint64 `json:"catalog_version"`
	Phase          string `json:"phase"`
	RecordsRead    int64  `json:"records_read"`
	BytesRead      int64  `json:"bytes_read"`
	BytesTotal     int64  `json:"bytes_total"`
	Batches        int    `json:"batches_staged"`
}

// catInfo is GET /v1/catalog.
type catInfo struct {
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	Bulletins int       `json:"bulletins"`
	Updates   int       `json:"updates"`
	Languages []struct {
		Language string `json:"language"`
		Updates  int    `json:"updates"`
	} `json:"languages"`
	Sources []struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		Feed      string `json:"feed"`
		LastRunID string `json:"last_run_id"`
	} `json:"sources"`
	SeverityLevels []catLevel `json:"severity_levels"`
}

type catLevel struct {
	Name string `json:"name"`
	Rank int    `json:"rank"`
}

// catSummary is a bulletin of GET /v1/catalog/bulletins.
type catSummary struct {
	ID             string   `json:"id"`
	Vendor         string   `json:"vendor"`
	Title          string   `json:"title"`
	Severity       string   `json:"severity"`
	CustomSeverity string   `json:"custom_severity"`
	Released       string   `json:"released"`
	Revised        string   `json:"revised"`
	CVEs           []string `json:"cves"`
	Updates        int      `json:"updates"`
	Disabled       bool     `json:"disabled"`
	Feed           string   `json:"feed"`
	ModifyIndex    uint64   `json:"modify_index"`
}

type catList struct {
	Version   uint64       `json:"version"`
	Total     int          `json:"total"`
	Page      int          `json:"page"`
	PerPage   int          `json:"per_page"`
	Bulletins []catSummary `json:"bulletins"`
}

// catBulletin is GET /v1/catalog/bulletins/{id}.
type catBulletin struct {
	Version  uint64 `json:"version"`
	Bulletin struct {
		ID             string   `json:"id"`
		Title          string   `json:"title"`
		Severity       string   `json:"severity"`
		Released       string   `json:"released"`
		Revised        string   `json:"revised"`
		UpdateIDs      []string `json:"update_ids"`
		Feed           string   `json:"feed"`
		Hash           string   `json:"hash"`
		CustomSeverity string   `json:"custom_severity"`
		Disabled       bool     `json:"disabled"`
		CreateIndex    uint64   `json:"create_index"`
		ModifyIndex    uint64   `json:"modify_index"`
	} `json:"bulletin"`
	Updates []struct {
		ID       string `json:"id"`
		Language string `json:"language"`
	} `json:"updates"`
}

// catDigest is GET /v1/digest with its per-table digests.
type catDigest struct {
	Index  uint64 `json:"index"`
	Digest string `json:"digest"`
	Tables map[string]struct {
		Rows   int    `json:"rows"`
		Digest string `json:"digest"`
	} `json:"tables"`
}

// catPhaseRank orders the importer's phases; a run only moves forward through them.
var catPhaseRank = map[string]int{
	"fetching": 0, "parsing": 1, "diffing": 2, "staging": 3, "committing": 4, "done": 5,
}

var catRunStates = map[string]bool{"running": true, "succeeded": true, "unchanged": true, "failed": true}

// ---- helpers ----

// catSharedData returns <module root>/../shared/data/<rel>, or skips the test when it is absent.
func catSharedData(t *testing.T, rel string) string {
	t.Helper()
	requireBinary(t)
	return shareddata.Path(t, rel)
}

// catRunCLI runs the patchtree binary in dir (relative paths resolve there).
func catRunCLI(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, dir, 2*time.Minute, env, args...)
}

// catGenerate writes a synthetic feed with `patchtree catalog generate` into dir/name.
func catGenerate(t *testing.T, dir, name string, flags ...string) string {
	t.Helper()
	r := catRunCLI(t, dir, nil, append(append([]string{"catalog", "generate"}, flags...), "-o", name)...)
	if r.code != 0 {
		t.Fatalf("catalog generate %v: %v", flags, r)
	}
	t.Logf("catalog generate %s: %s", strings.Join(flags, " "), strings.TrimSpace(r.stderr))
	return filepath.Join(dir, name)
}

// catStart starts an import and returns the run the 202 carries. A 503 (the importer's leader
// loop not running yet right after a start) is retried.
func catStart(t *testing.T, p *proc, body map[string]any) catRun {
	t.Helper()
	var run catRun
	retries := 0
	waitFor(t, 20*time.Second, func() (bool, string) {
		st, raw, err := tryDo(context.Background(), "POST", p.url+"/v1/catalog/import", p.token, body)
		switch {
		case err != nil:
			return false, fmt.Sprintf("POST /v1/catalog/import: %v", err)
		case st == 503:
			retries++
			return false, fmt.Sprintf("POST /v1/catalog/import: 503 %s", raw)
		case st != 202:
			t.Fatalf("POST /v1/catalog/import %v: status %d, want 202; body %s", body, st, raw)
		}
		if err := json.Unmarshal(raw, &run); err != nil {
			t.Fatalf("POST /v1/catalog/import: decode %s: %v", raw, err)
		}
		return true, ""
	})
	if retries > 0 {
		t.Logf("note: POST /v1/catalog/import answered 503 %d time(s) before it was accepted", retries)
	}
	if run.ID == "" || run.State != "running" {
		t.Fatalf("POST /v1/catalog/import: want a running run with an id, got %+v", run)
	}
	if _, ok := catPhaseRank[run.Phase]; !ok || run.Phase == "done" {
		t.Errorf("new run %s: phase %q, want an active phase", run.ID, run.Phase)
	}
	return run
}

// catCheckProgress checks one progress report of a run against the previous one.
func catCheckProgress(t *testing.T, prev, cur catRun) {
	t.Helper()
	if cur.ID != prev.ID {
		t.Errorf("progress of run %s reports id %q", prev.ID, cur.ID)
	}
	if !catRunStates[cur.State] {
		t.Errorf("run %s: unknown state %q", cur.ID, cur.State)
	}
	rank, ok := catPhaseRank[cur.Phase]
	if !ok {
		t.Errorf("run %s: unknown phase %q", cur.ID, cur.Phase)
	}
	if (cur.State == "running") != (cur.Phase != "done") {
		t.Errorf("run %s: state %q with phase %q (running iff not done)", cur.ID, cur.State, cur.Phase)
	}
	if prevRank := catPhaseRank[prev.Phase]; ok && rank < prevRank {
		t.Errorf("run %s: phase went back from %s to %s", cur.ID, prev.Phase, cur.Phase)
	}
	if prev.State != "running" && cur.State != prev.State {
		t.Errorf("run %s: finished state changed from %s to %s", cur.ID, prev.State, cur.State)
	}
	if cur.RecordsRead < prev.RecordsRead || cur.BytesRead < prev.BytesRead || cur.Batches < prev.Batches {
		t.Errorf("run %s: progress went back: records %d -> %d, bytes %d -> %d, batches %d -> %d", cur.ID,
			prev.RecordsRead, cur.RecordsRead, prev.BytesRead, cur.BytesRead, prev.Batches, cur.Batches)
	}
	if prev.BytesTotal > 0 && cur.BytesTotal != prev.BytesTotal {
		t.Errorf("run %s: bytes_total changed from %d to %d", cur.ID, prev.BytesTotal, cur.BytesTotal)
	}
	if cur.BytesTotal > 0 && cur.BytesRead > cur.BytesTotal {
		t.Errorf("run %s: bytes_read %d > bytes_total %d", cur.ID, cur.BytesRead, cur.BytesTotal)
	}
	if cur.RecordsRead < 0 || cur.BytesRead < 0 || cur.BytesTotal < 0 {
		t.Errorf("run %s: negative progress %+v", cur.ID, cur)
	}
}

// catWait polls a run until it is no longer running, checking every progress report. It returns
// the final report and how many reports showed each phase.
func catWait(t *testing.T, p *proc, first catRun, timeout time.Duration) (catRun, map[string]int) {
	t.Helper()
	last := first
	seen := map[string]int{}
	waitFor(t, timeout, func() (bool, string) {
		st, raw, err := tryDo(context.Background(), "GET", p.url+"/v1/catalog/imports/"+url.PathEscape(first.ID), p.token, nil)
		if err != nil {
			return false, fmt.Sprintf("GET import %s: %v", first.ID, err)
		}
		if st != 200 {
			t.Fatalf("GET /v1/catalog/imports/%s: status %d; body %s", first.ID, st, raw)
		}
		var r catRun
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("GET /v1/catalog/imports/%s: decode %s: %v", first.ID, raw, err)
		}
		catCheckProgress(t, last, r)
		last = r
		seen[r.Phase]++
		if r.State == "running" {
			return false, fmt.Sprintf("run %s still running: phase %s, %d records, %d/%d bytes, %d batches",
				r.ID, r.Phase, r.RecordsRead, r.BytesRead, r.BytesTotal, r.Batches)
		}
		return true, ""
	})
	return last, seen
}

// catImport runs one import to its end and logs its outcome and duration.
func catImport(t *testing.T, p *proc, body map[string]any) (catRun, time.Duration) {
	t.Helper()
	start := time.Now()
	run := catStart(t, p, body)
	final, seen := catWait(t, p, run, 2*time.Minute)
	d := time.Since(start)
	t.Logf("import %s (%v): %s in %v (server %v), version %d, bulletins %s, updates %s, skipped %d updates/%d bulletins, %d warnings; polled phases %v",
		final.ID, body, final.State, d.Round(time.Millisecond), final.FinishedAt.Sub(final.StartedAt).Round(time.Millisecond),
		final.CatalogVersion, final.Result.Bulletins, final.Result.Updates, final.Result.SkippedUpdates,
		final.Result.SkippedBulletins, len(final.Result.Warnings), seen)
	return final, d
}

// catRequire fails unless the run ended in state want.
func catRequire(t *testing.T, r catRun, want string) {
	t.Helper()
	if r.State != want {
		t.Fatalf("import %s: state %q, want %q; error %q", r.ID, r.State, want, r.Error)
	}
}

func catGetInfo(t *testing.T, p *proc) catInfo {
	t.Helper()
	var c catInfo
	doJSON(t, "GET", p.url+"/v1/catalog", p.token, nil, 200, &c)
	return c
}

func catGetDigest(t *testing.T, p *proc) catDigest {
	t.Helper()
	var d catDigest
	doJSON(t, "GET", p.url+"/v1/digest", p.token, nil, 200, &d)
	if d.Digest == "" || d.Tables["bulletins"].Digest == "" || d.Tables["updates"].Digest == "" {
		t.Fatalf("GET /v1/digest: want digests of the whole state and of tables bulletins and updates, got %+v", d)
	}
	return d
}

func catGetBulletin(t *testing.T, p *proc, id string) catBulletin {
	t.Helper()
	var b catBulletin
	doJSON(t, "GET", p.url+"/v1/catalog/bulletins/"+url.PathEscape(id), p.token, nil, 200, &b)
	if b.Bulletin.ID != id {
		t.Fatalf("GET bulletin %s: got bulletin %q", id, b.Bulletin.ID)
	}
	return b
}

// catListAll pages through GET /v1/catalog/bulletins and returns every bulletin by id, checking
// that all pages came from one catalog version.
func catListAll(t *testing.T, p *proc, query string) (map[string]catSummary, uint64) {
	t.Helper()
	out := map[string]catSummary{}
	var version uint64
	for page := 1; ; page++ {
		var l catList
		doJSON(t, "GET", fmt.Sprintf("%s/v1/catalog/bulletins?per_page=1000&page=%d%s", p.url, page, query), p.token, nil, 200, &l)
		if page == 1 {
			version = l.Version
		} else if l.Version != version {
			t.Fatalf("list pages from versions %d and %d (nothing was importing)", version, l.Version)
		}
		for _, b := range l.Bulletins {
			if _, dup := out[b.ID]; dup {
				t.Errorf("bulletin %s listed twice", b.ID)
			}
			out[b.ID] = b
		}
		if len(l.Bulletins) < 1000 {
			if len(out) != l.Total {
				t.Errorf("listed %d bulletins, total says %d", len(out), l.Total)
			}
			return out, version
		}
	}
}

// catSameTables reports differences of the bulletins and updates tables between two digests.
func catSameTables(t *testing.T, what string, a, b catDigest) {
	t.Helper()
	for _, table := range []string{"bulletins", "updates"} {
		if a.Tables[table] != b.Tables[table] {
			t.Errorf("%s: digest of table %s changed: %+v -> %+v", what, table, a.Tables[table], b.Tables[table])
		}
	}
}

// catSameExceptAudit reports any table that differs between two digests except the audit log
// (and the index table, which records the audit log's last write): starting an import is
// audited even when the import then fails.
func catSameExceptAudit(t *testing.T, what string, a, b catDigest) {
	t.Helper()
	for table := range a.Tables {
		if table != "audit" && table != "index" && a.Tables[table] != b.Tables[table] {
			t.Errorf("%s: digest of table %s changed: %+v -> %+v", what, table, a.Tables[table], b.Tables[table])
		}
	}
	for table := range b.Tables {
		if _, ok := a.Tables[table]; !ok && table != "audit" {
			t.Errorf("%s: table %s appeared", what, table)
		}
	}
}

// catCopyTree copies the regular files under src to dst (writable).
func catCopyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ---- tests ----
