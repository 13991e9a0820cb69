package api

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/gorilla/mux"
)

// The console: a web dashboard served by every site at /ui/, plain HTML, CSS and ES modules
// embedded from the directory ui (docs/console.md). The pages read the same /v1 API as every
// other client, authenticated by a session cookie (console_session.go), and follow changes on
// an event stream (console_events.go).

//go:embed ui
var consoleFiles embed.FS

// consoleCSP allows the console's own files only: no inline script or style, no other origin.
const consoleCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'"

// maxAssetPath bounds the asset names looked up.
const maxAssetPath = 200

// consoleRoutes are the console's routes: its files, the session and the event stream. The
// session routes come before the files' pattern, which would match them too.
func (s *Server) consoleRoutes() []route {
	if s.console == nil {
		s.console = newConsoleState()
	}
	return []route{
		{http.MethodGet, "/", public, false, s.consoleRedirect, 0},
		{http.MethodPost, "/ui/session", public, false, s.signIn, maxSignInBody},
		{http.MethodGet, "/ui/session", anyRole, false, s.getSession, 0},
		{http.MethodDelete, "/ui/session", public, false, s.signOut, 0},
		{http.MethodGet, "/ui/events", anyRole, false, s.events, 0},
		{http.MethodGet, "/ui/", public, false, s.consoleAsset, 0},
		{http.MethodGet, "/ui/{file:.+}", public, false, s.consoleAsset, 0},
	}
}

// isConsoleRoute reports whether a route table entry is the console's (authenticated by its
// session cookie as well as by a bearer token).
func isConsoleRoute(rt route) bool { return rt.path == "/" || strings.HasPrefix(rt.path, "/ui/") }

// consoleRedirect sends GET / to the console.
func (s *Server) consoleRedirect(r *http.Request) (int, any, error) {
	return http.StatusFound, rawResponse(func(w http.ResponseWriter) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	}), nil
}

// asset is one embedded console file.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// consoleAsset serves an embedded console file: /ui/ is index.html.
func (s *Server) consoleAsset(r *http.Request) (int, any, error) {
	name := mux.Vars(r)["file"]
	if name == "" {
		name = "index.html"
	}
	a, err := loadAsset(name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		h := w.Header()
		setConsoleHeaders(h)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", a.contentType)
		w.WriteHeader(http.StatusOK)
		w.Write(a.body)
	}), nil
}

// setConsoleHeaders sets the security headers of every console page and file.
func setConsoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// assets caches the console files read, by name (at most every embedded file).
var assets sync.Map

// loadAsset reads the named file of the console: a clean relative path to a regular file, never
// a directory or a name outside ui.
func loadAsset(name string) (*asset, error) {
	if a, ok := assets.Load(name); ok {
		return a.(*asset), nil
	}
	notFound := fmt.Errorf("%w: no console file %q", ErrNoRoute, name)
	if len(name) > maxAssetPath {
		return nil, fmt.Errorf("%w: console file name over %d bytes", ErrNoRoute, maxAssetPath)
	}
	if name != path.Clean(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".") || !fs.ValidPath(name) {
		return nil, notFound
	}
	full := "ui/" + name
	info, err := fs.Stat(consoleFiles, full)
	if err != nil || !info.Mode().IsRegular() {
		return nil, notFound
	}
	body, err := consoleFiles.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("read console file %q: %w", name, err)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	sum := sha256.Sum256(body)
	a := &asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	assets.Store(name, a)
	return a, nil
}
