package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// TestRateLimiterBucket: a burst, then one request per 1/rate; addresses are independent; a
// nil limiter (rate 0) allows everything.
func TestRateLimiterBucket(t *testing.T) {
	l := newRateLimiter(60, 3) // one a second, bursts of 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if err := l.spend("a", "tries", now); err != nil {
			t.Fatalf("spend %d within the burst: %v", i, err)
		}
	}
	err := l.spend("a", "tries", now)
	var rl *rateLimitError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &rl) || rl.retryAfterSeconds() != 1 {
		t.Fatalf("spend over the burst: %v; want a rate limit with Retry-After 1", err)
	}
	if statusFor(err) != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", statusFor(err))
	}
	if err := l.spend("b", "tries", now); err != nil {
		t.Fatalf("another address was limited: %v", err)
	}
	if err := l.spend("a", "tries", now.Add(500*time.Millisecond)); err == nil {
		t.Fatal("half a token was spent")
	}
	if err := l.spend("a", "tries", now.Add(1100*time.Millisecond)); err != nil {
		t.Fatalf("a refilled token was refused: %v", err)
	}
	var off *rateLimiter = newRateLimiter(0, 5)
	if off != nil || off.spend("a", "tries", now) != nil {
		t.Fatal("a zero rate should disable the limit")
	}
}

// TestRateLimiterBoundedMap: many addresses never grow the limiter past maxTrackedClients, and
// an address that is still being limited is kept over idle ones.
func TestRateLimiterBoundedMap(t *testing.T) {
	l := newRateLimiter(60, 2)
	now := time.Unix(1000, 0)
	l.spend("attacker", "tries", now)
	l.spend("attacker", "tries", now)
	for i := range maxTrackedClients + 500 {
		now = now.Add(time.Millisecond)
		if err := l.spend(fmt.Sprintf("10.0.%d.%d", i/256, i%256), "tries", now); err != nil {
			t.Fatalf("a new address was limited: %v", err)
		}
		if n := l.size(); n > maxTrackedClients {
			t.Fatalf("limiter tracks %d addresses, cap %d", n, maxTrackedClients)
		}
	}
	if err := l.spend("attacker", "tries", now); err != nil {
		// It was evicted as the oldest (it refills meanwhile): allowed either way is fine as long
		// as the map is bounded. With one token a second it has refilled after 10 s anyway.
		t.Logf("attacker still limited: %v", err)
	}
}

// TestRateLimiterEvictsLeastRecentlySeen: at the cap, with no bucket refilled, the address
// seen longest ago is forgotten and the ones seen since are kept.
func TestRateLimiterEvictsLeastRecentlySeen(t *testing.T) {
	l := newRateLimiter(0.001, 2) // nothing refills within the test
	now := time.Unix(1000, 0)
	spendAll := func(key string) {
		for range 2 {
			if err := l.spend(key, "tries", now); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		}
	}
	spendAll("oldest")
	for i := range maxTrackedClients - 1 {
		now = now.Add(time.Millisecond)
		spendAll(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	now = now.Add(time.Millisecond)
	spendAll("newcomer")
	if _, ok := l.buckets["oldest"]; ok {
		t.Error("the least recently seen address was kept at the cap")
	}
	if _, ok := l.buckets["10.0.0.1"]; !ok {
		t.Error("the second least recently seen address was evicted instead of the least")
	}
	if err := l.spend("10.0.0.1", "tries", now); err == nil {
		t.Error("a kept address that spent its burst was not limited")
	}
}

// TestLimitListener: connections over an address's cap are closed at once; a closed connection
// frees its slot.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(raw, 2, nil).(*limitListener)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	server := []net.Conn{}
	for range 2 {
		dial()
		server = append(server, <-accepted)
	}
	over := dial()
	over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection over the cap was not closed: %v", err)
	}
	if n := ln.openConns("127.0.0.1"); n != 2 {
		t.Fatalf("%d open connections counted, want 2", n)
	}
	select {
	case c := <-accepted:
		t.Fatalf("connection over the cap reached the server: %v", c.RemoteAddr())
	default:
	}
	server[0].Close()
	server[0].Close() // a second Close gives back nothing more
	if n := ln.openConns("127.0.0.1"); n != 1 {
		t.Fatalf("%d open connections after a close, want 1", n)
	}
	dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("a connection under the cap was not accepted")
	}
	if LimitListener(raw, 0, nil) != raw {
		t.Fatal("a cap of 0 should leave the listener alone")
	}
}

// isTimeout tells a read deadline (the connection was left open) from EOF or a reset (closed).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestJoinAndAuthFailureLimits: the join route and failed authentication are limited per client
// address with 429, Retry-After and a JSON error; a valid token is never limited, and another
// address has its own budget.
func TestJoinAndAuthFailureLimits(t *testing.T) {
	srv := New(newFake(t), Options{Hierarchy: fakeHierarchy{},
		Limits: Limits{JoinPerMinute: 1, JoinBurst: 2, AuthFailPerMinute: 1, AuthFailBurst: 2}})
	send := func(from, method, path, token, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = from + ":4000"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	join := `{"name":"emea","join_token":"a.b"}`
	for i, want := range []int{200, 200, 429, 429} {
		w := send("192.0.2.1", "POST", "/v1/hierarchy/v1/join", "", join)
		if w.Code != want {
			t.Fatalf("join %d: status %d, want %d: %s", i, w.Code, want, w.Body)
		}
		if want == 429 {
			if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("join %d: Retry-After %q", i, ra)
			}
			if !strings.Contains(w.Body.String(), `"error": "too many requests: too many join attempts from this address; retry after`) {
				t.Errorf("join %d: body %s", i, w.Body)
			}
		}
	}
	if w := send("192.0.2.2", "POST", "/v1/hierarchy/v1/join", "", join); w.Code != 200 {
		t.Fatalf("join from another address: %d %s", w.Code, w.Body)
	}

	for i, want := range []int{401, 401, 429, 429} {
		w := send("192.0.2.3", "GET", "/v1/status", "admin.wrong-secret", "")
		if w.Code != want {
			t.Fatalf("bad token %d: status %d, want %d: %s", i, w.Code, want, w.Body)
		}
		if want == 429 && w.Header().Get("Retry-After") == "" {
			t.Errorf("bad token %d: no Retry-After", i)
		}
	}
	if w := send("192.0.2.3", "GET", "/v1/status", "", ""); w.Code != 429 {
		t.Fatalf("no token while limited: %d, want 429", w.Code)
	}
	for i := range 20 {
		if w := send("192.0.2.3", "GET", "/v1/status", bearer(store.RoleAdmin), ""); w.Code != 200 {
			t.Fatalf("valid token %d from a limited address: %d %s", i, w.Code, w.Body)
		}
	}
	if w := send("192.0.2.4", "GET", "/v1/status", "admin.wrong-secret", ""); w.Code != 401 {
		t.Fatalf("bad token from another address: %d, want 401", w.Code)
	}
	// A wrong role is not a failed authentication.
	for range 5 {
		if w := send("192.0.2.5", "POST", "/v1/tokens", bearer(store.RoleAgent), `{"role":"admin"}`); w.Code != 403 {
			t.Fatalf("agent creating a token: %d, want 403", w.Code)
		}
	}
}

// TestRouteDeadlinesNameRoutes: every extended deadline belongs to a route of the table.
func TestRouteDeadlinesNameRoutes(t *testing.T) {
	srv := New(newFake(t), Options{})
	table := map[string]bool{}
	for _, rt := range srv.routes() {
		table[rt.key()] = true
	}
	for key := range routeDeadlines {
		if !table[key] {
			t.Errorf("routeDeadlines names %q, which is not a route", key)
		}
	}
	if !table[joinRoute] {
		t.Errorf("joinRoute %q is not a route", joinRoute)
	}
}

// TestExtendDeadlinesOutlivesServerTimeouts: with read and write timeouts of 300 ms, a long-poll
// route answers after a second, while an ordinary route's request is cancelled by the server's
// read deadline.
func TestExtendDeadlinesOutlivesServerTimeouts(t *testing.T) {
	longPoll := route{method: http.MethodGet, path: "/v1/hierarchy/v1/catalog"}
	plain := route{method: http.MethodGet, path: "/v1/status"}
	mux := http.NewServeMux()
	for _, rt := range []route{longPoll, plain} {
		mux.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := extendDeadlines(w, rt); err != nil {
				t.Errorf("extend deadlines of %s: %v", rt.key(), err)
			}
			select {
			case <-time.After(time.Second):
				w.Write([]byte("done"))
			case <-r.Context().Done():
			}
		})
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}

	resp, err := client.Get(srv.URL + longPoll.path)
	if err != nil {
		t.Fatalf("long-poll: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "done" {
		t.Fatalf("long-poll answered %q, want done", body)
	}
	start := time.Now()
	resp, err = client.Get(srv.URL + plain.path)
	t.Logf("ordinary route: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) == "done" {
			t.Fatal("an ordinary route outlived the server's timeouts")
		}
	}
}
