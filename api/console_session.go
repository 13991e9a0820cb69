package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/node"
	"patchtree/store"
)

// Console sessions are stateless signed cookies: HMAC-SHA256 with the site's console key over
// the token id, the session id, the expiry and the token's secret hash. Every server of a site
// reads the key from the replicated state, so a session works on each of them; each request
// re-reads the token row, so revoking the token ends its sessions; signing out records the
// session id as revoked (until it expires) in the replicated state.
const (
	sessionCookieName = "patchtree_session"
	csrfHeader        = "X-CSRF-Token"
	// settingConsole is the settings key of the console's key and revoked sessions.
	settingConsole = "console"
	// sessionTTL is how long a console session lasts.
	sessionTTL = 12 * time.Hour
	// maxCookieLen bounds the session cookie parsed: a valid one is about 110 bytes.
	maxCookieLen = 256
	// maxRevoked bounds the revoked sessions kept in the replicated state; one more sign-out
	// replaces the key instead, which ends every session of the site.
	maxRevoked = 1024
	// consoleSyncWait bounds how long a follower waits to see its leader's console write.
	consoleSyncWait = 10 * time.Second
	// maxSignInBody caps POST /ui/session: {"token": "..."}.
	maxSignInBody = 4 << 10
)

var (
	errNoSession        = fmt.Errorf("%w: no console session (sign in with POST /ui/session)", ErrUnauthorized)
	errMalformedSession = fmt.Errorf("%w: malformed console session cookie; sign in again", ErrUnauthorized)
	errInvalidSession   = fmt.Errorf("%w: invalid console session; sign in again", ErrUnauthorized)
)

// consoleSetting is the replicated console state: the site key and the revoked sessions (session
// id to its expiry in Unix seconds).
type consoleSetting struct {
	Key     []byte           `json:"key"`
	Revoked map[string]int64 `json:"revoked,omitempty"`
}

// consoleState is the API's console state: a cache of the decoded console setting, the event
// streams' bound, and the end of streams at shutdown.
type consoleState struct {
	// mu serialises the leader's read-modify-write of the console setting.
	mu    sync.Mutex
	cache atomic.Pointer[consoleCache]
	now   func() time.Time

	pingEvery  time.Duration // the event streams' keep-alive comment
	maxRevoked int           // signed-out sessions kept before the key is replaced
	streams    chan struct{} // one slot per open event stream
	closing    chan struct{} // closed when the HTTP server shuts down
	closeOnce  sync.Once
	hooked     sync.Map // *http.Server whose shutdown ends the streams
}

// consoleCache is the console setting as decoded from one store at one index.
type consoleCache struct {
	st      *store.Store
	index   uint64
	setting consoleSetting
}

func newConsoleState() *consoleState {
	return &consoleState{now: time.Now, pingEvery: eventPing, maxRevoked: maxRevoked, streams: make(chan struct{}, maxEventStreams), closing: make(chan struct{})}
}

// session is a verified console session.
type session struct {
	tokenID string
	id      string
	expires time.Time
	key     []byte
}

// sessionInfo is the JSON of GET and POST /ui/session.
type sessionInfo struct {
	Role    store.Role `json:"role"`
	Name    string     `json:"name"`
	CSRF    string     `json:"csrf"`
	Expires time.Time  `json:"expires"`
}

// setting reads the console setting of st (nil when the site has none yet), decoding it once per
// change.
func (c *consoleState) setting(st *store.Store) (*consoleSetting, error) {
	row, err := st.Setting(nil, settingConsole)
	if err != nil || row == nil {
		return nil, err
	}
	if cached := c.cache.Load(); cached != nil && cached.st == st && cached.index == row.ModifyIndex {
		return &cached.setting, nil
	}
	var cs consoleSetting
	if err := json.Unmarshal(row.Value, &cs); err != nil {
		return nil, fmt.Errorf("decode console setting: %w", err)
	}
	if len(cs.Key) != sha256.Size {
		return nil, fmt.Errorf("console setting: key of %d bytes, want %d", len(cs.Key), sha256.Size)
	}
	c.cache.Store(&consoleCache{st: st, index: row.ModifyIndex, setting: cs})
	return &cs, nil
}

// mac is the signature of a session for the token's current secret hash.
func sessionMAC(key []byte, tokenID, id string, expires int64, secretHash string) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "patchtree-session-v1\n%s\n%s\n%d\n%s", tokenID, id, expires, secretHash)
	return m.Sum(nil)
}

// csrfToken is the CSRF token of a session: it proves that the caller read the session JSON.
func csrfToken(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "csrf|%s", id)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// encodeSession is the cookie value of a session.
func encodeSession(key []byte, tok *store.Token, id string, expires int64) string {
	payload := tok.ID + "|" + id + "|" + strconv.FormatInt(expires, 10)
	mac := sessionMAC(key, tok.ID, id, expires, tok.SecretHash)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// sessionCookie returns the request's session cookie value, if it sent one.
func sessionCookie(r *http.Request) (string, bool) {
	cookies := r.CookiesNamed(sessionCookieName)
	if len(cookies) == 0 {
		return "", false
	}
	if len(cookies) > 1 {
		return "", true // refused by verifySession as malformed
	}
	return cookies[0].Value, true
}

// verifySession checks a session cookie against the site's state: signature, expiry, sign-out
// and the token, which must still exist with the same secret.
func (s *Server) verifySession(value string) (*session, *store.Token, error) {
	if value == "" || len(value) > maxCookieLen {
		return nil, nil, errMalformedSession
	}
	p64, m64, ok := strings.Cut(value, ".")
	if !ok {
		return nil, nil, errMalformedSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || len(mac) != sha256.Size {
		return nil, nil, errMalformedSession
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 22 {
		return nil, nil, errMalformedSession
	}
	expires, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || expires <= 0 {
		return nil, nil, errMalformedSession
	}
	st := s.backend.State()
	cs, err := s.console.setting(st)
	if err != nil {
		return nil, nil, err
	}
	if cs == nil {
		return nil, nil, errInvalidSession
	}
	tok, err := st.Token(nil, parts[0])
	if err != nil {
		return nil, nil, err
	}
	if tok == nil {
		// The same answer as a bad signature: a forged cookie learns nothing about token ids.
		return nil, nil, errInvalidSession
	}
	if !hmac.Equal(mac, sessionMAC(cs.Key, tok.ID, parts[1], expires, tok.SecretHash)) {
		return nil, nil, errInvalidSession
	}
	if s.console.now().Unix() >= expires {
		return nil, nil, fmt.Errorf("%w: console session expired; sign in again", ErrUnauthorized)
	}
	if _, revoked := cs.Revoked[parts[1]]; revoked {
		return nil, nil, fmt.Errorf("%w: console session signed out; sign in again", ErrUnauthorized)
	}
	return &session{tokenID: tok.ID, id: parts[1], expires: time.Unix(expires, 0).UTC(), key: cs.Key}, tok, nil
}

// sessionAuth authenticates a request by its session cookie. A request that may change state
// must also carry the session's CSRF token in X-CSRF-Token.
func (s *Server) sessionAuth(r *http.Request, value string) (*store.Token, error) {
	sess, tok, err := s.verifySession(value)
	if err != nil {
		return nil, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(csrfHeader)
		if got == "" || !hmac.Equal([]byte(got), []byte(csrfToken(sess.key, sess.id))) {
			return nil, fmt.Errorf("%w: missing or invalid CSRF token", ErrForbidden)
		}
	}
	return tok, nil
}

// requestSession is the verified session of a request authenticated by its cookie.
func (s *Server) requestSession(r *http.Request) (*session, *store.Token, error) {
	if r.Header.Get("Authorization") != "" {
		return nil, nil, errNoSession
	}
	value, ok := sessionCookie(r)
	if !ok {
		return nil, nil, errNoSession
	}
	return s.verifySession(value)
}

func (s *Server) info(sess *session, tok *store.Token) sessionInfo {
	return sessionInfo{Role: tok.Role, Name: tok.Name, CSRF: csrfToken(sess.key, sess.id), Expires: sess.expires}
}

// getSession answers GET /ui/session: the session of the request's cookie.
func (s *Server) getSession(r *http.Request) (int, any, error) {
	sess, tok, err := s.requestSession(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		w.Header().Set("Cache-Control", "no-store") // it carries the CSRF token
		writeJSON(w, http.StatusOK, s.info(sess, tok))
	}), nil
}

// signIn answers POST /ui/session: an API token exchanged for a session cookie. A follower of a
// site without a console key yet asks its leader to create one, then issues the session itself.
//
// The body must be sent as application/json: a form on another site cannot send that type, so it
// cannot sign a browser in with a token of its choosing (login CSRF).
func (s *Server) signIn(r *http.Request) (int, any, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return 0, nil, fmt.Errorf("%w: POST /ui/session takes Content-Type: application/json", ErrBadRequest)
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, bodyError(err)
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeObject(bytes.NewReader(raw), &req); err != nil {
		return 0, nil, err
	}
	if err := s.waitReady(r); err != nil {
		return 0, nil, err
	}
	tok, err := s.tokenOf(req.Token)
	if err != nil {
		return 0, nil, s.limitAuthFailure(r, err)
	}
	if tok.Role == store.RoleNode || tok.Role == store.RoleServer {
		return 0, nil, fmt.Errorf("%w: a %s token cannot sign in to the console", ErrForbidden, tok.Role)
	}
	cs, err := s.console.setting(s.backend.State())
	if err != nil {
		return 0, nil, err
	}
	if cs == nil {
		if !s.backend.IsLeader() {
			r.Body = io.NopCloser(bytes.NewReader(raw))
			return s.viaLeader(r, http.StatusOK, func(*consoleSetting) bool { return true },
				func(cs *consoleSetting) (int, any, error) { return s.issueSession(r, cs, tok) })
		}
		if cs, err = s.createConsoleKey(); err != nil {
			return 0, nil, err
		}
	}
	return s.issueSession(r, cs, tok)
}

// issueSession sets a new session cookie for tok and answers its JSON.
func (s *Server) issueSession(r *http.Request, cs *consoleSetting, tok *store.Token) (int, any, error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return 0, nil, fmt.Errorf("session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(rnd[:])
	expires := s.console.now().Add(sessionTTL).Unix()
	cookie := &http.Cookie{Name: sessionCookieName, Value: encodeSession(cs.Key, tok, id, expires), Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
	sess := &session{tokenID: tok.ID, id: id, expires: time.Unix(expires, 0).UTC(), key: cs.Key}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		http.SetCookie(w, cookie)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, s.info(sess, tok))
	}), nil
}

// signOut answers DELETE /ui/session: the session is recorded as revoked in the replicated state
// (by the leader; a follower forwards and waits until its own state has it) and its cookie cleared.
// The route is public in the table: it authenticates here, by the session cookie and its CSRF
// token only. Signing out changes no administration and writes no audit entry.
func (s *Server) signOut(r *http.Request) (int, any, error) {
	if err := s.waitReady(r); err != nil {
		return 0, nil, err
	}
	if _, err := s.authorize(r, anyRole); err != nil {
		return 0, nil, s.limitAuthFailure(r, err)
	}
	sess, _, err := s.requestSession(r)
	if err != nil {
		return 0, nil, err
	}
	if !s.backend.IsLeader() {
		return s.viaLeader(r, http.StatusNoContent, func(cs *consoleSetting) bool {
			_, revoked := cs.Revoked[sess.id]
			return revoked || !bytes.Equal(cs.Key, sess.key)
		}, func(*consoleSetting) (int, any, error) {
			return http.StatusNoContent, rawResponse(clearSession(r)), nil
		})
	}
	if err := s.revokeSession(sess); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, rawResponse(clearSession(r)), nil
}

// clearSession answers 204 with the session cookie cleared.
func clearSession(r *http.Request) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	}
}

// createConsoleKey writes the site's console key (leader only), unless a concurrent sign-in did.
func (s *Server) createConsoleKey() (*consoleSetting, error) {
	s.console.mu.Lock()
	defer s.console.mu.Unlock()
	st := s.backend.State()
	if cs, err := s.console.setting(st); err != nil || cs != nil {
		return cs, err
	}
	cs, err := newConsoleSetting()
	if err != nil {
		return nil, err
	}
	if _, err := s.backend.PutSetting(settingConsole, cs); err != nil {
		return nil, fmt.Errorf("write the console key: %w", err)
	}
	return s.console.setting(s.backend.State())
}

func newConsoleSetting() (*consoleSetting, error) {
	key := make([]byte, sha256.Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("console key: %w", err)
	}
	return &consoleSetting{Key: key}, nil
}

// revokeSession records a signed-out session until its expiry (leader only). Expired entries are
// dropped; past maxRevoked the key is replaced, which ends every session of the site.
func (s *Server) revokeSession(sess *session) error {
	s.console.mu.Lock()
	defer s.console.mu.Unlock()
	cur, err := s.console.setting(s.backend.State())
	if err != nil {
		return err
	}
	if cur == nil || !bytes.Equal(cur.Key, sess.key) {
		return nil // the key changed: the session is already unusable
	}
	now := s.console.now().Unix()
	next := &consoleSetting{Key: cur.Key, Revoked: map[string]int64{}}
	for id, exp := range cur.Revoked {
		if exp > now {
			next.Revoked[id] = exp
		}
	}
	next.Revoked[sess.id] = sess.expires.Unix()
	if len(next.Revoked) > s.console.maxRevoked {
		s.logger.Warn("console: more signed-out sessions than kept; replacing the console key ends every session", "kept", s.console.maxRevoked)
		if next, err = newConsoleSetting(); err != nil {
			return err
		}
	}
	if _, err := s.backend.PutSetting(settingConsole, next); err != nil {
		return fmt.Errorf("record the sign-out: %w", err)
	}
	return nil
}

// viaLeader forwards a console write to the leader and, when it answers want, waits until this
// server's state shows the write (done), then answers as this server (finish): it issues the
// session itself (sign-in) or clears the cookie (sign-out). Any other answer is passed on.
func (s *Server) viaLeader(r *http.Request, want int, done func(*consoleSetting) bool,
	finish func(*consoleSetting) (int, any, error)) (int, any, error) {
	rec := &recordedResponse{header: http.Header{}}
	s.forward(rec, r)
	if rec.code != want {
		return 0, rawResponse(rec.replay), nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), consoleSyncWait)
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		st := s.backend.State()
		if _, err := st.Setting(ws, settingConsole); err != nil {
			return 0, nil, err
		}
		cs, err := s.console.setting(st)
		if err != nil {
			return 0, nil, err
		}
		if cs != nil && done(cs) {
			return finish(cs)
		}
		ws.Add(st.AbandonCh())
		if err := ws.WatchCtx(ctx); err != nil {
			return 0, nil, fmt.Errorf("%w: %s did not apply the leader's console write within %s: %w", node.ErrNotReady, s.backend.ID(), consoleSyncWait, err)
		}
	}
}

// recordedResponse keeps a small forwarded answer to pass on or discard.
type recordedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (rr *recordedResponse) Header() http.Header { return rr.header }

func (rr *recordedResponse) WriteHeader(code int) {
	if rr.code == 0 {
		rr.code = code
	}
}

func (rr *recordedResponse) Write(p []byte) (int, error) {
	if rr.code == 0 {
		rr.code = http.StatusOK
	}
	if rr.body.Len()+len(p) > 64<<10 {
		return 0, fmt.Errorf("forwarded console answer over 64 KiB")
	}
	return rr.body.Write(p)
}

// replay writes the recorded answer, without the leader's cookie.
func (rr *recordedResponse) replay(w http.ResponseWriter) {
	for k, v := range rr.header {
		if k != "Set-Cookie" {
			w.Header()[k] = v
		}
	}
	code := rr.code
	if code == 0 {
		code = http.StatusBadGateway
	}
	w.WriteHeader(code)
	w.Write(rr.body.Bytes())
}
