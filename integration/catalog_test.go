package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCatalogImportMozillaEndToEnd(t *testing.T) {
	t.Parallel()
	feed := catSharedData(t, "catalogs/mozilla-2005-2019.catalog.json")
	fi, err := os.Stat(feed)
	if err != nil {
		t.Fatal(err)
	}
	const wantBulletins, wantUpdates, wantDeJa = 1118, 40693, 1073
	p := startSite(t, siteOpts{Name: "cat-moz", Languages: []string{"*"}})
	if c := catGetInfo(t, p); c.Version != 0 || c.Bulletins != 0 || c.Updates != 0 {
		t.Errorf("new parent: catalog %+v, want empty with version 0", c)
	}

	// First import: everything is added.
	first, _ := catImport(t, p, map[string]any{"source": feed})
	catRequire(t, first, "succeeded")
	if first.Kind != "native" || first.Mode != "incremental" || first.Feed == "" || first.Source != feed {
		t.Errorf("first import: kind %q mode %q feed %q source %q, want native/incremental/a feed name/%s",
			first.Kind, first.Mode, first.Feed, first.Source, feed)
	}
	if r := first.Result; r.Bulletins != (catCounts{Added: wantBulletins}) || r.Updates != (catCounts{Added: wantUpdates}) ||
		r.SkippedBulletins != 0 || r.SkippedUpdates != 0 {
		t.Errorf("first import result: bulletins %s updates %s skipped %d/%d, want +%d and +%d, nothing skipped",
			r.Bulletins, r.Updates, r.SkippedBulletins, r.SkippedUpdates, wantBulletins, wantUpdates)
	}
	if first.RecordsRead != wantBulletins+wantUpdates || first.BytesRead != fi.Size() || first.BytesTotal != fi.Size() {
		t.Errorf("first import progress: %d records, %d/%d bytes; want %d records and %d/%d bytes",
			first.RecordsRead, first.BytesRead, first.BytesTotal, wantBulletins+wantUpdates, fi.Size(), fi.Size())
	}
	info := catGetInfo(t, p)
	if info.Bulletins != wantBulletins || info.Updates != wantUpdates || info.Version == 0 || info.Version != first.CatalogVersion {
		t.Fatalf("catalog after import: version %d, %d bulletins, %d updates; want version %d (non-zero), %d, %d",
			info.Version, info.Bulletins, info.Updates, first.CatalogVersion, wantBulletins, wantUpdates)
	}
	sum := 0
	for _, l := range info.Languages {
		sum += l.Updates
	}
	if sum != wantUpdates || len(info.Languages) != 101 {
		t.Errorf("catalog languages: %d values over %d updates, want 101 values (incl. neutral) over %d", len(info.Languages), sum, wantUpdates)
	}
	if len(info.Sources) != 1 || info.Sources[0].ID != feed || info.Sources[0].LastRunID != first.ID {
		t.Errorf("catalog sources %+v, want one for %s last run %s", info.Sources, feed, first.ID)
	}
	var runs struct {
		Imports []catRun `json:"imports"`
	}
	doJSON(t, "GET", p.url+"/v1/catalog/imports", p.token, nil, 200, &runs)
	if len(runs.Imports) != 1 || runs.Imports[0].ID != first.ID || runs.Imports[0].State != "succeeded" {
		t.Errorf("GET /v1/catalog/imports: %+v, want the one succeeded run %s", runs.Imports, first.ID)
	}
	dg1 := catGetDigest(t, p)
	if dg1.Tables["bulletins"].Rows != wantBulletins || dg1.Tables["updates"].Rows != wantUpdates {
		t.Errorf("digest rows: bulletins %d updates %d", dg1.Tables["bulletins"].Rows, dg1.Tables["updates"].Rows)
	}

	// Re-import of the same feed: nothing changes.
	again, _ := catImport(t, p, map[string]any{"source": feed})
	catRequire(t, again, "unchanged")
	if r := again.Result; r.Bulletins != (catCounts{Unchanged: wantBulletins}) || r.Updates != (catCounts{Unchanged: wantUpdates}) {
		t.Errorf("re-import result: bulletins %s updates %s, want all unchanged", r.Bulletins, r.Updates)
	}
	if again.CatalogVersion != info.Version {
		t.Errorf("re-import reports catalog version %d, want unchanged %d", again.CatalogVersion, info.Version)
	}
	if c := catGetInfo(t, p); c.Version != info.Version || c.Bulletins != info.Bulletins || c.Updates != info.Updates || !c.UpdatedAt.Equal(info.UpdatedAt) {
		t.Errorf("catalog after unchanged re-import: %d/%d/%d at %v, want %d/%d/%d at %v",
			c.Version, c.Bulletins, c.Updates, c.UpdatedAt, info.Version, info.Bulletins, info.Updates, info.UpdatedAt)
	}
	catSameTables(t, "unchanged re-import", dg1, catGetDigest(t, p))

	// Narrow the site's languages; a complete import deleting what is now excluded.
	putLanguages(t, p.url, p.token, []string{"de", "ja"})
	narrow, _ := catImport(t, p, map[string]any{"source": feed, "mode": "complete", "delete_excluded": true})
	catRequire(t, narrow, "succeeded")
	// Acknowledged: kill at once, before anything else reads the state.
	p.kill9(t)
	if narrow.Mode != "complete" {
		t.Errorf("complete import reports mode %q", narrow.Mode)
	}
	if r := narrow.Result; r.Updates != (catCounts{Removed: wantUpdates - wantDeJa, Unchanged: wantDeJa}) ||
		r.Bulletins.Added != 0 || r.Bulletins.Removed != 0 || r.Bulletins.Changed+r.Bulletins.Unchanged != wantBulletins {
		t.Errorf("complete de,ja import: bulletins %s updates %s, want updates -%d =%d and every bulletin kept",
			r.Bulletins, r.Updates, wantUpdates-wantDeJa, wantDeJa)
	}
	if narrow.CatalogVersion <= info.Version {
		t.Errorf("complete import: catalog version %d, want > %d", narrow.CatalogVersion, info.Version)
	}
	restart := p.restart(t)
	t.Logf("restart after SIGKILL right after the acknowledged import: ready in %v", restart.Round(time.Millisecond))
	after := catGetInfo(t, p)
	if after.Version != narrow.CatalogVersion || after.Updates != wantDeJa || after.Bulletins != wantBulletins {
		t.Errorf("catalog after SIGKILL+restart: version %d, %d bulletins, %d updates; acknowledged version %d, %d, %d",
			after.Version, after.Bulletins, after.Updates, narrow.CatalogVersion, wantBulletins, wantDeJa)
	}
	langs := map[string]int{}
	for _, l := range after.Languages {
		langs[l.Language] = l.Updates
	}
	if len(langs) != 3 || langs["de"] == 0 || langs["ja"] == 0 || langs[""] == 0 {
		t.Errorf("catalog languages after de,ja: %v, want only neutral, de and ja", langs)
	}
	t.Logf("languages after the de,ja complete import: %v", langs)
	var l langResp
	doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &l)
	if !equalStrings(l.Ranges, []string{"de", "ja"}) {
		t.Errorf("languages after restart: %v", l.Ranges)
	}
	var rec catRun
	doJSON(t, "GET", p.url+"/v1/catalog/imports/"+narrow.ID, p.token, nil, 200, &rec)
	if rec.State != "succeeded" || rec.CatalogVersion != narrow.CatalogVersion || rec.Result.Updates != narrow.Result.Updates || rec.Phase != "done" {
		t.Errorf("recorded run after restart: state %s version %d updates %s phase %s; acknowledged %s %d %s",
			rec.State, rec.CatalogVersion, rec.Result.Updates, rec.Phase, narrow.State, narrow.CatalogVersion, narrow.Result.Updates)
	}
	// The restarted node still imports: once more, nothing changes.
	last, _ := catImport(t, p, map[string]any{"source": feed})
	catRequire(t, last, "unchanged")
	if last.CatalogVersion != narrow.CatalogVersion || last.Result.Updates != (catCounts{Unchanged: wantDeJa}) {
		t.Errorf("import after restart: version %d updates %s, want version %d and %d unchanged", last.CatalogVersion, last.Result.Updates, narrow.CatalogVersion, wantDeJa)
	}
}

// catReviseOne returns a copy of a native feed in which the k-th bulletin's revised date is 30
// days later, with the bulletin's id and both dates.
func catReviseOne(t *testing.T, data []byte, k int) (out []byte, id, oldDate, newDate string) {
	t.Helper()
	key := []byte(`"revised":"`)
	pos, off := -1, 0
	for i := 0; i <= k; i++ {
		j := bytes.Index(data[off:], key)
		if j < 0 {
			t.Fatalf("feed has fewer than %d %s fields", k+1, key)
		}
		pos, off = off+j+len(key), off+j+len(key)
	}
	oldDate = string(data[pos : pos+10])
	d, err := time.Parse(time.DateOnly, oldDate)
	if err != nil || data[pos+10] != '"' {
		t.Fatalf("revised field at byte %d is not a YYYY-MM-DD date: %q", pos, data[pos:pos+12])
	}
	newDate = d.AddDate(0, 0, 30).Format(time.DateOnly)
	start := bytes.LastIndex(data[:pos], []byte(`{"id":"`))
	if start < 0 {
		t.Fatalf("no bulletin id before byte %d", pos)
	}
	idStart := start + len(`{"id":"`)
	id = string(data[idStart : idStart+bytes.IndexByte(data[idStart:], '"')])
	out = bytes.Clone(data)
	copy(out[pos:], newDate)
	return out, id, oldDate, newDate
}

// catBulletinDiff decodes two native feeds and reports which bulletin fields differ (as
// "id.field") and whether the updates are byte-identical.
func catBulletinDiff(t *testing.T, a, b []byte) (diffs []string, sameUpdates bool) {
	t.Helper()
	type feed struct {
		Bulletins []map[string]json.RawMessage `json:"bulletins"`
		Updates   json.RawMessage              `json:"updates"`
	}
	var fa, fb feed
	if err := json.Unmarshal(a, &fa); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fb); err != nil {
		t.Fatalf("modified feed is not valid JSON: %v", err)
	}
	if len(fa.Bulletins) != len(fb.Bulletins) {
		t.Fatalf("bulletin counts differ: %d vs %d", len(fa.Bulletins), len(fb.Bulletins))
	}
	for i := range fa.Bulletins {
		keys := map[string]bool{}
		for k := range fa.Bulletins[i] {
			keys[k] = true
		}
		for k := range fb.Bulletins[i] {
			keys[k] = true
		}
		for k := range keys {
			if !bytes.Equal(fa.Bulletins[i][k], fb.Bulletins[i][k]) {
				var id string
				_ = json.Unmarshal(fa.Bulletins[i]["id"], &id)
				diffs = append(diffs, id+"."+k)
			}
		}
	}
	return diffs, bytes.Equal(fa.Updates, fb.Updates)
}

func TestCatalogRevisedDateChange(t *testing.T) {
	t.Parallel()
	orig := catSharedData(t, "catalogs/mozilla-2005-2019.catalog.json")
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	modified, id, oldDate, newDate := catReviseOne(t, data, 600)
	diffs, sameUpdates := catBulletinDiff(t, data, modified)
	t.Logf("wrote and verified the modified copy in %v", time.Since(t0).Round(time.Millisecond))
	if len(diffs) != 1 || diffs[0] != id+".revised" || !sameUpdates {
		t.Fatalf("modified feed differs in %v (updates identical: %v), want only %s.revised", diffs, sameUpdates, id)
	}
	path := filepath.Join(t.TempDir(), "mozilla-revised.catalog.json")
	if err := os.WriteFile(path, modified, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("modified copy: bulletin %s revised %s -> %s", id, oldDate, newDate)

	p := startSite(t, siteOpts{Name: "cat-revised", Languages: []string{"*"}})
	base, _ := catImport(t, p, map[string]any{"source": orig})
	catRequire(t, base, "succeeded")
	before, v0 := catListAll(t, p, "")
	if v0 != base.CatalogVersion || len(before) != 1118 {
		t.Fatalf("list after first import: version %d, %d bulletins; want version %d, 1118", v0, len(before), base.CatalogVersion)
	}
	if before[id].Revised != oldDate {
		t.Fatalf("bulletin %s revised %q before, want %q", id, before[id].Revised, oldDate)
	}
	dg0 := catGetDigest(t, p)

	rev, _ := catImport(t, p, map[string]any{"source": path})
	catRequire(t, rev, "succeeded")
	if r := rev.Result; r.Bulletins != (catCounts{Changed: 1, Unchanged: 1117}) || r.Updates != (catCounts{Unchanged: 40693}) {
		t.Errorf("import of the revised copy: bulletins %s updates %s, want exactly 1 bulletin changed and 0 updates changed", r.Bulletins, r.Updates)
	}
	if rev.CatalogVersion <= base.CatalogVersion {
		t.Errorf("catalog version %d after a change, want > %d", rev.CatalogVersion, base.CatalogVersion)
	}
	after, v1 := catListAll(t, p, "")
	if v1 != rev.CatalogVersion {
		t.Errorf("list version %d, want %d", v1, rev.CatalogVersion)
	}
	moved := 0
	for bid, b := range after {
		a, ok := before[bid]
		switch {
		case !ok:
			t.Errorf("bulletin %s appeared", bid)
		case bid == id:
			if b.Revised != newDate || b.ModifyIndex <= a.ModifyIndex || b.ModifyIndex != rev.CatalogVersion {
				t.Errorf("changed bulletin %s: revised %q modify_index %d (was %d); want %q and modify_index %d",
					bid, b.Revised, b.ModifyIndex, a.ModifyIndex, newDate, rev.CatalogVersion)
			}
		case b.ModifyIndex != a.ModifyIndex || b.Revised != a.Revised:
			moved++
			if moved <= 5 {
				t.Errorf("unchanged bulletin %s: modify_index %d -> %d, revised %q -> %q", bid, a.ModifyIndex, b.ModifyIndex, a.Revised, b.Revised)
			}
		}
	}
	if moved > 0 || len(after) != len(before) {
		t.Errorf("%d other bulletins moved; %d bulletins before, %d after", moved, len(before), len(after))
	}
	// The single-bulletin endpoint agrees, for the changed one and a sample of others.
	ids := make([]string, 0, len(before))
	for bid := range before {
		ids = append(ids, bid)
	}
	sort.Strings(ids)
	sample := []string{id, ids[0], ids[len(ids)-1], ids[len(ids)/3], ids[2*len(ids)/3]}
	for _, bid := range sample {
		b := catGetBulletin(t, p, bid)
		want := before[bid].ModifyIndex
		if bid == id {
			want = rev.CatalogVersion
		}
		if b.Bulletin.ModifyIndex != want || b.Version != rev.CatalogVersion {
			t.Errorf("GET bulletin %s: modify_index %d version %d, want %d and %d", bid, b.Bulletin.ModifyIndex, b.Version, want, rev.CatalogVersion)
		}
	}
	dg1 := catGetDigest(t, p)
	if dg1.Tables["updates"] != dg0.Tables["updates"] {
		t.Errorf("updates table changed by a bulletin-only revision: %+v -> %+v", dg0.Tables["updates"], dg1.Tables["updates"])
	}
	t.Logf("bulletin %s: modify_index %d -> %d; %d other bulletins kept their modify_index", id,
		before[id].ModifyIndex, after[id].ModifyIndex, len(after)-1-moved)
}

func TestCatalogCSAF(t *testing.T) {
	t.Parallel()
	dir := catSharedData(t, "csaf/cisa-ot-2017")
	p := startSite(t, siteOpts{Name: "cat-csaf", Languages: []string{"*"}})
	first, _ := catImport(t, p, map[string]any{"source": dir})
	catRequire(t, first, "succeeded")
	if first.Kind != "csaf" || first.Result.Bulletins != (catCounts{Added: 187}) || first.Result.Updates.Added == 0 {
		t.Errorf("CSAF import: kind %q bulletins %s updates %s, want csaf, 187 added, some updates", first.Kind, first.Result.Bulletins, first.Result.Updates)
	}
	info := catGetInfo(t, p)
	if info.Bulletins != 187 || info.Updates != first.Result.Updates.Added || info.Version != first.CatalogVersion {
		t.Errorf("catalog: version %d, %d bulletins, %d updates; want %d, 187, %d", info.Version, info.Bulletins, info.Updates, first.CatalogVersion, first.Result.Updates.Added)
	}
	langs := map[string]int{}
	for _, l := range info.Languages {
		langs[l.Language] = l.Updates
	}
	if len(langs) == 0 {
		t.Errorf("no languages in the CSAF catalog")
	}
	all, _ := catListAll(t, p, "")
	sev := map[string]int{}
	for _, b := range all {
		sev[b.Severity]++
	}
	delete(sev, "")
	if len(sev) < 2 {
		t.Errorf("severities of the CSAF bulletins: %v, want several levels", sev)
	}
	t.Logf("CSAF catalog: %d bulletins, %d updates; severity histogram %v (%d without); languages %v; %d warnings, first: %q",
		len(all), info.Updates, sev, len(all)-sumValues(sev), langs, len(first.Result.Warnings), firstOf(first.Result.Warnings))
	dg := catGetDigest(t, p)

	again, _ := catImport(t, p, map[string]any{"source": dir})
	if again.State != "unchanged" {
		t.Errorf("second CSAF import: state %q, want unchanged (error %q)", again.State, again.Error)
	}
	if r := again.Result; r.Bulletins.Added+r.Bulletins.Changed+r.Bulletins.Removed+r.Updates.Added+r.Updates.Changed+r.Updates.Removed != 0 || again.CatalogVersion != info.Version {
		t.Errorf("second CSAF import: bulletins %s updates %s version %d, want no change at version %d", r.Bulletins, r.Updates, again.CatalogVersion, info.Version)
	}
	if c := catGetInfo(t, p); c.Version != info.Version || c.Bulletins != 187 || c.Updates != info.Updates {
		t.Errorf("catalog after second import %d/%d/%d, want %d/187/%d", c.Version, c.Bulletins, c.Updates, info.Version, info.Updates)
	}
	catSameTables(t, "second CSAF import", dg, catGetDigest(t, p))

	// A copy with one flipped byte in one advisory fails verification and changes nothing.
	tampered := filepath.Join(t.TempDir(), "cisa-ot-2017")
	catCopyTree(t, dir, tampered)
	docs, err := filepath.Glob(filepath.Join(tampered, "2017", "*.json"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no advisories in the copy: %v", err)
	}
	sort.Strings(docs)
	victim := docs[len(docs)/2]
	rel := "2017/" + filepath.Base(victim)
	doc, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(doc, []byte(`"title": "`))
	if at < 0 {
		t.Fatalf("%s has no title", rel)
	}
	at += len(`"title": "`)
	if c := doc[at] | 0x20; c < 'a' || c > 'z' {
		t.Fatalf("%s: title starts with %q, not a letter", rel, doc[at])
	}
	doc[at] ^= 0x20 // flip the case of one letter: still valid JSON, wrong hash
	if !json.Valid(doc) {
		t.Fatalf("tampered %s is no longer valid JSON", rel)
	}
	if err := os.WriteFile(victim, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	q := startSite(t, siteOpts{Name: "cat-csaf-bad", Languages: []string{"*"}})
	dgBefore := catGetDigest(t, q)
	bad, _ := catImport(t, q, map[string]any{"source": tampered})
	catRequire(t, bad, "failed")
	if !strings.Contains(bad.Error, rel) || !strings.Contains(bad.Error, "sha512") {
		t.Errorf("failed import error %q does not name the document %s and sha512", bad.Error, rel)
	}
	t.Logf("tampered %s: %s", rel, bad.Error)
	catSameExceptAudit(t, "a failed import", dgBefore, catGetDigest(t, q))
	if c := catGetInfo(t, q); c.Version != 0 || c.Bulletins != 0 || c.Updates != 0 {
		t.Errorf("catalog after a failed import: %+v, want empty", c)
	}
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestCatalogImportRefusedOnChild(t *testing.T) {
	t.Parallel()
	c := startSite(t, siteOpts{Name: "cat-child", Role: "child", Languages: []string{"*"}})
	dir := t.TempDir()
	feed := catGenerate(t, dir, "feed.json", "--bulletins", "5", "--languages", "3", "--seed", "3")
	before := catGetDigest(t, c)

	st, m, raw := do(t, "POST", c.url+"/v1/catalog/import", c.token, map[string]any{"source": feed})
	checkError(t, "POST /v1/catalog/import on a child", st, m, raw, 409, "parent")
	msg, _ := m["error"].(string)

	env := []string{"PATCHTREE_SERVER=" + c.url, "PATCHTREE_TOKEN=" + c.token}
	r := catRunCLI(t, dir, env, "catalog", "import", feed)
	line := oneLine(t, "catalog import on a child", r.stderr)
	if r.code != 1 || msg == "" || !strings.Contains(line, msg) || !strings.Contains(line, "409") {
		t.Errorf("catalog import on a child: want exit 1 and one stderr line with the server error %q (HTTP 409); got %v", msg, r)
	}
	var runs struct {
		Imports []catRun `json:"imports"`
	}
	doJSON(t, "GET", c.url+"/v1/catalog/imports", c.token, nil, 200, &runs)
	if len(runs.Imports) != 0 {
		t.Errorf("child lists import runs after refusing: %+v", runs.Imports)
	}
	if after := catGetDigest(t, c); after.Digest != before.Digest {
		t.Errorf("refused imports changed the child's state: %s@%d -> %s@%d", before.Digest, before.Index, after.Digest, after.Index)
	}
}

func TestCatalogCLI(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "cat-cli", Languages: []string{"*"}})
	dir := t.TempDir()
	env := []string{"PATCHTREE_SERVER=" + p.url, "PATCHTREE_TOKEN=" + p.token}
	cli := func(args ...string) cliResult {
		t.Helper()
		return catRunCLI(t, dir, env, args...)
	}
	mustCLI := func(args ...string) cliResult {
		t.Helper()
		r := cli(args...)
		if r.code != 0 {
			t.Fatalf("patchtree %s: %v", strings.Join(args, " "), r)
		}
		return r
	}

	// generate: deterministic, compressed by the suffix.
	gen := []string{"--bulletins", "50", "--languages", "5", "--seed", "7"}
	catGenerate(t, dir, "feed.json.zst", gen...)
	a, err := os.ReadFile(filepath.Join(dir, "feed.json.zst"))
	if err != nil {
		t.Fatal(err)
	}
	catGenerate(t, dir, "again.json.zst", gen...)
	b, err := os.ReadFile(filepath.Join(dir, "again.json.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || len(a) == 0 {
		t.Errorf("two runs of catalog generate %v: %d and %d bytes, not identical", gen, len(a), len(b))
	}
	if !bytes.HasPrefix(a, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Errorf("feed.json.zst does not start with the zstd magic: % x", a[:min(4, len(a))])
	}

	// import with a relative path.
	r := mustCLI("catalog", "import", "feed.json.zst")
	info := catGetInfo(t, p)
	bm := regexp.MustCompile(`bulletins\s+added (\d+),`).FindStringSubmatch(r.stdout)
	um := regexp.MustCompile(`updates\s+added (\d+),`).FindStringSubmatch(r.stdout)
	if bm == nil || bm[1] != "50" || um == nil || um[1] != fmt.Sprint(info.Updates) || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("catalog import output: want succeeded, bulletins added 50 and updates added %d; got %v", info.Updates, r)
	}
	abs := filepath.Join(dir, "feed.json.zst")
	if info.Bulletins != 50 || len(info.Sources) != 1 || info.Sources[0].ID != abs {
		t.Errorf("catalog after CLI import: %d bulletins, sources %+v; want 50 and the absolute source %s", info.Bulletins, info.Sources, abs)
	}
	t.Logf("catalog import feed.json.zst: %d bulletins, %d updates, version %d", info.Bulletins, info.Updates, info.Version)

	// show: the list, one bulletin.
	all, _ := catListAll(t, p, "")
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	id := ids[len(ids)/2]
	r = mustCLI("catalog", "show")
	if !strings.Contains(r.stdout, "50 bulletins") || !strings.Contains(r.stdout, ids[0]) || !strings.Contains(r.stdout, id) {
		t.Errorf("catalog show: want the counts and bulletins %s, %s; got %v", ids[0], id, r)
	}
	r = mustCLI("catalog", "show", id)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, all[id].Title) || strings.Contains(r.stdout, ids[0]+" ") {
		t.Errorf("catalog show %s: want that bulletin alone with its title %q; got %v", id, all[id].Title, r)
	}
	show := func() catBulletin {
		t.Helper()
		r := mustCLI("catalog", "show", id, "--output", "json")
		var b catBulletin
		if err := json.Unmarshal([]byte(r.stdout), &b); err != nil || b.Bulletin.ID != id {
			t.Fatalf("catalog show %s --output json: %v; %v", id, err, r)
		}
		return b
	}
	if b := show(); b.Bulletin.CustomSeverity != "" || b.Bulletin.Disabled || len(b.Updates) != all[id].Updates {
		t.Errorf("bulletin %s before administration: %+v", id, b.Bulletin)
	}
	r = cli("catalog", "show", "NO-SUCH-BULLETIN")
	if line := oneLine(t, "show unknown bulletin", r.stderr); r.code != 1 || !strings.Contains(line, "404") {
		t.Errorf("catalog show NO-SUCH-BULLETIN: want exit 1 and one line with 404; got %v", r)
	}

	// Custom severities.
	mustCLI("catalog", "severity", "add", "urgent")
	mustCLI("catalog", "severity", "add", "routine")
	levels := func() []string {
		t.Helper()
		var resp struct {
			Levels []catLevel `json:"levels"`
		}
		doJSON(t, "GET", p.url+"/v1/catalog/severities", p.token, nil, 200, &resp)
		var names []string
		for i, l := range resp.Levels {
			if l.Rank != i {
				t.Errorf("severity level %s has rank %d at position %d", l.Name, l.Rank, i)
			}
			names = append(names, l.Name)
		}
		return names
	}
	if got := levels(); !equalStrings(got, []string{"urgent", "routine"}) {
		t.Errorf("levels after two adds: %v", got)
	}
	mustCLI("catalog", "severity", "order", "routine", "urgent")
	if got := levels(); !equalStrings(got, []string{"routine", "urgent"}) {
		t.Errorf("levels after order: %v", got)
	}
	if r := mustCLI("catalog", "severity", "list"); !regexp.MustCompile(`(?s)0\s+routine.*1\s+urgent`).MatchString(r.stdout) {
		t.Errorf("catalog severity list: want routine then urgent; got %v", r)
	}
	mustCLI("catalog", "severity", "set", id, "urgent")
	if b := show(); b.Bulletin.CustomSeverity != "urgent" {
		t.Errorf("custom_severity after set: %q, want urgent", b.Bulletin.CustomSeverity)
	}
	if r := mustCLI("catalog", "show", "--severity", "urgent"); !strings.Contains(r.stdout, "1 match") || !strings.Contains(r.stdout, "[urgent]") {
		t.Errorf("catalog show --severity urgent: want the one bulletin marked [urgent]; got %v", r)
	}
	r = cli("catalog", "severity", "set", id, "no-such-level")
	if line := oneLine(t, "set undefined level", r.stderr); r.code != 1 || !strings.Contains(line, "no-such-level") {
		t.Errorf("severity set to an undefined level: want exit 1 naming it; got %v", r)
	}
	mustCLI("catalog", "severity", "delete", "urgent")
	if b := show(); b.Bulletin.CustomSeverity != "" {
		t.Errorf("custom_severity after deleting its level: %q, want cleared", b.Bulletin.CustomSeverity)
	}
	if got := levels(); !equalStrings(got, []string{"routine"}) {
		t.Errorf("levels after delete: %v", got)
	}

	// Disable and enable.
	if r := mustCLI("catalog", "disable", id); !strings.Contains(r.stdout, id) {
		t.Errorf("catalog disable: %v", r)
	}
	if b := show(); !b.Bulletin.Disabled {
		t.Errorf("bulletin %s not disabled after catalog disable", id)
	}
	if r := mustCLI("catalog", "show", "--q", id); !strings.Contains(r.stdout, "(disabled)") {
		t.Errorf("catalog show --q %s: want the bulletin marked (disabled); got %v", id, r)
	}
	mustCLI("catalog", "enable", id)
	if b := show(); b.Bulletin.Disabled {
		t.Errorf("bulletin %s still disabled after catalog enable", id)
	}
	if c := catGetInfo(t, p); c.Bulletins != 50 || c.Updates != info.Updates {
		t.Errorf("administration changed the counts: %d/%d", c.Bulletins, c.Updates)
	}

	// A failing import: exit 1, the error on one stderr line.
	r = cli("catalog", "import", filepath.Join(dir, "nonexistent.json")) // inside --import-allow: the run says it is absent
	var errLines, other []string
	for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
		if strings.Contains(l, "/nonexistent.json") {
			errLines = append(errLines, l)
		} else if l != "" {
			other = append(other, l)
		}
	}
	if r.code != 1 || len(errLines) != 1 || !strings.HasPrefix(errLines[0], "patchtree: ") || !strings.Contains(errLines[0], "no such file") {
		t.Errorf("catalog import /nonexistent.json: want exit 1 and the error on one stderr line; got %v", r)
	}
	progress := regexp.MustCompile(`^import \S+: [a-z]+ \(`)
	for _, l := range other {
		if !progress.MatchString(l) {
			t.Errorf("catalog import /nonexistent.json: unexpected stderr line %q", l)
		}
	}
	if len(other) > 0 {
		t.Logf("note: besides the error line, stderr carried %d progress line(s): %q", len(other), other)
	}
}

// catObs is one read of the catalog taken while an import runs.
type catObs struct {
	list       bool // GET /v1/catalog/bulletins?per_page=1 (else GET /v1/catalog)
	version    uint64
	bulletins  int // catalog count, or the list's total
	updates    int // catalog only
	start, end time.Time
}

// catPoll is one progress report of the run, with when it was asked for and answered.
type catPoll struct {
	sent, got time.Time
	state     string
	phase     string
}

func TestCatalogReadsSeeWholeVersions(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "cat-versions", Languages: []string{"*"}})
	dir := t.TempDir()
	feedA := catGenerate(t, dir, "a.json", "--updates", "50000", "--languages", "30", "--seed", "1")
	feedB := catGenerate(t, dir, "b.json", "--updates", "36000", "--languages", "40", "--seed", "2")

	runA, dA := catImport(t, p, map[string]any{"source": feedA})
	catRequire(t, runA, "succeeded")
	before := catGetInfo(t, p)
	if before.Version != runA.CatalogVersion {
		t.Fatalf("catalog version %d after import A, run says %d", before.Version, runA.CatalogVersion)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		obs     []catObs
		errs    []string
		wg      sync.WaitGroup
		perKind [2]int
	)
	observe := func(list bool) {
		defer wg.Done()
		path := "/v1/catalog"
		if list {
			path = "/v1/catalog/bulletins?per_page=1"
		}
		for ctx.Err() == nil {
			start := time.Now()
			st, raw, err := tryDo(context.Background(), "GET", p.url+path, p.token, nil)
			o := catObs{list: list, start: start, end: time.Now()}
			if err == nil && st == 200 {
				if list {
					var l catList
					err = json.Unmarshal(raw, &l)
					o.version, o.bulletins = l.Version, l.Total
					if err == nil && (l.PerPage != 1 || len(l.Bulletins) != min(1, l.Total)) {
						err = fmt.Errorf("per_page=1 answered per_page %d with %d bulletins", l.PerPage, len(l.Bulletins))
					}
				} else {
					var c catInfo
					err = json.Unmarshal(raw, &c)
					o.version, o.bulletins, o.updates = c.Version, c.Bulletins, c.Updates
				}
			} else if err == nil {
				err = fmt.Errorf("status %d: %s", st, raw)
			}
			mu.Lock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("GET %s: %v", path, err))
			} else {
				obs = append(obs, o)
				if list {
					perKind[1]++
				} else {
					perKind[0]++
				}
			}
			mu.Unlock()
		}
	}
	wg.Add(2)
	go observe(false)
	go observe(true)
	stopObservers := func() {
		cancel()
		wg.Wait()
	}
	defer stopObservers()

	// Import B while the observers read; poll its progress with timestamps.
	startB := time.Now()
	run := catStart(t, p, map[string]any{"source": feedB})
	runningSince := time.Now() // the 202 said running
	var polls []catPoll
	last := run
	waitFor(t, 2*time.Minute, func() (bool, string) {
		sent := time.Now()
		st, raw, err := tryDo(context.Background(), "GET", p.url+"/v1/catalog/imports/"+run.ID, p.token, nil)
		if err != nil || st != 200 {
			return false, fmt.Sprintf("GET import %s: %d %v %s", run.ID, st, err, raw)
		}
		var r catRun
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		catCheckProgress(t, last, r)
		last = r
		polls = append(polls, catPoll{sent: sent, got: time.Now(), state: r.State, phase: r.Phase})
		return r.State != "running", "import B still running in phase " + r.Phase
	})
	dB := time.Since(startB)
	final := last
	catRequire(t, final, "succeeded")
	after := catGetInfo(t, p)
	if after.Version != final.CatalogVersion {
		t.Errorf("catalog version %d after import B, run says %d", after.Version, final.CatalogVersion)
	}
	// Let each observer see the new version at least once before stopping them.
	waitFor(t, 30*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		var sawList, sawInfo bool
		for _, o := range obs {
			if o.start.After(polls[len(polls)-1].got) {
				sawList, sawInfo = sawList || o.list, sawInfo || !o.list
			}
		}
		return sawList && sawInfo, "observers have not read since the import finished"
	})
	stopObservers()

	t.Logf("import A: %v; import B: %v (server %v), %d batches; B changed bulletins %s, updates %s",
		dA.Round(time.Millisecond), dB.Round(time.Millisecond), final.FinishedAt.Sub(final.StartedAt).Round(time.Millisecond),
		final.Batches, final.Result.Bulletins, final.Result.Updates)
	t.Logf("before: version %d, %d bulletins, %d updates; after: version %d, %d bulletins, %d updates",
		before.Version, before.Bulletins, before.Updates, after.Version, after.Bulletins, after.Updates)
	if before.Version == after.Version || before.Bulletins == after.Bulletins || before.Updates == after.Updates {
		t.Fatalf("import B must change the version and both counts for this test to mean anything")
	}
	rb, ru := final.Result.Bulletins, final.Result.Updates
	if rb.Added+rb.Changed+rb.Removed < before.Bulletins/2 || ru.Added+ru.Changed+ru.Removed < before.Updates/2 {
		t.Errorf("import B changed too little to exercise the switch: bulletins %s updates %s", rb, ru)
	}
	for _, e := range errs {
		t.Errorf("observer: %s", e)
	}

	// Every observation is the whole before or the whole after version.
	type pair struct {
		version            uint64
		bulletins, updates int
	}
	valid := map[uint64]pair{
		before.Version: {before.Version, before.Bulletins, before.Updates},
		after.Version:  {after.Version, after.Bulletins, after.Updates},
	}
	var lastVersion [2]uint64
	var sawBefore, sawAfter, bad, during, inside int
	for _, o := range obs {
		want, ok := valid[o.version]
		kind := 0
		if o.list {
			kind = 1
		}
		switch {
		case !ok:
			bad++
			t.Errorf("observation at +%v of version %d (list %v, %d bulletins, %d updates): neither before (%d) nor after (%d)",
				o.start.Sub(startB), o.version, o.list, o.bulletins, o.updates, before.Version, after.Version)
		case o.bulletins != want.bulletins || (!o.list && o.updates != want.updates):
			bad++
			t.Errorf("observation at +%v (list %v): version %d with %d bulletins / %d updates; that version has %d / %d",
				o.start.Sub(startB), o.list, o.version, o.bulletins, o.updates, want.bulletins, want.updates)
		case o.version == before.Version:
			sawBefore++
		default:
			sawAfter++
		}
		if o.version < lastVersion[kind] {
			t.Errorf("observer (list %v) went back from version %d to %d", o.list, lastVersion[kind], o.version)
		}
		lastVersion[kind] = max(lastVersion[kind], o.version)
		// During the import: started after the 202, and a report asked for after the read ended
		// still showed the run running. Strictly inside staging/committing: moreover a report
		// answered before the read started showed staging or committing (phases only advance).
		var atStart bool
		for _, pl := range polls {
			if !pl.got.After(o.start) && (pl.phase == "staging" || pl.phase == "committing") {
				atStart = true
			}
			if !pl.sent.Before(o.end) {
				if pl.state == "running" && o.start.After(runningSince) {
					during++
					if atStart {
						inside++
					}
				}
				break
			}
		}
	}
	phases := map[string]int{}
	for _, pl := range polls {
		phases[pl.phase]++
	}
	t.Logf("%d observations (%d GET /v1/catalog, %d GET /v1/catalog/bulletins?per_page=1): %d of the before version, %d of the after version, %d inconsistent; %d during import B, %d strictly inside its staging/committing; %d progress polls by phase %v",
		len(obs), perKind[0], perKind[1], sawBefore, sawAfter, bad, during, inside, len(polls), phases)
	if sawBefore == 0 || sawAfter == 0 {
		t.Errorf("observers saw %d reads of the before and %d of the after version; want both", sawBefore, sawAfter)
	}
	if inside < 3 {
		t.Errorf("only %d observations were taken strictly while import B was staging or committing; want at least 3", inside)
	}
}
