package importer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// TestAllowListPaths: a path is allowed only inside an allowed directory, after cleaning and
// after resolving symbolic links; /data does not allow /data2.
func TestAllowListPaths(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	data2 := filepath.Join(base, "data2")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{data, data2, outside, filepath.Join(data, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFeedFile(t, data, "feed.json", []byte("{}"))
	writeFeedFile(t, data2, "feed.json", []byte("{}"))
	secret := writeFeedFile(t, outside, "secret.json", []byte("{}"))
	if err := os.Symlink(secret, filepath.Join(data, "link-out.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(data, "dir-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "feed.json"), filepath.Join(data, "link-in.json")); err != nil {
		t.Fatal(err)
	}
	a, err := ParseAllowList([]string{data})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src   string
		ok    bool
		check string
	}{
		{filepath.Join(data, "feed.json"), true, ""},
		{filepath.Join(data, "sub", "..", "feed.json"), true, ""},
		{filepath.Join(data, "link-in.json"), true, ""},
		{filepath.Join(data, "absent.json"), true, ""}, // inside: the run reports it absent
		{data, true, ""},
		{filepath.Join(data2, "feed.json"), false, "not under an allowed import location"},
		{data + "/../data2/feed.json", false, "not under an allowed import location"},
		{data + "/../outside/secret.json", false, "not under an allowed import location"},
		{filepath.Join(data, "link-out.json"), false, "symbolic link"},
		{filepath.Join(data, "dir-out", "secret.json"), false, "symbolic link"},
		{"/etc/passwd", false, "not under an allowed import location"},
		{"feed.json", false, "not an absolute path"},
		{"file:///etc/passwd", false, "neither a local path nor an http(s) URL"},
	} {
		err := a.Check(tc.src)
		if tc.ok {
			if err != nil {
				t.Errorf("Check(%q) = %v, want allowed", tc.src, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.check) || !strings.Contains(err.Error(), "--import-allow") {
			t.Errorf("Check(%q) = %v, want ErrNotAllowed saying %q", tc.src, err, tc.check)
		}
	}
	// The empty list allows nothing.
	if err := (&AllowList{}).Check(filepath.Join(data, "feed.json")); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("empty list: %v, want ErrNotAllowed", err)
	}
	// A link swapped in after Check still cannot lead out: the open goes through os.Root.
	swap := filepath.Join(data, "swap.json")
	writeFeedFile(t, data, "swap.json", []byte("{}"))
	if err := a.Check(swap); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(swap); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, swap); err != nil {
		t.Fatal(err)
	}
	if f, err := a.openAllowed(swap); err == nil {
		f.Close()
		t.Errorf("openAllowed of a link out of the allowed directory succeeded")
	}
}

// TestAllowListURLs: a URL is allowed only with the same scheme, host and port as a prefix and
// a path at or below the prefix's path, compared after parsing.
func TestAllowListURLs(t *testing.T) {
	a, err := ParseAllowList([]string{"http://a.example/feeds,https://b.example:8443/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src string
		ok  bool
	}{
		{"http://a.example/feeds", true},
		{"http://a.example/feeds/x.json", true},
		{"http://A.EXAMPLE:80/feeds/x.json", true},
		{"https://b.example:8443/anything", true},
		{"http://a.example/feeds2/x.json", false},
		{"http://a.example.evil/feeds/x.json", false},
		{"http://a.example@evil.example/feeds/x.json", false},
		{"http://a.example:8080/feeds/x.json", false},
		{"https://a.example/feeds/x.json", false},
		{"http://a.example/feeds/../admin", false},
		{"http://a.example/feeds/%2e%2e/admin", false},
		{"https://b.example/anything", false}, // port 443, not 8443
		{"http://127.0.0.1/feeds/x.json", false},
	} {
		err := a.Check(tc.src)
		if tc.ok != (err == nil) {
			t.Errorf("Check(%q) = %v, want allowed %t", tc.src, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Check(%q) = %v, want ErrNotAllowed", tc.src, err)
		}
	}
	if _, err := ParseAllowList([]string{"ftp://a.example/"}); err == nil {
		t.Error("ParseAllowList accepted an ftp URL")
	}
	if got := DefaultAllow("http://a.example/feeds/catalog.json"); len(got) != 1 || got[0] != "http://a.example/feeds/" {
		t.Errorf("DefaultAllow of a feed URL = %v", got)
	}
	if got := DefaultAllow("/srv/feeds/catalog.json"); len(got) != 1 || got[0] != "/srv/feeds" {
		t.Errorf("DefaultAllow of a feed file = %v", got)
	}
	if got := DefaultAllow(""); got != nil {
		t.Errorf("DefaultAllow without a source = %v, want nothing", got)
	}
}

// allowedImporter is a test importer whose allow-list holds exactly the given locations.
func allowedImporter(t *testing.T, f *fakeBackend, cfg Config, allowed ...string) *Importer {
	t.Helper()
	a, err := ParseAllowList(allowed)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Allow = a
	return newTestImporter(t, f, cfg)
}

// TestImportRefusedSources: a refused source fails at Start, before a run exists; a redirect
// off the allowed prefix fails the run without following it; nothing changes.
func TestImportRefusedSources(t *testing.T) {
	var secretHits int
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits++
		w.Write([]byte("TOP-SECRET"))
	}))
	t.Cleanup(secret.Close)
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/feeds/redirect.json":
			http.Redirect(w, r, secret.URL+"/feeds/x.json", http.StatusFound)
		case "/feeds/inside.json":
			http.Redirect(w, r, "/feeds/feed.json", http.StatusFound)
		case "/feeds/feed.json":
			w.Write(smallFeed().bytes(t))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(feeds.Close)
	dir := t.TempDir()
	f := newFakeBackend(t, "*")
	im := allowedImporter(t, f, Config{}, dir, feeds.URL+"/feeds/")
	before := stateDigest(t, f.s)

	for _, src := range []string{"/etc/passwd", "/proc/self/environ", secret.URL + "/feeds/x.json", feeds.URL + "/other/x.json"} {
		if _, err := im.Start(Request{Source: src}); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Start(%q) = %v, want ErrNotAllowed", src, err)
		}
	}
	p := runImport(t, im, Request{Source: feeds.URL + "/feeds/redirect.json"})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "redirect") || !strings.Contains(p.Error, "not under an allowed import URL prefix") || secretHits != 0 {
		t.Errorf("redirect off the prefix: state %s error %q, secret server hit %d times", p.State, p.Error, secretHits)
	}
	if strings.Contains(p.Error, "TOP-SECRET") {
		t.Errorf("error repeats the secret: %q", p.Error)
	}
	if after := stateDigest(t, f.s); after != before {
		t.Fatal("a refused import changed the state")
	}
	// A redirect that stays under the prefix is followed.
	if p := runImport(t, im, Request{Source: feeds.URL + "/feeds/inside.json"}); p.State != store.ImportSucceeded {
		t.Errorf("redirect inside the prefix: state %s error %q", p.State, p.Error)
	}
}

// blockingSource serves the start of a feed and then nothing until the test ends: a stalled
// source. started is closed when the first request has been answered with its first bytes.
func blockingSource(t *testing.T) (src string, started chan struct{}) {
	t.Helper()
	started = make(chan struct{})
	release := make(chan struct{})
	var once bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"format": "patchtree.catalog/v1", `))
		http.NewResponseController(w).Flush()
		if !once {
			once = true
			close(started)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handler return so Close does not wait
	return srv.URL + "/feed.json", started
}

// TestImportStallTimeout: a source that stops sending ends the run after the stall timeout,
// with an error naming the source and the timeout; the next import runs.
func TestImportStallTimeout(t *testing.T) {
	src, _ := blockingSource(t)
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{StallTimeout: 200 * time.Millisecond})
	before := stateDigest(t, f.s)
	start := time.Now()
	p := runImport(t, im, Request{Source: src})
	took := time.Since(start)
	if p.State != store.ImportFailed || !strings.Contains(p.Error, src) || !strings.Contains(p.Error, "--import-stall-timeout") || !strings.Contains(p.Error, "200ms") {
		t.Fatalf("stalled import: state %s error %q", p.State, p.Error)
	}
	if took > 10*time.Second {
		t.Errorf("stalled import took %s to end", took)
	}
	if stateDigest(t, f.s) != before {
		t.Fatal("a stalled import changed the state")
	}
	good := writeFeedFile(t, t.TempDir(), "feed.json", smallFeed().bytes(t))
	if p := runImport(t, im, Request{Source: good}); p.State != store.ImportSucceeded {
		t.Fatalf("import after the stalled one: %s %q", p.State, p.Error)
	}
}

// TestImportCancel: cancelling a run blocked in a read ends it "cancelled" at once with the
// state unchanged; cancelling it again, or a finished run, is a conflict; an unknown id is not
// found; the next import runs.
func TestImportCancel(t *testing.T) {
	src, started := blockingSource(t)
	f := newFakeBackend(t, "*")
	im := newTestImporter(t, f, Config{})
	before := stateDigest(t, f.s)
	p, err := im.Start(Request{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the source was never read")
	}
	if _, err := im.Start(Request{Source: src}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second import while one runs: %v, want ErrBusy", err)
	}
	c, err := im.Cancel(context.Background(), p.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if c.State != store.ImportCancelled || !strings.Contains(c.Error, "cancelled") {
		t.Fatalf("cancelled run: state %s error %q", c.State, c.Error)
	}
	if stateDigest(t, f.s) != before {
		t.Fatal("a cancelled import changed the state")
	}
	if _, err := im.Cancel(context.Background(), p.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("cancel of a finished run: %v, want ErrConflict", err)
	}
	if _, err := im.Cancel(context.Background(), "no-such-run"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancel of an unknown run: %v, want ErrNotFound", err)
	}
	good := writeFeedFile(t, t.TempDir(), "feed.json", smallFeed().bytes(t))
	done := runImport(t, im, Request{Source: good})
	if done.State != store.ImportSucceeded {
		t.Fatalf("import after the cancelled one: %s %q", done.State, done.Error)
	}
	if _, err := im.Cancel(context.Background(), done.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("cancel of a succeeded run: %v, want ErrConflict", err)
	}
}

// TestImportErrorsEchoNoContent: a file that is not a feed fails naming the source, not its
// size or first bytes.
func TestImportErrorsEchoNoContent(t *testing.T) {
	dir := t.TempDir()
	f := newFakeBackend(t, "*")
	im := allowedImporter(t, f, Config{}, dir)
	src := writeFeedFile(t, dir, "passwd", []byte("root:x:0:0:SECRET-VALUE:/root:/bin/bash\n"))
	p := runImport(t, im, Request{Source: src})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "not a patchtree feed or CSAF document") || !strings.Contains(p.Error, src) {
		t.Fatalf("not a feed: state %s error %q", p.State, p.Error)
	}
	for _, leak := range []string{"root", "SECRET", "'r'", "41 bytes", "41"} {
		if strings.Contains(strings.ReplaceAll(p.Error, src, ""), leak) {
			t.Errorf("error %q repeats %q", p.Error, leak)
		}
	}
	u, _ := url.Parse("http://127.0.0.1/x")
	if err := (&AllowList{}).CheckURL(u); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("empty list allowed %s", u)
	}
}
