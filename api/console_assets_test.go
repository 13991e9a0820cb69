package api

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
)

// TestConsoleAssets: GET / redirects to the console, /ui/ is its page with the security
// headers, files are served with their type, revalidated by ETag, and nothing outside ui is.
func TestConsoleAssets(t *testing.T) {
	srv := New(newFake(t), Options{})
	rec := consoleReq(t, srv, http.MethodGet, "/", "", "", "")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = consoleReq(t, srv, http.MethodGet, "/ui/", "", "", "")
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /ui/: %d %s", rec.Code, rec.Body)
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("GET /ui/ %s: %q, want %q", k, got, v)
		}
	}
	index, err := consoleFiles.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Body.String() != string(index) {
		t.Error("GET /ui/ is not ui/index.html")
	}
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest(http.MethodGet, "/ui/index.html", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if etag == "" || rec.Code != http.StatusNotModified {
		t.Errorf("revalidation with ETag %q: %d", etag, rec.Code)
	}
	for _, p := range []string{"/ui/missing.js", "/ui/../console.go", "/ui/./index.html", "/ui//index.html", "/ui/.hidden", "/ui/views"} {
		rec := consoleReq(t, srv, http.MethodGet, p, "", "", "")
		if rec.Code == http.StatusOK {
			t.Errorf("GET %s: 200, want no file", p)
		}
	}
	// Every embedded file is served with a type its browser accepts (module scripts need a
	// JavaScript type under nosniff).
	err = fs.WalkDir(consoleFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rec := consoleReq(t, srv, http.MethodGet, "/"+p, "", "", "")
		ct := rec.Header().Get("Content-Type")
		wantType := map[string]string{".js": "javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}[path.Ext(p)]
		if rec.Code != http.StatusOK || !strings.Contains(ct, wantType) {
			t.Errorf("GET /%s: %d %q, want 200 %s", p, rec.Code, ct, wantType)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
