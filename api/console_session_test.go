package api

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// consoleReq sends a request with an optional session cookie and CSRF token.
func consoleReq(t *testing.T, h http.Handler, method, path, cookie, csrf, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: cookie})
	}
	if csrf != "" {
		req.Header.Set(csrfHeader, csrf)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// signInAs exchanges the fake's token of role for a session: its cookie value and JSON.
func signInAs(t *testing.T, h http.Handler, role store.Role) (string, sessionInfo) {
	t.Helper()
	rec := consoleReq(t, h, http.MethodPost, "/ui/session", "", "", `{"token":"`+bearer(role)+`"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("sign in as %s: %d %s", role, rec.Code, rec.Body)
	}
	var info sessionInfo
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookieName {
			return c.Value, info
		}
	}
	t.Fatalf("sign in as %s set no %s cookie: %v", role, sessionCookieName, rec.Header())
	return "", info
}

// wantError checks an error answer's status and that it is {"error": ...} containing substr.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, code int, substr string) {
	t.Helper()
	var e errorBody
	if rec.Code != code || json.Unmarshal(rec.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, substr) {
		t.Fatalf("got %d %s, want %d {\"error\": ...%q...}", rec.Code, rec.Body, code, substr)
	}
}

func TestConsoleSignInCookie(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	before := time.Now()
	rec := consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"`+bearer(store.RoleAuditor)+`"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
	var info sessionInfo
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Role != store.RoleAuditor || info.CSRF == "" {
		t.Fatalf("session %+v", info)
	}
	if d := info.Expires.Sub(before); d < sessionTTL-time.Minute || d > sessionTTL+time.Minute {
		t.Errorf("expires in %v, want %v", d, sessionTTL)
	}
	set := rec.Header().Get("Set-Cookie")
	for _, attr := range []string{sessionCookieName + "=", "Path=/", "Max-Age=43200", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, attr) {
			t.Errorf("Set-Cookie %q lacks %s", set, attr)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on plain HTTP", set)
	}
	if cs, err := srv.console.setting(f.s); err != nil || cs == nil || len(cs.Key) != 32 {
		t.Fatalf("console key after the first sign-in: %+v %v", cs, err)
	}

	// Under TLS the cookie is Secure.
	req := httptest.NewRequest(http.MethodPost, "/ui/session", strings.NewReader(`{"token":"`+bearer(store.RoleAdmin)+`"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.TLS = &tls.ConnectionState{}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if set := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusOK || !strings.Contains(set, "; Secure") {
		t.Fatalf("sign in under TLS: %d, Set-Cookie %q", rec.Code, set)
	}

	// The session JSON again, for the cookie.
	cookie, first := signInAs(t, srv, store.RoleRollout)
	rec = consoleReq(t, srv, http.MethodGet, "/ui/session", cookie, "", "")
	var again sessionInfo
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &again) != nil || again != first {
		t.Fatalf("GET /ui/session: %d %s, want %+v", rec.Code, rec.Body, first)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET /ui/session Cache-Control %q, want no-store", cc)
	}
}

func TestConsoleSignInRefusals(t *testing.T) {
	f := newFake(t)
	node := store.Token{ID: "nodetok", SecretHash: store.HashSecret("s-node"), Role: store.RoleNode, Child: "c1"}
	if err := f.s.CreateToken(f.next(), &node); err != nil {
		t.Fatal(err)
	}
	srv := New(f, Options{Limits: Limits{AuthFailPerMinute: 60, AuthFailBurst: 3}})
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"nodetok.s-node"}`), 403, "cannot sign in")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"admin.wrong"}`), 401, "invalid or revoked token")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"nodot"}`), 401, "malformed token")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":""}`), 401, "malformed token")
	// Failed sign-ins spend the same per-address budget as failed bearer tokens.
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"admin.wrong"}`), 429, "too many")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":1}`), 400, "")
	// A form on another site cannot send JSON's type: no sign-in with a token of its choosing.
	form := httptest.NewRequest(http.MethodPost, "/ui/session", strings.NewReader(`{"token":"`+bearer(store.RoleAdmin)+`"}`))
	form.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, form)
	wantError(t, rec, 400, "Content-Type: application/json")
	if rec.Header().Get("Set-Cookie") != "" {
		t.Error("a text/plain sign-in set a cookie")
	}
	wantError(t, consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"`+strings.Repeat("a", maxSignInBody)+`"}`), 413, "")
	rec = consoleReq(t, srv, http.MethodPost, "/ui/session", "", "", `{"token":"`+bearer(store.RoleAgent)+`"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("an agent signs in: %d %s", rec.Code, rec.Body)
	}
}

func TestConsoleCookieAuthAndCSRF(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{Importer: fakeImporter{}, Hierarchy: fakeHierarchy{}})
	admin, adminInfo := signInAs(t, srv, store.RoleAdmin)
	auditor, auditorInfo := signInAs(t, srv, store.RoleAuditor)

	if rec := consoleReq(t, srv, http.MethodGet, "/v1/status", auditor, "", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET with the auditor's cookie: %d %s", rec.Code, rec.Body)
	}
	body := `{"role":"agent","name":"from-console"}`
	wantError(t, consoleReq(t, srv, http.MethodPost, "/v1/tokens", admin, "", body), 403, "missing or invalid CSRF token")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/v1/tokens", admin, auditorInfo.CSRF, body), 403, "missing or invalid CSRF token")
	wantError(t, consoleReq(t, srv, http.MethodPost, "/v1/tokens", admin, adminInfo.CSRF+"x", body), 403, "missing or invalid CSRF token")
	if rec := consoleReq(t, srv, http.MethodPost, "/v1/tokens", admin, adminInfo.CSRF, body); rec.Code/100 != 2 {
		t.Fatalf("admin POST with cookie and CSRF token: %d %s", rec.Code, rec.Body)
	}
	// The API enforces roles as always: the auditor's forged write, CSRF token and all.
	wantError(t, consoleReq(t, srv, http.MethodPost, "/v1/tokens", auditor, auditorInfo.CSRF, body), 403, `role "auditor" may not`)
	wantError(t, consoleReq(t, srv, http.MethodPost, "/v1/replication/now", auditor, auditorInfo.CSRF, `{"scope":"policies"}`), 403, `role "auditor" may not`)
	wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/tokens", auditor, "", ""), 403, `role "auditor" may not`)

	// Revoking the token ends its sessions.
	if _, err := f.s.Token(nil, "auditor"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteToken(f.next(), "auditor"); err != nil {
		t.Fatal(err)
	}
	wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/status", auditor, "", ""), 401, "invalid console session")
}

func TestConsoleForgedCookies(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	auditor, _ := signInAs(t, srv, store.RoleAuditor)
	p64, m64, _ := strings.Cut(auditor, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(p64)
	mac, _ := base64.RawURLEncoding.DecodeString(m64)
	enc := base64.RawURLEncoding.EncodeToString

	flipped := append([]byte{}, mac...)
	flipped[0] ^= 1
	asAdmin := strings.Replace(string(payload), "auditor|", "admin|", 1)
	parts := strings.Split(string(payload), "|")
	longer := parts[0] + "|" + parts[1] + "|" + "99999999999"
	otherKey := encodeSession(make([]byte, 32), &store.Token{ID: "auditor", SecretHash: store.HashSecret("s-auditor")}, parts[1], time.Now().Add(time.Hour).Unix())
	for name, value := range map[string]string{
		"tampered mac":          p64 + "." + enc(flipped),
		"other token id":        enc([]byte(asAdmin)) + "." + m64,
		"longer expiry":         enc([]byte(longer)) + "." + m64,
		"signed with other key": otherKey,
		"no mac":                p64,
		"garbage":               "not-a-session",
		"bad base64":            "!!!." + m64,
		"too long":              strings.Repeat("a", maxCookieLen+1),
		"four fields":           enc([]byte(string(payload)+"|x")) + "." + m64,
		"unknown token":         enc([]byte("nobody|"+parts[1]+"|"+parts[2])) + "." + m64,
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/status", value, "", ""), 401, "console session")
			wantError(t, consoleReq(t, srv, http.MethodGet, "/ui/session", value, "", ""), 401, "console session")
		})
	}
	// Two session cookies are refused, not guessed between.
	req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: auditor})
	req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: auditor})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	wantError(t, rec, 401, "malformed console session cookie")

	// Expired: the same cookie, twelve hours and a second later.
	srv.console.now = func() time.Time { return time.Now().Add(sessionTTL + time.Second) }
	wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/status", auditor, "", ""), 401, "console session expired")
}

func TestConsoleSignOut(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	admin, info := signInAs(t, srv, store.RoleAdmin)
	other, _ := signInAs(t, srv, store.RoleAdmin)

	wantError(t, consoleReq(t, srv, http.MethodDelete, "/ui/session", admin, "", ""), 403, "missing or invalid CSRF token")
	wantError(t, consoleReq(t, srv, http.MethodDelete, "/ui/session", "", "", ""), 401, "")
	rec := consoleReq(t, srv, http.MethodDelete, "/ui/session", admin, info.CSRF, "")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", rec.Code, rec.Body)
	}
	if set := rec.Header().Get("Set-Cookie"); !strings.Contains(set, sessionCookieName+"=;") || !strings.Contains(set, "Max-Age=0") {
		t.Errorf("sign-out Set-Cookie %q does not clear the cookie", set)
	}
	wantError(t, consoleReq(t, srv, http.MethodGet, "/ui/session", admin, "", ""), 401, "signed out")
	wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/status", admin, "", ""), 401, "signed out")
	// A new server over the same state (another server of the site) refuses it too.
	srv2 := New(f, Options{})
	wantError(t, consoleReq(t, srv2, http.MethodGet, "/v1/status", admin, "", ""), 401, "signed out")
	// The token's other session goes on.
	if rec := consoleReq(t, srv2, http.MethodGet, "/v1/status", other, "", ""); rec.Code != http.StatusOK {
		t.Fatalf("the other session after a sign-out: %d %s", rec.Code, rec.Body)
	}
	// A bearer token has no session to sign out or show.
	req := httptest.NewRequest(http.MethodGet, "/ui/session", nil)
	req.Header.Set("Authorization", "Bearer "+bearer(store.RoleAdmin))
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	wantError(t, rec, 401, "no console session")
}

// TestConsoleRevokedBound: past its bound of signed-out sessions the key is replaced, which ends
// every session; the setting never holds more than the bound.
func TestConsoleRevokedBound(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	const maxRevoked = 40
	srv.console.maxRevoked = maxRevoked
	keep, _ := signInAs(t, srv, store.RoleAuditor)
	for i := range maxRevoked {
		c, info := signInAs(t, srv, store.RoleAuditor)
		if rec := consoleReq(t, srv, http.MethodDelete, "/ui/session", c, info.CSRF, ""); rec.Code != http.StatusNoContent {
			t.Fatalf("sign-out %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	cs, err := srv.console.setting(f.s)
	if err != nil || len(cs.Revoked) != maxRevoked {
		t.Fatalf("revoked %d, want %d (%v)", len(cs.Revoked), maxRevoked, err)
	}
	if rec := consoleReq(t, srv, http.MethodGet, "/v1/status", keep, "", ""); rec.Code != http.StatusOK {
		t.Fatalf("a session before the bound: %d", rec.Code)
	}
	c, info := signInAs(t, srv, store.RoleAuditor)
	if rec := consoleReq(t, srv, http.MethodDelete, "/ui/session", c, info.CSRF, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("sign-out past the bound: %d %s", rec.Code, rec.Body)
	}
	if cs, err = srv.console.setting(f.s); err != nil || len(cs.Revoked) != 0 {
		t.Fatalf("after the bound: %d revoked (%v), want a new key and none", len(cs.Revoked), err)
	}
	wantError(t, consoleReq(t, srv, http.MethodGet, "/v1/status", keep, "", ""), 401, "invalid console session")
}

// followerFake is a follower of a site whose leader is another API over the same store.
type followerFake struct {
	*fakeBackend
	leader string
}

func (followerFake) IsLeader() bool                                { return false }
func (ff followerFake) WaitLeader(context.Context) (string, error) { return ff.leader, nil }

// TestConsoleSessionOnFollower: a follower without a console key has its leader create one and
// issues the session itself; its sign-out is recorded by the leader; both servers honour both.
func TestConsoleSessionOnFollower(t *testing.T) {
	f := newFake(t)
	leader := New(f, Options{})
	ts := httptest.NewServer(leader)
	defer ts.Close()
	follower := New(followerFake{fakeBackend: f, leader: ts.URL}, Options{})

	cookie, info := signInAs(t, follower, store.RoleAdmin)
	if rec := consoleReq(t, leader, http.MethodGet, "/ui/session", cookie, "", ""); rec.Code != http.StatusOK {
		t.Fatalf("the follower's session at the leader: %d %s", rec.Code, rec.Body)
	}
	wantError(t, consoleReq(t, follower, http.MethodDelete, "/ui/session", cookie, "", ""), 403, "CSRF")
	rec := consoleReq(t, follower, http.MethodDelete, "/ui/session", cookie, info.CSRF, "")
	if rec.Code != http.StatusNoContent || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out at the follower: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	for name, h := range map[string]http.Handler{"leader": leader, "follower": follower} {
		t.Run(name, func(t *testing.T) {
			wantError(t, consoleReq(t, h, http.MethodGet, "/v1/status", cookie, "", ""), 401, "signed out")
		})
	}
	wantError(t, consoleReq(t, follower, http.MethodPost, "/ui/session", "", "", `{"token":"admin.bad"}`), 401, "invalid or revoked token")
}
