package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"patchtree/store"
)

// streamFeed returns a feed named name of nb bulletins, each naming three updates (de, fr and
// language-neutral). rev is in every title, so a feed of another rev changes every record.
func streamFeed(name string, nb int, rev string) *testFeed {
	f := &testFeed{Format: FormatNative, Feed: name, GeneratedAt: "2026-11-21T00:00:00Z"}
	for i := 0; i < nb; i++ {
		b := store.BulletinContent{ID: fmt.Sprintf("SB-%04d", i), Vendor: "Streamsoft", Title: "Stream bulletin " + rev,
			Released: "2025-01-01", CVEs: []string{fmt.Sprintf("CVE-2025-%04d", i)}}
		for _, lang := range []string{"de", "fr", ""} {
			u := store.UpdateContent{ID: fmt.Sprintf("su-%04d-%s", i, lang), Title: "Stream update " + rev, Language: lang,
				FileName: "stream.exe", URL: "https://example.invalid/stream", Size: 1000 + int64(i), SHA256: strings.Repeat("ef", 32)}
			b.UpdateIDs = append(b.UpdateIDs, u.ID)
			f.Updates = append(f.Updates, u)
		}
		f.Bulletins = append(f.Bulletins, b)
	}
	return f
}

// encodedFeed is a feed's JSON and where each of its updates begins in it.
type encodedFeed struct {
	buf     []byte
	updates []int
}

// split cuts the feed before updates[i]: what a source sends at once, and what it sends later.
func (e encodedFeed) split(i int) (head, tail []byte) {
	return e.buf[:e.updates[i]], e.buf[e.updates[i]:]
}

// encodeFeed writes f with its "feed" key before the records (a streamed import) or after
// "updates" (the feed's updates are collected and planned after the parse). trailer is raw JSON
// members added after "updates" (",\"key\": value").
func encodeFeed(t testing.TB, f *testFeed, feedFirst bool, trailer string) encodedFeed {
	t.Helper()
	var b bytes.Buffer
	put := func(v any) {
		buf, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(buf)
	}
	b.WriteString(`{"format":`)
	put(f.Format)
	if feedFirst {
		b.WriteString(`,"feed":`)
		put(f.Feed)
	}
	b.WriteString(`,"generated_at":`)
	put(f.GeneratedAt)
	b.WriteString(`,"bulletins":[`)
	for i := range f.Bulletins {
		if i > 0 {
			b.WriteByte(',')
		}
		put(&f.Bulletins[i])
	}
	b.WriteString("],\n\"updates\":[")
	var offs []int
	for i := range f.Updates {
		if i > 0 {
			b.WriteString(",\n")
		}
		offs = append(offs, b.Len())
		put(&f.Updates[i])
	}
	b.WriteString("]")
	b.WriteString(trailer)
	if !feedFirst {
		b.WriteString(`,"feed":`)
		put(f.Feed)
	}
	b.WriteString("}\n")
	return encodedFeed{buf: b.Bytes(), updates: offs}
}

// gatedSource serves a feed over HTTP in two parts: the head at once, then, once gate returns,
// the tail. The parts can be replaced between imports.
type gatedSource struct {
	mu         sync.Mutex
	head, tail []byte
	gate       func(r *http.Request) // nil: the tail follows the head at once
}

func (g *gatedSource) set(head, tail []byte, gate func(r *http.Request)) {
	g.mu.Lock()
	g.head, g.tail, g.gate = head, tail, gate
	g.mu.Unlock()
}

func (g *gatedSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	head, tail, gate := g.head, g.tail, g.gate
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(head)
	http.NewResponseController(w).Flush()
	if gate != nil {
		gate(r)
	}
	w.Write(tail)
}

// serveGated starts a gated source for the test and returns it with its URL.
func serveGated(t testing.TB) (*gatedSource, string) {
	g := &gatedSource{}
	return g, serveFeed(t, g.ServeHTTP)
}

// runningBatches is how many batches the running import has published (0 when none runs).
func runningBatches(im *Importer) int {
	im.mu.Lock()
	r := im.active
	im.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.progress().Batches
}

// poll reports whether cond became true within 5 s.
func poll(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// afterBatches is a gate that holds the rest of the feed back until the running import has
// published n batches: the rows of the feed's head were staged while it was still being read.
func afterBatches(t testing.TB, im *Importer, n int) func(*http.Request) {
	return func(*http.Request) {
		if !poll(func() bool { return runningBatches(im) >= n }) {
			t.Errorf("the import published %d batches while the feed was being read, want %d", runningBatches(im), n)
		}
	}
}

// siteSnapshot is what a failed import must leave as it was.
type siteSnapshot struct {
	catalog string // the bulletins and updates tables, with their Raft indexes
	info    store.CatalogInfo
	source  *store.SourceState
}

func snapshotSite(t testing.TB, s *store.Store, source string) siteSnapshot {
	t.Helper()
	info, err := s.Catalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Source(nil, source)
	if err != nil {
		t.Fatal(err)
	}
	return siteSnapshot{catalog: catalogDigest(t, s), info: *info, source: src}
}

// checkUntouched fails unless s is as in before, with no publish in progress and nothing staged.
func checkUntouched(t testing.TB, s *store.Store, source string, before siteSnapshot) {
	t.Helper()
	after := snapshotSite(t, s, source)
	if after.catalog != before.catalog {
		t.Error("the failed import changed the bulletins or updates tables")
	}
	if after.info != before.info {
		t.Errorf("catalog %+v after the failed import, %+v before", after.info, before.info)
	}
	if !reflect.DeepEqual(after.source, before.source) {
		t.Errorf("source state %+v after the failed import, %+v before", after.source, before.source)
	}
	if run, err := s.Publishing(); err != nil || run != "" {
		t.Errorf("publishing %q (%v) after the failed import, want nothing", run, err)
	}
	if staged, err := s.StagedRuns(); err != nil || len(staged) != 0 {
		t.Errorf("staged runs %v (%v) after the failed import, want none", staged, err)
	}
}

// TestStreamBadLateFeedIsTakenBack: a feed that turns out bad after the import published
// batches of its streamed updates fails with the parser's error, and what was published is
// taken back: the catalog, its version and the source's state are as before, nothing is being
// published or left staged, and the next good import succeeds.
func TestStreamBadLateFeedIsTakenBack(t *testing.T) {
	const nb = 40 // 120 updates, in batches of 5 rows
	cases := []struct {
		name string
		edit func(f *testFeed) // the bad feed, from a feed that changes every record
		want []string
	}{
		{"duplicate update id", func(f *testFeed) {
			f.Updates = append(f.Updates, f.Updates[7])
		}, []string{fmt.Sprintf("updates[%d]: its id appears twice", 3*nb)}},
		{"dangling update_ids", func(f *testFeed) {
			f.Bulletins[2].UpdateIDs = append(f.Bulletins[2].UpdateIDs, "su-missing")
		}, []string{"bulletins[2] names an update the feed does not contain", "1 dangling"}},
		{"malformed JSON in the last update", nil, []string{"malformed JSON at byte"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBackend(t, "*")
			im := newTestImporter(t, f, Config{MaxBatchRows: 5})
			src, url := serveGated(t)
			good := encodeFeed(t, streamFeed("stream", nb, "r1"), true, "")
			src.set(good.buf, nil, nil)
			first := runImport(t, im, Request{Source: url})
			if first.State != store.ImportSucceeded || first.Result.Updates.Added != 3*nb {
				t.Fatalf("first import: %s %q %+v", first.State, first.Error, first.Result)
			}
			before := snapshotSite(t, f.s, url)

			badFeed := streamFeed("stream", nb, "r2")
			if tc.edit != nil {
				tc.edit(badFeed)
			}
			bad := encodeFeed(t, badFeed, true, "")
			buf := bad.buf
			if tc.edit == nil {
				// Malformed JSON in the feed's last update: a trailing comma.
				last := bad.updates[len(bad.updates)-1]
				buf = append(append([]byte{}, buf[:last]...), `{"id":"su-late","title":"late",}]}`...)
			}
			// The feed's first 60 updates are sent; the rest once two batches of them are published.
			head, tail := encodedFeed{buf: buf, updates: bad.updates}.split(60)
			src.set(head, tail, afterBatches(t, im, 2))
			f.mu.Lock()
			publishesBefore := f.publishes
			f.mu.Unlock()

			p := runImport(t, im, Request{Source: url})
			t.Logf("error: %s (%d batches published)", p.Error, p.Batches)
			if p.State != store.ImportFailed {
				t.Fatalf("bad import: %s %q, want failed", p.State, p.Error)
			}
			for _, w := range append([]string{"bad feed"}, tc.want...) {
				if !strings.Contains(p.Error, w) {
					t.Errorf("error %q does not mention %q", p.Error, w)
				}
			}
			for _, w := range []string{"staging stopped", "stage batch", "cancel"} {
				if strings.Contains(p.Error, w) {
					t.Errorf("error %q says %q: the feed, not staging, failed", p.Error, w)
				}
			}
			if p.Batches < 2 {
				t.Fatalf("%d batches published before the failure, want at least 2: nothing was taken back", p.Batches)
			}
			f.mu.Lock()
			published := f.publishes - publishesBefore
			f.mu.Unlock()
			if published != p.Batches {
				t.Errorf("%d publish entries for %d batches", published, p.Batches)
			}
			checkUntouched(t, f.s, url, before)

			src.set(encodeFeed(t, streamFeed("stream", nb, "r3"), true, "").buf, nil, nil)
			again := runImport(t, im, Request{Source: url})
			if again.State != store.ImportSucceeded || again.Result.Updates.Changed != 3*nb || again.Result.Bulletins.Changed != nb {
				t.Fatalf("import after the failed one: %s %q %+v", again.State, again.Error, again.Result)
			}
			if run, _ := f.s.Publishing(); run != "" {
				t.Fatalf("still publishing %q after a good import", run)
			}
		})
	}
}

// TestStreamBadLateFeedOnRaftIsTakenBack is the dangling case of TestStreamBadLateFeedIsTakenBack
// on a real Raft site: the publish entries of the streamed batches are taken back by unpublish
// entries, and the version stays.
// firstStreamImport serves the first revision of the stream feed over a gated source, imports
// it into im (whose state is s), and returns the source and the site as it then is.
func firstStreamImport(t *testing.T, im *Importer, s *store.Store) (*gatedSource, string, siteSnapshot) {
	t.Helper()
	src, url := serveGated(t)
	src.set(encodeFeed(t, streamFeed("stream", 30, "r1"), true, "").buf, nil, nil)
	if first := runImport(t, im, Request{Source: url}); first.State != store.ImportSucceeded {
		t.Fatalf("first import: %s %q", first.State, first.Error)
	}
	return src, url, snapshotSite(t, s, url)
}

func TestStreamBadLateFeedOnRaftIsTakenBack(t *testing.T) {
	n, im := raftSite(t, Config{MaxBatchRows: 5}, "*")
	src, url, before := firstStreamImport(t, im, n.State())

	badFeed := streamFeed("stream", 30, "r2")
	badFeed.Bulletins[0].UpdateIDs = append(badFeed.Bulletins[0].UpdateIDs, "su-missing")
	head, tail := encodeFeed(t, badFeed, true, "").split(40)
	src.set(head, tail, afterBatches(t, im, 3))
	p := runImport(t, im, Request{Source: url})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "does not contain") || strings.Contains(p.Error, "staging stopped") {
		t.Fatalf("bad import: %s %q, want failed on the dangling update id", p.State, p.Error)
	}
	if p.Batches < 3 {
		t.Fatalf("%d batches published before the failure, want at least 3", p.Batches)
	}
	checkUntouched(t, n.State(), url, before)

	src.set(encodeFeed(t, streamFeed("stream", 30, "r2"), true, "").buf, nil, nil)
	if again := runImport(t, im, Request{Source: url}); again.State != store.ImportSucceeded || again.Result.Updates.Changed != 90 {
		t.Fatalf("import after the failed one: %s %q %+v", again.State, again.Error, again.Result)
	}
}

// pathFeeds are the feeds of TestStreamAndCollectedImportsAgree for a site that keeps "de":
// kept, skipped and foreign records, an unnamed update, a non-well-formed tag and mixed case.
func pathFeeds() (other, first, second *testFeed) {
	other = &testFeed{Format: FormatNative, Feed: "other", GeneratedAt: "2026-11-20T00:00:00Z",
		Bulletins: []store.BulletinContent{{ID: "SHARED-B", Title: "Other's bulletin", UpdateIDs: []string{"shared-u"}}},
		Updates:   []store.UpdateContent{{ID: "shared-u", Title: "Other's update", Language: "de"}},
	}
	first = streamFeed("paths", 12, "r1")
	first.Updates[4].Language = "DE-at"     // kept, tagged "de-at"
	first.Updates[7].Language = "ja-JP-mac" // not kept, and warned about
	first.Updates[9].Supersedes = []string{"su-0000-de"}
	first.Bulletins = append(first.Bulletins,
		store.BulletinContent{ID: "FR-ONLY", Title: "French only", UpdateIDs: []string{"fr-only"}},
		store.BulletinContent{ID: "SHARED-B", Title: "Claims other's bulletin", UpdateIDs: []string{"shared-u"}})
	first.Updates = append(first.Updates,
		store.UpdateContent{ID: "fr-only", Title: "French only", Language: "fr"},
		store.UpdateContent{ID: "orphan-de", Title: "Named by no bulletin", Language: "de"},
		store.UpdateContent{ID: "orphan-fr", Title: "Named by no bulletin", Language: "fr"},
		store.UpdateContent{ID: "shared-u", Title: "Claims other's update", Language: "de"})

	second = streamFeed("paths", 12, "r1")
	second.Updates[4].Language = "DE-at"
	second.Updates[9].Supersedes = []string{"su-0000-de"}
	second.Bulletins[2].Title += " (revised)"                              // changed bulletin
	second.Updates[0].Size++                                               // changed update
	second.Updates[3].Language = "fr"                                      // no longer kept
	second.Bulletins = append(second.Bulletins[:10], second.Bulletins[11]) // SB-0010 removed
	var ups []store.UpdateContent
	for _, u := range second.Updates {
		if !strings.HasPrefix(u.ID, "su-0010-") {
			ups = append(ups, u)
		}
	}
	second.Updates = ups
	added := streamFeed("paths", 14, "r1")
	second.Bulletins = append(second.Bulletins, added.Bulletins[12:]...)
	second.Updates = append(second.Updates, added.Updates[3*12:]...)
	second.Updates = append(second.Updates,
		store.UpdateContent{ID: "orphan2-de", Title: "Named by no bulletin", Language: "de"},
		store.UpdateContent{ID: "shared-u", Title: "Claims other's update", Language: "de"})
	second.Bulletins = append(second.Bulletins,
		store.BulletinContent{ID: "SHARED-B", Title: "Claims other's bulletin", UpdateIDs: []string{"shared-u"}})
	return other, first, second
}

// catalogRows is a site's catalog without Raft indexes, which differ with the entries' order.
type catalogRows struct {
	Bulletins []store.Bulletin
	Updates   []store.Update
}

func readCatalog(t testing.TB, s *store.Store) catalogRows {
	t.Helper()
	v, err := s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	var c catalogRows
	if err := v.EachBulletin(func(b *store.Bulletin) bool {
		row := *b
		row.RaftIndex = store.RaftIndex{}
		c.Bulletins = append(c.Bulletins, row)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if err := v.EachUpdate(func(u *store.Update) bool {
		row := *u
		row.RaftIndex = store.RaftIndex{}
		c.Updates = append(c.Updates, row)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// diffCatalogs reports the first difference of two catalogs' rows ("" when equal).
func diffCatalogs(a, b catalogRows) string {
	if len(a.Bulletins) != len(b.Bulletins) || len(a.Updates) != len(b.Updates) {
		return fmt.Sprintf("%d bulletins and %d updates, against %d and %d", len(a.Bulletins), len(a.Updates), len(b.Bulletins), len(b.Updates))
	}
	for i := range a.Bulletins {
		if !reflect.DeepEqual(a.Bulletins[i], b.Bulletins[i]) {
			return fmt.Sprintf("bulletin %+v, against %+v", a.Bulletins[i], b.Bulletins[i])
		}
	}
	for i := range a.Updates {
		if !reflect.DeepEqual(a.Updates[i], b.Updates[i]) {
			return fmt.Sprintf("update %+v, against %+v", a.Updates[i], b.Updates[i])
		}
	}
	return ""
}

// rowsWhileParsing parses buf with a streaming collector for a site keeping ranges and returns
// how many rows it made during the parse.
func rowsWhileParsing(t testing.TB, buf []byte, ranges ...string) int {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	view, err := s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(ranges, &Request{})
	rows := 0
	c.streamUpdates(&plan{}, view, func(sized) error { rows++; return nil })
	if _, err := ParseNative(bytes.NewReader(buf), c, nil); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestStreamAndCollectedImportsAgree: a feed whose "feed" key comes first (its updates streamed)
// and the same feed with that key after "updates" (its updates collected) store the same
// bulletins and updates and report the same results, on a first import and on a re-import that
// changes, removes and adds records.
func TestStreamAndCollectedImportsAgree(t *testing.T) {
	other, first, second := pathFeeds()
	type site struct {
		name    string
		f       *fakeBackend
		im      *Importer
		sources map[string]*gatedSource // by feed
		urls    map[string]string
	}
	var sites []*site
	for _, name := range []string{"streamed", "collected"} {
		s := &site{name: name, f: newFakeBackend(t, "de"), sources: map[string]*gatedSource{}, urls: map[string]string{}}
		s.im = newTestImporter(t, s.f, Config{MaxBatchRows: 4})
		sites = append(sites, s)
	}
	forms := func(f *testFeed) [2]encodedFeed {
		return [2]encodedFeed{encodeFeed(t, f, true, ""), encodeFeed(t, f, false, "")}
	}
	// The two forms take the two paths: only the streamed one makes rows while it is parsed.
	for _, f := range []*testFeed{first, second} {
		b := forms(f)
		if n := rowsWhileParsing(t, b[0].buf, "de"); n == 0 {
			t.Fatalf("feed %s with its name first: no row made during the parse", f.Feed)
		}
		if n := rowsWhileParsing(t, b[1].buf, "de"); n != 0 {
			t.Fatalf("feed %s with its name last: %d rows made during the parse, want none", f.Feed, n)
		}
	}
	// importBoth imports f into each site in its form. With gated, the streamed site's source
	// holds the feed's last update back until a batch of the rows before it was published, which
	// proves that site's import streamed.
	importBoth := func(step string, f *testFeed, gated bool, req Request) [2]*Progress {
		t.Helper()
		var out [2]*Progress
		b := forms(f)
		for i, s := range sites {
			src := s.sources[f.Feed]
			if src == nil {
				src, s.urls[f.Feed] = serveGated(t)
				s.sources[f.Feed] = src
			}
			if i == 0 && gated {
				head, tail := b[i].split(len(f.Updates) - 1)
				src.set(head, tail, afterBatches(t, s.im, 1))
			} else {
				src.set(b[i].buf, nil, nil)
			}
			req.Source = s.urls[f.Feed]
			p := runImport(t, s.im, req)
			if p.State != store.ImportSucceeded {
				t.Fatalf("%s, %s: %s %q", step, s.name, p.State, p.Error)
			}
			out[i] = p
		}
		if !reflect.DeepEqual(out[0].Result, out[1].Result) {
			t.Errorf("%s: streamed result %+v, collected %+v", step, out[0].Result, out[1].Result)
		}
		if out[0].Feed != out[1].Feed {
			t.Errorf("%s: feeds %q and %q", step, out[0].Feed, out[1].Feed)
		}
		if d := diffCatalogs(readCatalog(t, sites[0].f.s), readCatalog(t, sites[1].f.s)); d != "" {
			t.Errorf("%s: the streamed site has %s on the collected one", step, d)
		}
		return out
	}
	importBoth("other feed", other, false, Request{})

	p := importBoth("first import", first, true, Request{})[0]
	t.Logf("first import: %+v", p.Result)
	r := p.Result
	// The 12 bulletins are kept with their de, de-AT and neutral updates (25), and so is the
	// unnamed de update; the 10 fr updates, ja-JP-mac, fr-only and orphan-fr are skipped, and so
	// is FR-ONLY; the copies of the other feed's bulletin and update are skipped with a warning,
	// and ja-JP-mac is warned about.
	want := store.ImportCounts{Added: 12}
	if r.Bulletins != want || r.Updates != (store.ImportCounts{Added: 26}) || r.SkippedBulletins != 1 || r.SkippedUpdates != 13 || len(r.Warnings) != 3 {
		t.Errorf("first import: %+v", r)
	}
	c := readCatalog(t, sites[0].f.s)
	tagged := false
	for _, b := range c.Bulletins {
		if b.ID == "SB-0001" {
			tagged = reflect.DeepEqual(b.UpdateTags, []string{"de", "de-at", ""}) &&
				reflect.DeepEqual(b.UpdateIDs, []string{"su-0001-de", "su-0001-fr", "su-0001-"})
		}
	}
	if !tagged {
		t.Errorf("bulletin SB-0001 not stored with its kept updates and their lower-case tags: %+v", c.Bulletins[1])
	}

	p = importBoth("re-import", second, true, Request{})[0]
	t.Logf("re-import: %+v", p.Result)
	r = p.Result
	// Bulletins: SB-0012 and SB-0013 added; SB-0002 (title) and SB-0001 (su-0001-de is fr now)
	// changed; SB-0010 removed. Updates: the new bulletins' 4 and orphan2-de added; su-0000-de
	// changed; SB-0010's 2 and orphan-de removed (su-0001-de is still in the feed: it stays).
	if r.Bulletins != (store.ImportCounts{Added: 2, Changed: 2, Removed: 1, Unchanged: 9}) ||
		r.Updates != (store.ImportCounts{Added: 5, Changed: 1, Removed: 3, Unchanged: 21}) ||
		r.SkippedBulletins != 0 || r.SkippedUpdates != 13 || len(r.Warnings) != 2 {
		t.Errorf("re-import: %+v", r)
	}

	// With delete_excluded (still streamed), su-0001-de, in the feed but no longer kept, is
	// removed, and the streamed updates, all changed, are not.
	third := *second
	third.Updates = append([]store.UpdateContent{}, second.Updates...)
	for i := range third.Updates {
		third.Updates[i].Title += " (r3)"
	}
	p = importBoth("re-import deleting excluded", &third, true, Request{DeleteExcluded: true})[0]
	t.Logf("re-import deleting excluded: %+v", p.Result)
	r = p.Result
	if r.Bulletins != (store.ImportCounts{Unchanged: 13}) || r.Updates != (store.ImportCounts{Changed: 27, Removed: 1}) ||
		r.SkippedBulletins != 0 || r.SkippedUpdates != 13 || len(r.Warnings) != 2 {
		t.Errorf("re-import deleting excluded: %+v", r)
	}
}

// TestStreamCancelledWhileParsing: an import cancelled while its feed is being read, after it
// published batches of the feed's updates, ends cancelled with the catalog as before and
// nothing published or staged; the next import runs.
func TestStreamCancelledWhileParsing(t *testing.T) {
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{MaxBatchRows: 5})
	src, url, before := firstStreamImport(t, im, f.s)

	reached := make(chan struct{})
	head, tail := encodeFeed(t, streamFeed("stream", 30, "r2"), true, "").split(50)
	src.set(head, tail, func(r *http.Request) {
		afterBatches(t, im, 3)(r)
		close(reached)
		select { // the rest of the feed is never sent: the client goes away
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the cancelled import kept its request open")
		}
	})
	p, err := im.Start(Request{Source: url})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the source was never read")
	}
	c, err := im.Cancel(context.Background(), p.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	t.Logf("cancelled: %q after %d batches", c.Error, c.Batches)
	if c.State != store.ImportCancelled || !strings.Contains(c.Error, "cancelled") {
		t.Fatalf("cancelled run: %s %q", c.State, c.Error)
	}
	if c.Batches < 3 {
		t.Fatalf("%d batches published before the cancel, want at least 3", c.Batches)
	}
	checkUntouched(t, f.s, url, before)

	src.set(encodeFeed(t, streamFeed("stream", 30, "r2"), true, "").buf, nil, nil)
	if again := runImport(t, im, Request{Source: url}); again.State != store.ImportSucceeded || again.Result.Updates.Changed != 90 {
		t.Fatalf("import after the cancelled one: %s %q %+v", again.State, again.Error, again.Result)
	}
}

// TestStreamFeedNamedTwice: a feed whose "feed" key appears twice with different names fails
// (the second name after published batches, or before any record) and changes nothing.
func TestStreamFeedNamedTwice(t *testing.T) {
	cases := []struct {
		name  string
		feed  func(t *testing.T) (head, tail []byte)
		gated bool
	}{
		{"after the updates", func(t *testing.T) ([]byte, []byte) {
			return encodeFeed(t, streamFeed("stream", 30, "r2"), true, `,"feed":"impostor"`).split(50)
		}, true},
		{"before the records", func(t *testing.T) ([]byte, []byte) {
			f := streamFeed("stream", 30, "r2")
			f.GeneratedAt = ""
			buf := encodeFeed(t, f, true, "").buf
			buf = bytes.Replace(buf, []byte(`,"generated_at":""`), []byte(`,"feed":"impostor"`), 1)
			return buf, nil
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBackend(t, "*")
			im := newTestImporter(t, f, Config{MaxBatchRows: 5})
			src, url, before := firstStreamImport(t, im, f.s)

			head, tail := tc.feed(t)
			if !bytes.Contains(append(append([]byte{}, head...), tail...), []byte(`"feed":"impostor"`)) {
				t.Fatal("the feed does not name itself twice")
			}
			var gate func(*http.Request)
			if tc.gated {
				gate = afterBatches(t, im, 2)
			}
			src.set(head, tail, gate)
			p := runImport(t, im, Request{Source: url})
			t.Logf("error: %s (%d batches published)", p.Error, p.Batches)
			// The JSON decoder refuses a key given twice; the collector, a second name.
			if p.State != store.ImportFailed || !strings.Contains(p.Error, "bad feed") ||
				!strings.Contains(p.Error, "key twice") && !strings.Contains(p.Error, "names itself twice") {
				t.Fatalf("feed named twice: %s %q, want failed on a name given twice", p.State, p.Error)
			}
			if tc.gated && p.Batches < 2 {
				t.Fatalf("%d batches published before the second name, want at least 2", p.Batches)
			}
			if !tc.gated && p.Batches != 0 {
				t.Fatalf("%d batches published for a feed that fails before its records", p.Batches)
			}
			checkUntouched(t, f.s, url, before)
		})
	}

	// The collector's own check, should the parser ever pass a second name on.
	c := newCollector(nil, &Request{})
	c.streamUpdates(&plan{}, nil, func(sized) error { return nil })
	if err := c.FeedName("stream"); err != nil {
		t.Fatal(err)
	}
	if err := c.FeedName("stream"); err != nil {
		t.Fatalf("the same name again: %v", err)
	}
	if err := c.FeedName("impostor"); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("another name: %v, want an error", err)
	}
}

// slowFirstPublish delays the first publish entry of each run, as a slow Raft write would.
type slowFirstPublish struct {
	*fakeBackend
	delay time.Duration
	slow  map[string]bool
	log   sync.Mutex // the log writes one entry at a time
}

func (s *slowFirstPublish) PublishCatalog(runID string, b *store.CatalogBatch) (*store.PublishProgress, error) {
	s.log.Lock()
	defer s.log.Unlock()
	s.mu.Lock()
	first := !s.slow[runID]
	s.slow[runID] = true
	s.mu.Unlock()
	if first {
		time.Sleep(s.delay) // a slow log write, not a synchronisation
	}
	return s.fakeBackend.PublishCatalog(runID, b)
}

// A streamed parse held back by a slow publish entry is waiting on its own staging, not on its
// source: the stall watch must not end the run as "source stalled".
func TestStreamBackpressureIsNotASourceStall(t *testing.T) {
	f := newFakeBackend(t, "*")
	b := &slowFirstPublish{fakeBackend: f, delay: 600 * time.Millisecond, slow: map[string]bool{}}
	im := newTestImporter(t, b, Config{MaxBatchRows: 50, StallTimeout: 200 * time.Millisecond})
	src := filepath.Join(t.TempDir(), "feed.json")
	genFeed(t, src, 6000, 1)
	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportSucceeded {
		t.Fatalf("import of a local file with one slow publish entry: %s %q", p.State, p.Error)
	}
}

// Past the language cache's bound the streamed path collects updates instead of streaming
// them: a feed of more distinct languages than that imports the same either way.
func TestStreamManyLanguagesImportAsCollected(t *testing.T) {
	const n = maxCachedLanguages + 500
	feed := &testFeed{Format: FormatNative, Feed: "langs", GeneratedAt: "2026-11-21T00:00:00Z", Bulletins: []store.BulletinContent{}}
	for i := 0; i < n; i++ {
		feed.Updates = append(feed.Updates, store.UpdateContent{ID: fmt.Sprintf("u%05d", i), Title: "u", Language: fmt.Sprintf("de-x-%05d", i)})
	}
	var results []store.ImportResult
	for _, feedFirst := range []bool{true, false} {
		f := newFakeBackend(t, "*")
		im := newTestImporter(t, f, Config{})
		path := writeFeedFile(t, t.TempDir(), "feed.json", encodeFeed(t, feed, feedFirst, "").buf)
		p := runImport(t, im, Request{Source: path})
		if p.State != store.ImportSucceeded || p.Result.Updates.Added != n {
			t.Fatalf("feed key first %v: %s %q, %d updates added, want %d", feedFirst, p.State, p.Error, p.Result.Updates.Added, n)
		}
		results = append(results, p.Result)
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Fatalf("streamed %+v, collected %+v", results[0], results[1])
	}
}
