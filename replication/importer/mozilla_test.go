package importer

import (
	"strings"
	"testing"

	"patchtree/langalert"
	"patchtree/store"
)

const mozilla = "catalogs/mozilla-2005-2019.catalog.json"

func TestImportMozillaAllLanguages(t *testing.T) {
	src := sharedData(t, mozilla)
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{})

	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportSucceeded {
		t.Fatalf("import: %s %s", p.State, p.Error)
	}
	info, _ := f.s.Catalog(nil)
	if info.Bulletins != 1118 || info.Updates != 40693 {
		t.Fatalf("catalog holds %d bulletins and %d updates, want 1118 and 40693", info.Bulletins, info.Updates)
	}
	if r := p.Result; r.Bulletins.Added != 1118 || r.Updates.Added != 40693 || p.CatalogVersion != info.Version || p.Feed != "mozilla-mfsa" {
		t.Fatalf("result %+v version %d feed %q", r, p.CatalogVersion, p.Feed)
	}
	t.Logf("first import: %d batches, %d records read, %d bytes, warnings %v", p.Batches, p.RecordsRead, p.BytesRead, p.Result.Warnings)

	before := catalogDigest(t, f.s)
	again := runImport(t, im, Request{Source: src})
	r := again.Result
	if again.State != store.ImportUnchanged || r.Bulletins.Added+r.Bulletins.Changed+r.Bulletins.Removed != 0 ||
		r.Updates.Added+r.Updates.Changed+r.Updates.Removed != 0 || r.Bulletins.Unchanged != 1118 || r.Updates.Unchanged != 40693 {
		t.Fatalf("re-import: state %s result %+v", again.State, r)
	}
	if catalogDigest(t, f.s) != before {
		t.Fatal("a no-op re-import moved some row's ModifyIndex")
	}
	if info2, _ := f.s.Catalog(nil); info2.Version != info.Version {
		t.Fatalf("catalog version moved on a no-op import: %d -> %d", info.Version, info2.Version)
	}
}

func TestImportMozillaFilteredLanguages(t *testing.T) {
	src := sharedData(t, mozilla)
	f := newFakeBackend(t, "de", "ja")
	im := newTestImporter(t, f, Config{})
	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportSucceeded {
		t.Fatalf("import: %s %s", p.State, p.Error)
	}
	info, _ := f.s.Catalog(nil)
	if info.Updates != 1073 {
		t.Fatalf("updates = %d, want 1073", info.Updates)
	}
	view, _ := f.s.CatalogView(nil)
	kept := map[string]bool{}
	view.EachUpdate(func(u *store.Update) bool {
		if !langalert.MatchAny([]string{"de", "ja"}, u.Language) {
			t.Errorf("update %s in %q is outside de,ja", u.ID, u.Language)
		}
		if strings.EqualFold(u.Language, "dsb") {
			t.Errorf("range de kept dsb update %s", u.ID)
		}
		kept[u.ID] = true
		return true
	})
	bulletins := 0
	view.EachBulletin(func(b *store.Bulletin) bool {
		bulletins++
		if len(b.UpdateIDs) == 0 {
			t.Errorf("bulletin %s kept without updates", b.ID)
		}
		for _, u := range b.UpdateIDs {
			if !kept[u] {
				t.Errorf("bulletin %s names update %s that the site does not hold", b.ID, u)
			}
		}
		return true
	})
	if bulletins != info.Bulletins {
		t.Fatalf("counted %d bulletins, info says %d", bulletins, info.Bulletins)
	}
	t.Logf("de,ja: %d bulletins, %d updates; skipped %d updates, %d bulletins", info.Bulletins, info.Updates, p.Result.SkippedUpdates, p.Result.SkippedBulletins)
}
