package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleRoutesAuth walks the console's routes (which the auth matrix leaves out: they
// take the session cookie) with no credentials.
func TestConsoleRoutesAuth(t *testing.T) {
	srv := New(newFake(t), Options{})
	want := map[string]int{
		"GET /":              http.StatusFound,
		"POST /ui/session":   http.StatusBadRequest,
		"GET /ui/session":    http.StatusUnauthorized,
		"DELETE /ui/session": http.StatusUnauthorized,
		"GET /ui/events":     http.StatusUnauthorized,
		"GET /ui/":           http.StatusOK,
		"GET /ui/{file:.+}":  http.StatusNotFound,
	}
	n := 0
	for _, rt := range srv.routes() {
		if !isConsoleRoute(rt) {
			continue
		}
		n++
		code, ok := want[rt.key()]
		if !ok {
			t.Errorf("console route %s has no expectation here", rt.key())
			continue
		}
		path := strings.Replace(rt.path, "{file:.+}", "missing.js", 1)
		if rec := consoleReq(t, srv, rt.method, path, "", "", ""); rec.Code != code {
			t.Errorf("%s without credentials: %d %s, want %d", rt.key(), rec.Code, rec.Body, code)
		}
	}
	if n != len(want) {
		t.Errorf("%d console routes, want %d", n, len(want))
	}
}
