package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// TestStopDemoAfterFirstExitWatch stops sites whose exits a first-exit watch is also waiting
// for, as the demo does on Ctrl-C: stopping must not wait for an exit the watch took.
func TestStopDemoAfterFirstExitWatch(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	var sites []*demoSite
	for _, name := range []string{"hq", "emea"} {
		s := &demoSite{name: name, dir: t.TempDir(), cmd: exec.Command("sleep", "60")}
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.watchExit(nil)
		sites = append(sites, s)
	}
	t.Cleanup(func() {
		for _, s := range sites {
			s.cmd.Process.Kill()
		}
	})
	first := firstExit(sites)
	done := make(chan struct{})
	go func() {
		stopDemo(sites)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("stopDemo did not return after the sites exited")
	}
	select {
	case err := <-first:
		if err == nil {
			t.Error("first exit reported no error")
		}
	case <-time.After(time.Second):
		t.Error("the first-exit watch saw no exit")
	}
}

// TestDemoConsole: the demo prints the console's address and an admin sign-in link only when the
// parent serves the console page and the admin token signs in to it.
func TestDemoConsole(t *testing.T) {
	var mu sync.Mutex // the test's answers, changed between requests
	page, role := "<!doctype html>", "admin"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if page == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.HandleFunc("POST /ui/session", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var req struct {
			Token string `json:"token"`
		}
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Token != "id1.secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid or revoked token"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"role":%q,"name":"initial admin","csrf":"c","expires":"2026-12-03T10:00:00Z"}`, role)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hq := &demoSite{name: "hq", url: srv.URL, token: "id1.secret"}

	var out bytes.Buffer
	if err := demoConsole(&out, hq); err != nil {
		t.Fatal(err)
	}
	want := "\npatchtree demo: console " + srv.URL + "/ui/\npatchtree demo: sign in as admin with " + srv.URL + "/ui/#token=id1.secret\n"
	if out.String() != want {
		t.Errorf("demo console lines:\n%q\nwant\n%q", out.String(), want)
	}
	for name, c := range map[string]struct{ page, role, token string }{
		"no console page":   {"", "admin", "id1.secret"},
		"token refused":     {"<!doctype html>", "admin", "id1.wrong"},
		"not an admin role": {"<!doctype html>", "auditor", "id1.secret"},
	} {
		mu.Lock()
		page, role, hq.token = c.page, c.role, c.token
		mu.Unlock()
		out.Reset()
		if err := demoConsole(&out, hq); err == nil || out.Len() != 0 {
			t.Errorf("%s: demoConsole printed %q, error %v; want an error and nothing printed", name, out.String(), err)
		}
	}
}
