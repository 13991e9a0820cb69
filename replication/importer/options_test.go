package importer

import (
	"net/http"
	"testing"
	"time"

	"patchtree/store"
)

// TestHTTPConditionalImport: a source that answers 304 to the validators of the last import
// ends the next import as unchanged without reading a byte of feed.
func TestHTTPConditionalImport(t *testing.T) {
	body := smallFeed().bytes(t)
	const etag = `"v1"`
	var conditional int
	url := serveFeed(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			conditional++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat))
		w.Write(body)
	})
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{})
	first := runImport(t, im, Request{Source: url})
	if first.State != store.ImportSucceeded {
		t.Fatalf("first import: %s %s", first.State, first.Error)
	}
	before := catalogDigest(t, f.s)
	second := runImport(t, im, Request{Source: url})
	if second.State != store.ImportUnchanged || conditional != 1 || second.RecordsRead != 0 {
		t.Fatalf("second import: state %s, conditional requests %d, records read %d", second.State, conditional, second.RecordsRead)
	}
	if second.Result.Bulletins.Unchanged != 3 || second.Result.Updates.Unchanged != 6 {
		t.Fatalf("unchanged counts %+v", second.Result)
	}
	if catalogDigest(t, f.s) != before {
		t.Fatal("a 304 changed the catalog")
	}
	// Complete mode ignores the validators and re-reads the feed.
	third := runImport(t, im, Request{Source: url, Mode: "complete"})
	if third.State != store.ImportUnchanged || conditional != 1 || third.RecordsRead == 0 {
		t.Fatalf("complete import: state %s, conditional %d, records %d", third.State, conditional, third.RecordsRead)
	}
}

// TestImportOptions covers vendor filters, deleting excluded data, and disabling superseded
// updates.
func TestImportOptions(t *testing.T) {
	feed := smallFeed()
	feed.Bulletins[2].Vendor = "Othersoft"
	feed.Updates[2].Supersedes = []string{feed.Updates[0].ID} // testapp-2.0-0 supersedes testapp-1.0-0
	src := writeFeedFile(t, t.TempDir(), "feed.json", feed.bytes(t))

	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{})
	p := runImport(t, im, Request{Source: src, ExcludeVendors: []string{"othersoft"}, DisableSuperseded: true})
	info, _ := f.s.Catalog(nil)
	if p.State != store.ImportSucceeded || info.Bulletins != 2 || info.Updates != 4 || p.Result.SkippedBulletins != 1 {
		t.Fatalf("exclude Othersoft: %s %+v, catalog %+v", p.State, p.Result, info)
	}
	if u, _ := f.s.Update(nil, feed.Updates[0].ID); u == nil || !u.Superseded {
		t.Fatalf("superseded update not marked: %+v", u)
	}
	if u, _ := f.s.Update(nil, feed.Updates[2].ID); u == nil || u.Superseded {
		t.Fatalf("superseding update marked: %+v", u)
	}

	// Including only Othersoft keeps the Testsoft data (excluded data stays by default)...
	p = runImport(t, im, Request{Source: src, IncludeVendors: []string{"Othersoft"}})
	info, _ = f.s.Catalog(nil)
	if p.State != store.ImportSucceeded || info.Bulletins != 3 || p.Result.Bulletins.Removed != 0 {
		t.Fatalf("include Othersoft: %s %+v, catalog %+v", p.State, p.Result, info)
	}
	// ...unless delete_excluded asks for it.
	p = runImport(t, im, Request{Source: src, IncludeVendors: []string{"Othersoft"}, DeleteExcluded: true})
	info, _ = f.s.Catalog(nil)
	if p.State != store.ImportSucceeded || info.Bulletins != 1 || p.Result.Bulletins.Removed != 2 {
		t.Fatalf("include Othersoft, delete excluded: %s %+v, catalog %+v", p.State, p.Result, info)
	}

	// Narrowing the site's languages with delete_excluded drops the other languages' updates.
	f.setLanguages(t, "de")
	p = runImport(t, im, Request{Source: src, DeleteExcluded: true})
	view, _ := f.s.CatalogView(nil)
	view.EachUpdate(func(u *store.Update) bool {
		if u.Language != "de" && u.Language != "" {
			t.Errorf("update %s in %q kept under ranges de", u.ID, u.Language)
		}
		return true
	})
	if p.State != store.ImportSucceeded {
		t.Fatalf("de import: %s %s", p.State, p.Error)
	}
}

// TestScheduledImport: the server-tasks settings' catalog_import schedule starts imports from
// the default source; "off" stops them.
func TestScheduledImport(t *testing.T) {
	src := writeFeedFile(t, t.TempDir(), "feed.json", smallFeed().bytes(t))
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{DefaultSource: src, ScheduleTick: 5 * time.Millisecond})
	setTasks := func(body string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		doc := &store.SettingDoc{Name: "server-tasks", Body: []byte(body), Origin: store.OriginLocal}
		if err := f.s.PutSettingDoc(f.next(), doc, nil); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() int {
		all, err := im.Runs()
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	time.Sleep(50 * time.Millisecond)
	if n := runs(); n != 0 {
		t.Fatalf("%d imports without a schedule", n)
	}
	setTasks(`{"catalog_import":"1s"}`)
	deadline := time.Now().Add(10 * time.Second)
	for runs() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("scheduled imports: %d runs in 10s with a 1s schedule", runs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info, _ := f.s.Catalog(nil); info.Bulletins != 3 {
		t.Fatalf("catalog after scheduled imports: %+v", info)
	}
	setTasks(`{"catalog_import":"off"}`)
	time.Sleep(100 * time.Millisecond) // the loop sees the change
	n := runs()
	time.Sleep(1500 * time.Millisecond)
	if runs() != n {
		t.Fatalf("imports went on after the schedule was turned off: %d → %d", n, runs())
	}
}
