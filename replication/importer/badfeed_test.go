package importer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"patchtree/store"
)

// testFeed is a native feed as the tests build it.
type testFeed struct {
	Format      string                  `json:"format,omitempty"`
	Feed        string                  `json:"feed,omitempty"`
	GeneratedAt string                  `json:"generated_at,omitempty"`
	Bulletins   []store.BulletinContent `json:"bulletins"`
	Updates     []store.UpdateContent   `json:"updates"`
}

// smallFeed returns a valid feed of 3 bulletins and 6 updates in de, fr and neutral.
func smallFeed() *testFeed {
	f := &testFeed{Format: FormatNative, Feed: "test-feed", GeneratedAt: "2026-11-21T00:00:00Z"}
	for i := 1; i <= 3; i++ {
		b := store.BulletinContent{
			ID: fmt.Sprintf("TB-2024-%02d", i), Vendor: "Testsoft", Title: fmt.Sprintf("Security fixes in Testapp %d", i),
			Severity: "High", Released: fmt.Sprintf("2024-0%d-15", i), Revised: fmt.Sprintf("2024-0%d-16", i),
			Description: "Fixes things.", CVEs: []string{fmt.Sprintf("CVE-2024-%04d", 1000+i)},
		}
		for j, lang := range []string{"de", "fr"} {
			if i == 3 && j == 1 {
				lang = "" // one language-neutral update
			}
			id := fmt.Sprintf("testapp-%d.0-%d", i, j)
			b.UpdateIDs = append(b.UpdateIDs, id)
			f.Updates = append(f.Updates, store.UpdateContent{
				ID: id, Title: fmt.Sprintf("Testapp %d.0 (%s)", i, lang), Language: lang,
				FileName: fmt.Sprintf("testapp-%d.0-%d.exe", i, j), URL: "https://example.invalid/" + id,
				Size: int64(1000 * i), SHA256: strings.Repeat("ab", 32), CommandLine: "/S", RestartRequired: j == 0,
			})
		}
		f.Bulletins = append(f.Bulletins, b)
	}
	return f
}

// bytes encodes the feed.
func (f *testFeed) bytes(t testing.TB) []byte {
	t.Helper()
	buf, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// mutatedFeed encodes the small feed after mut has edited its generic JSON form, for shapes the
// typed form cannot express (wrong JSON types).
func mutatedFeed(t testing.TB, mut func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(smallFeed().bytes(t), &doc); err != nil {
		t.Fatal(err)
	}
	mut(doc)
	buf, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// feedRecord returns the i-th element of the array under key of a generic feed.
func feedRecord(doc map[string]any, key string, i int) map[string]any {
	return doc[key].([]any)[i].(map[string]any)
}

// writeFeedFile writes buf to a file in dir and returns its path.
func writeFeedFile(t testing.TB, dir, name string, buf []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipFeed(t testing.TB, buf []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(buf); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gzipBomb returns a gzip stream of a feed that starts well and then has an unknown field whose
// value, an array of strings each under MaxFeedTokenBytes, is plain bytes long, so that only the
// size cap can stop it. (Zeros would be refused by the JSON scanner at once, and a run of
// whitespace between tokens is scanned in quadratic time by encoding/json's Decoder, so the
// padding is strings.)
func gzipBomb(t testing.TB, plain int) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) {
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte(`{"format": "patchtree.catalog/v1", "feed": "bomb", "padding": ["`))
	chunk := append(bytes.Repeat([]byte{'a'}, 1<<19), `", "`...)
	for n := 0; n < plain; n += len(chunk) {
		write(chunk)
	}
	write([]byte(`"], "bulletins": [], "updates": []}`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// zstdHugeWindow returns a zstd frame whose header declares a 1 GiB window (RFC 8878
// §3.1.1.1.2), followed by a raw block of feed text.
func zstdHugeWindow() []byte {
	const (
		fhd = 0x00 // no content size, no Single_Segment, no checksum, no dictionary
		// Window_Descriptor: Exponent 20, Mantissa 0: window = 1 << (10+20) = 1 GiB.
		wd = 20 << 3
	)
	body := []byte(`{"format": "patchtree.catalog/v1"`)
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, fhd, wd}
	// Block_Header: Last_Block=1, Block_Type=0 (raw), Block_Size=len(body); 3 bytes little-endian.
	h := 1 | 0<<1 | uint32(len(body))<<3
	frame = append(frame, byte(h), byte(h>>8), byte(h>>16))
	return append(frame, body...)
}

// serveFeed starts an HTTP server on 127.0.0.1 for the test and returns the URL of /feed.json.
func serveFeed(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/feed.json"
}

func TestBadFeedsLeaveStateUnchanged(t *testing.T) {
	good := smallFeed().bytes(t)
	half := good[:len(good)/2]

	type badCase struct {
		name string
		// Exactly one of file (the feed file's new content) and url (a source to import) is set.
		file []byte
		url  func(t *testing.T) string
		cfg  Config
		want []string // substrings of the run's error
		// notWant are substrings the error must not carry: the source's content.
		notWant []string
		// maxAlloc bounds the bytes allocated by the failing import (0: unchecked).
		maxAlloc uint64
	}
	feedWith := func(edit func(f *testFeed)) []byte {
		f := smallFeed()
		edit(f)
		return f.bytes(t)
	}
	cases := []badCase{
		{name: "truncated", file: half, want: []string{"bad feed", "truncated at byte"}},
		{name: "empty file", file: []byte{}, want: []string{"is empty", "not a patchtree feed or CSAF document"}},
		{name: "wrong format", file: feedWith(func(f *testFeed) { f.Format = "patchtree.catalog/v2" }),
			want: []string{`"format" is not "` + FormatNative + `"`}, notWant: []string{"v2"}},
		{name: "missing format", file: feedWith(func(f *testFeed) { f.Format = "" }),
			want: []string{`feed has no "format"`}},
		{name: "missing feed name", file: feedWith(func(f *testFeed) { f.Feed = "" }),
			want: []string{`feed has no "feed" name`}},
		{name: "dangling update_ids", file: feedWith(func(f *testFeed) {
			f.Bulletins[1].UpdateIDs = append(f.Bulletins[1].UpdateIDs, "testapp-9.9-gone")
		}), want: []string{"bulletins[1]", "does not contain"}, notWant: []string{"TB-2024-02", "testapp-9.9-gone"}},
		{name: "duplicate bulletin id", file: feedWith(func(f *testFeed) { f.Bulletins[2].ID = f.Bulletins[0].ID }),
			want: []string{`bulletins[2]: its id appears twice`}, notWant: []string{"TB-2024-01"}},
		{name: "duplicate update id", file: feedWith(func(f *testFeed) {
			f.Updates[3].ID = f.Updates[1].ID
			f.Bulletins[1].UpdateIDs[1] = f.Updates[1].ID
		}), want: []string{`id appears twice`}, notWant: []string{"testapp-1.0-1"}},
		{name: "bulletin without id", file: feedWith(func(f *testFeed) { f.Bulletins[1].ID = "" }),
			want: []string{"bulletins[1] has no id"}},
		{name: "bad date", file: feedWith(func(f *testFeed) { f.Bulletins[1].Released = "2024-13-45" }),
			want: []string{"bulletins[1].released", "not a date"}, notWant: []string{"2024-13-45", "TB-2024-02"}},
		{name: "date before year 1 in UTC", file: feedWith(func(f *testFeed) { f.Bulletins[1].Revised = "0000-01-01T00:00:00+01:00" }),
			want: []string{"bulletins[1].revised"}, notWant: []string{"0000-01-01"}},
		{name: "feed name is a number", file: mutatedFeed(t, func(d map[string]any) { d["feed"] = 1 }),
			want: []string{"feed", "number"}},
		{name: "cves is a string", file: mutatedFeed(t, func(d map[string]any) { feedRecord(d, "bulletins", 0)["cves"] = "CVE-1" }),
			want: []string{"bulletins[0]", `field "cves" at byte`, "want an array, not string"}, notWant: []string{"CVE-1"}},
		{name: "size is a string", file: mutatedFeed(t, func(d map[string]any) { feedRecord(d, "updates", 2)["size"] = "big" }),
			want: []string{"updates[2]", `field "size" at byte`, "want an integer, not string"}, notWant: []string{"big"}},
		{name: "restart_required is a string", file: mutatedFeed(t, func(d map[string]any) { feedRecord(d, "updates", 4)["restart_required"] = "yes" }),
			want: []string{"updates[4]", `field "restart_required" at byte`, "want a boolean"}, notWant: []string{"yes"}},
		{name: "bulletins not an array", file: mutatedFeed(t, func(d map[string]any) { d["bulletins"] = map[string]any{"id": "TB-1"} }),
			want: []string{`"bulletins" must be an array`}},
		{name: "bulletin not an object", file: mutatedFeed(t, func(d map[string]any) { d["bulletins"].([]any)[1] = "TB-2024-02" }),
			want: []string{"bulletins[1] must be a JSON object"}},
		{name: "not JSON", file: []byte("<html><body>502 Bad Gateway</body></html>\n"),
			want: []string{"not a patchtree feed or CSAF document"}, notWant: []string{"<", "html", "502"}},
		{name: "trailing garbage", file: append(append([]byte{}, good...), "\n}garbage"...),
			want: []string{"data after the feed object at byte " + strconv.Itoa(len(good)+1)}},
		{name: "gzip bomb", file: gzipBomb(t, 64<<20), cfg: Config{MaxFeedBytes: 8 << 20},
			want: []string{"exceeds the size limit", "8388608 bytes"}, maxAlloc: 64 << 20},
		{name: "zstd huge window", file: zstdHugeWindow(),
			want: []string{"window size exceeded"}, maxAlloc: 64 << 20},
		{name: "gzip garbage after magic", file: append([]byte{0x1f, 0x8b}, "this is not gzip at all"...),
			want: []string{"gzip feed", "invalid header"}},
		{name: "gzip corrupt deflate", file: func() []byte {
			z := gzipFeed(t, good)
			// Keep the 10-byte header; the first deflate block header 0b111 is a reserved type.
			return append(append([]byte{}, z[:10]...), 0x07, 0x00, 0x00, 0x00)
		}(), want: []string{"corrupt input"}},
		{name: "HTTP 500", url: func(t *testing.T) string {
			return serveFeed(t, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "database is on fire", http.StatusInternalServerError)
			})
		}, want: []string{"HTTP status 500 Internal Server Error"}, notWant: []string{"database is on fire"}},
		{name: "connection cut mid-body", url: func(t *testing.T) string {
			return serveFeed(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(good)))
				w.WriteHeader(http.StatusOK)
				w.Write(half)
				rc := http.NewResponseController(w)
				if err := rc.Flush(); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
				conn, _, err := rc.Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				conn.Close()
			})
		}, want: []string{"feed is truncated at byte"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBackend(t, "*")
			im := newTestImporter(t, f, tc.cfg)
			dir := t.TempDir()
			path := writeFeedFile(t, dir, "feed.json", good)
			p := runImport(t, im, Request{Source: path})
			if p.State != store.ImportSucceeded || p.Result.Bulletins.Added != 3 || p.Result.Updates.Added != 6 {
				t.Fatalf("good import: state %s error %q result %+v", p.State, p.Error, p.Result)
			}
			before := stateDigest(t, f.s)

			src := path
			if tc.url != nil {
				src = tc.url(t)
			} else {
				writeFeedFile(t, dir, "feed.json", tc.file)
			}
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			bad := runImport(t, im, Request{Source: src})
			runtime.ReadMemStats(&m1)
			t.Logf("error: %s", bad.Error)
			if bad.State != store.ImportFailed {
				t.Fatalf("bad import: state %q (error %q), want %q", bad.State, bad.Error, store.ImportFailed)
			}
			for _, w := range tc.want {
				if !strings.Contains(bad.Error, w) {
					t.Errorf("error %q does not mention %q", bad.Error, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(strings.TrimPrefix(bad.Error, "fetch "+src), w) {
					t.Errorf("error %q repeats the source's content %q", bad.Error, w)
				}
			}
			if tc.maxAlloc > 0 {
				n := m1.TotalAlloc - m0.TotalAlloc
				t.Logf("allocated %d KiB", n>>10)
				if n > tc.maxAlloc {
					t.Errorf("the failed import allocated %d MiB, want at most %d MiB", n>>20, tc.maxAlloc>>20)
				}
			}
			if after := stateDigest(t, f.s); after != before {
				t.Fatal("a failed import changed the replicated state")
			}
			if staged, err := f.s.StagedRuns(); err != nil || len(staged) != 0 {
				t.Fatalf("staged runs after a failed import: %v %v", staged, err)
			}
		})
	}
}

func TestNonWellFormedTagImportsWithWarning(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{})
	feed := smallFeed()
	feed.Updates[1].Language = "ja-JP-mac"
	src := writeFeedFile(t, t.TempDir(), "feed.json", feed.bytes(t))

	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportSucceeded {
		t.Fatalf("import: state %s error %q", p.State, p.Error)
	}
	if p.Result.Updates.Added != 6 || p.Result.SkippedUpdates != 0 {
		t.Fatalf("result %+v, want 6 updates added and none skipped", p.Result)
	}
	view, err := f.s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := view.Update(feed.Updates[1].ID)
	if u == nil || u.Language != "ja-JP-mac" {
		t.Fatalf("stored update %s: %+v, want language %q verbatim", feed.Updates[1].ID, u, "ja-JP-mac")
	}
	named := false
	for _, w := range p.Result.Warnings {
		named = named || strings.Contains(w, `"ja-JP-mac"`)
	}
	if !named {
		t.Fatalf("warnings %q do not name ja-JP-mac", p.Result.Warnings)
	}
	t.Logf("warnings: %q", p.Result.Warnings)
}

func TestFailedStageIsRolledBack(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{MaxBatchBytes: 4 << 10})
	dir := t.TempDir()
	src := writeFeedFile(t, dir, "feed.json", smallFeed().bytes(t))
	first := runImport(t, im, Request{Source: src})
	if first.State != store.ImportSucceeded {
		t.Fatalf("first import: state %s error %q", first.State, first.Error)
	}
	catBefore := catalogDigest(t, f.s)
	infoBefore, err := f.s.Catalog(nil)
	if err != nil {
		t.Fatal(err)
	}

	// A bigger version of the feed: the small feed's records changed, plus 60 new bulletins
	// of 3 updates each, which takes many 4 KiB batches.
	big := smallFeed()
	big.Bulletins[0].Title += " (revised)"
	big.Updates[0].Size++
	for i := 0; i < 60; i++ {
		b := store.BulletinContent{ID: fmt.Sprintf("BIG-%03d", i), Vendor: "Testsoft", Title: "Bulk bulletin", Released: "2025-01-01"}
		for _, lang := range []string{"de", "fr", ""} {
			u := store.UpdateContent{ID: fmt.Sprintf("big-%03d-%s", i, lang), Title: "Bulk update", Language: lang,
				FileName: "bulk.exe", URL: "https://example.invalid/bulk", Size: 1 << 20, SHA256: strings.Repeat("cd", 32)}
			b.UpdateIDs = append(b.UpdateIDs, u.ID)
			big.Updates = append(big.Updates, u)
		}
		big.Bulletins = append(big.Bulletins, b)
	}
	writeFeedFile(t, dir, "feed.json", big.bytes(t))
	f.mu.Lock()
	f.failStage = f.stages + 2 // the second StageCatalog call of the next run
	f.mu.Unlock()

	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "stage batch") {
		t.Fatalf("import with a failing stage: state %s error %q, want failed staging a batch", p.State, p.Error)
	}
	t.Logf("error: %s", p.Error)
	if p.Batches < 1 {
		t.Errorf("batches staged = %d, want the ones before the failure", p.Batches)
	}
	if staged, err := f.s.StagedRuns(); err != nil || len(staged) != 0 {
		t.Fatalf("staged runs after the failed import: %v %v", staged, err)
	}
	if catalogDigest(t, f.s) != catBefore {
		t.Fatal("the failed import changed the catalog tables")
	}
	infoAfter, err := f.s.Catalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if infoAfter.Version != infoBefore.Version || infoAfter.Bulletins != 3 || infoAfter.Updates != 6 {
		t.Fatalf("catalog after the failed import: %+v, before: %+v", infoAfter, infoBefore)
	}
	if s, err := f.s.Source(nil, src); err != nil || s == nil || s.LastRunID != first.ID {
		t.Fatalf("source state after the failed import: %+v %v, want last run %s", s, err, first.ID)
	}

	// The same feed imports once the backend works again.
	f.mu.Lock()
	stagesBefore := f.stages
	f.mu.Unlock()
	again := runImport(t, im, Request{Source: src})
	if again.State != store.ImportSucceeded {
		t.Fatalf("retry: state %s error %q", again.State, again.Error)
	}
	f.mu.Lock()
	stages := f.stages - stagesBefore
	f.mu.Unlock()
	if stages < 3 {
		t.Errorf("the big feed took %d batches, want several", stages)
	}
	if r := again.Result; r.Bulletins.Added != 60 || r.Bulletins.Changed != 1 || r.Updates.Added != 180 || r.Updates.Changed != 1 {
		t.Fatalf("retry result %+v", r)
	}
}
