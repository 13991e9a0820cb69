package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"patchtree/replication/policy"
	"patchtree/store"
)

func TestEventTablesAreStoreTables(t *testing.T) {
	f := newFake(t)
	rows, err := f.s.TableRows()
	if err != nil {
		t.Fatal(err)
	}
	for _, et := range eventTables {
		if _, ok := rows[et.table]; !ok {
			t.Errorf("eventTables names %q, which is no table of the store", et.table)
		}
		if !slices.Contains(eventTopics, et.topic) {
			t.Errorf("table %s has topic %q, which is not in eventTopics", et.table, et.topic)
		}
	}
}

// sseEvent is one event read from a stream ("" name for a comment).
type sseEvent struct {
	name, data, comment string
	at                  time.Time
}

// openEvents opens GET /ui/events with a session cookie and returns its events as they come.
func openEvents(t *testing.T, ctx context.Context, url, cookie string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/ui/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				ev.at = time.Now()
				ch <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ": "):
				ev.comment = strings.TrimPrefix(line, ": ")
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return resp, ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return sseEvent{}
}

func changeOf(t *testing.T, ev sseEvent) (index uint64, topics []string) {
	t.Helper()
	var d struct {
		Index  uint64   `json:"index"`
		Topics []string `json:"topics"`
	}
	if ev.name != "change" || json.Unmarshal([]byte(ev.data), &d) != nil {
		t.Fatalf("want a change event, got %+v", ev)
	}
	return d.Index, d.Topics
}

// TestConsoleEvents: hello with the state's index, then one change event per burst of writes,
// naming their topics, at most one per 250 ms, and keep-alive pings; under a write timeout far
// shorter than the stream.
func TestConsoleEvents(t *testing.T) {
	f := newFake(t)
	f.addBulletin(t, "B1")
	srv := New(f, Options{})
	srv.console.pingEvery = 400 * time.Millisecond
	cookie, _ := signInAs(t, srv, store.RoleAuditor)
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	ts.Start()
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, events := openEvents(t, ctx, ts.URL, cookie)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /ui/events: %d %s", resp.StatusCode, ct)
	}
	hello := nextEvent(t, events, 5*time.Second)
	if want := fmt.Sprintf(`{"index":%d}`, f.s.LatestIndex()); hello.name != "hello" || hello.data != want {
		t.Fatalf("hello %+v, want data %s", hello, want)
	}

	// Past the server's write timeout, a policy is created: one event names policies.
	time.Sleep(500 * time.Millisecond)
	if _, err := f.CreatePolicy(store.Actor{Name: "t"}, policy.Input{Bulletins: []string{"B1"}}); err != nil {
		t.Fatal(err)
	}
	var ev sseEvent
	for ev = nextEvent(t, events, 5*time.Second); ev.name == ""; ev = nextEvent(t, events, 5*time.Second) {
		if ev.comment != "ping" {
			t.Fatalf("comment %q, want ping", ev.comment)
		}
	}
	idx, topics := changeOf(t, ev)
	if !slices.Contains(topics, "policies") || idx != f.s.LatestIndex() {
		t.Fatalf("change %v at %d, want policies at %d", topics, idx, f.s.LatestIndex())
	}

	// A burst of writes to two topics within the coalescing window: the next events together
	// name both, and no two come closer than 250 ms.
	f.mu.Lock()
	err := f.s.SetLanguages(f.next(), store.LanguagesSite, []string{"en", "de"})
	if err == nil {
		err = f.s.ChangeSeverityLevels(f.next(), &store.SeverityChange{Op: "add", Name: "Urgent"})
	}
	f.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := ev.at
	deadline := time.Now().Add(5 * time.Second)
	for !(seen["sites"] && seen["catalog"]) && time.Now().Before(deadline) {
		ev := nextEvent(t, events, 5*time.Second)
		if ev.name == "" {
			continue
		}
		_, topics := changeOf(t, ev)
		for _, tp := range topics {
			seen[tp] = true
		}
		if gap := ev.at.Sub(last); gap < eventCoalesce-50*time.Millisecond {
			t.Errorf("events %v apart, want at least %v", gap, eventCoalesce)
		}
		last = ev.at
	}
	if !seen["sites"] || !seen["catalog"] {
		t.Fatalf("topics seen %v, want sites and catalog", seen)
	}
	// Idle: pings only.
	for range 2 {
		if ev := nextEvent(t, events, 5*time.Second); ev.comment != "ping" {
			t.Fatalf("idle stream sent %+v, want a ping", ev)
		}
	}
}

// TestConsoleEventsEnd: a restore (the store abandoned) and the server's shutdown end streams;
// past maxEventStreams a new stream is refused.
func TestConsoleEventsEnd(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	cookie, _ := signInAs(t, srv, store.RoleAuditor)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	// Every slot taken: refused with 429.
	for range maxEventStreams {
		srv.console.streams <- struct{}{}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/ui/events", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too many open console event streams") {
		t.Fatalf("stream over the bound: %d %s", resp.StatusCode, body)
	}
	for range maxEventStreams {
		<-srv.console.streams
	}

	_, events := openEvents(t, context.Background(), ts.URL, cookie)
	nextEvent(t, events, 5*time.Second)
	f.s.Abandon()
	waitEnd(t, events, "a restore")

	f2 := newFake(t)
	srv2 := New(f2, Options{})
	cookie2, _ := signInAs(t, srv2, store.RoleAuditor)
	ts2 := httptest.NewServer(srv2)
	defer ts2.Close()
	_, events = openEvents(t, context.Background(), ts2.URL, cookie2)
	nextEvent(t, events, 5*time.Second)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts2.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with an open stream", d)
	}
	waitEnd(t, events, "shutdown")
}

func waitEnd(t *testing.T, events <-chan sseEvent, what string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("the stream did not end after %s", what)
		}
	}
}

func TestChangedTopics(t *testing.T) {
	before := make([]uint64, len(eventTables))
	after := slices.Clone(before)
	for i, et := range eventTables {
		switch et.table {
		case "audit":
			after[i] = 9
		case "bulletins":
			after[i] = 7
		case "children":
			after[i] = 8
		}
	}
	topics, top := changedTopics(before, after)
	if !slices.Equal(topics, []string{"catalog", "sites", "audit"}) || top != 9 {
		t.Fatalf("topics %v top %d", topics, top)
	}
}
