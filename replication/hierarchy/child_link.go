package hierarchy

// The child's link to its parent: joining with the one-time token, telling permanent refusals
// from transient errors, and the one request path every call to the parent takes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/store"
)

// newInstanceID is a random id for this process's requests to the parent.
func newInstanceID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// backoff sleeps for attempt's back-off (1s doubling to 60s, with jitter); false if ctx ended.
func backoff(ctx context.Context, attempt int) bool {
	d := time.Second << min(attempt, 6)
	if d > time.Minute {
		d = time.Minute
	}
	d = d/2 + rand.N(d/2+1)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (c *Child) link() (*Link, error) {
	row, err := c.backend.State().Setting(nil, SettingParent)
	if err != nil || row == nil {
		return nil, err
	}
	var l Link
	if err := json.Unmarshal(row.Value, &l); err != nil {
		return nil, fmt.Errorf("decode parent link: %w", err)
	}
	return &l, nil
}

// ensureJoined returns the link to run: the stored one (whichever server recorded it), or one
// obtained by exchanging this server's join token, also when the stored link was obtained with
// another join token (a rotated credential; the child keeps its replica, cursors and
// compliance sequence). A site with no link and a server without --parent waits for a link to
// be recorded (not-configured). Transient errors are retried with back-off; a permanent one
// stops the link (failed).
func (c *Child) ensureJoined(ctx context.Context) (*Link, error) {
	for attempt := 0; ; attempt++ {
		l, err := c.link()
		if err == nil && l != nil && !c.newJoinToken(l) {
			if c.cfg.ParentURL != "" && !l.knows(c.cfg.ParentURL) {
				// This server's --parent is none of the link's addresses: the parent moved, or
				// the operator points the site elsewhere. The credential decides.
				moved := *l
				moved.URL, moved.SiteURLs, moved.Direct = c.cfg.ParentURL, nil, false
				if _, err := c.backend.PutSetting(SettingParent, &moved); err != nil {
					return nil, c.fail(fmt.Errorf("store the parent link: %w", err))
				}
				c.cfg.Logger.Warn("--parent is not an address of the site's parent link; the link now starts from it",
					"parent", c.cfg.ParentURL, "was", l.URL)
				l = &moved
			}
			return l, nil
		}
		if err == nil && l == nil && c.cfg.ParentURL == "" {
			if !c.waitConfigured(ctx) {
				return nil, ctx.Err()
			}
			continue
		}
		stored := l
		if err == nil {
			l, err = c.join(ctx, stored)
		}
		if err == nil {
			return l, nil
		}
		if stored != nil && stored.knows(c.joinURL(stored)) && stored.JoinTokenHash == "" && isPermanent(err) {
			// A link from before join tokens were recorded, and a --join-token the parent no
			// longer takes: the one this link was made with. Keep the stored credential.
			stored.JoinTokenHash = store.HashSecret(c.cfg.JoinToken)
			if _, err := c.backend.PutSetting(SettingParent, stored); err != nil {
				return nil, c.fail(fmt.Errorf("store the parent link: %w", err))
			}
			c.cfg.Logger.Info("the join token was already used; keeping the stored credential", "parent", stored.URL)
			return stored, nil
		}
		if isPermanent(err) {
			return nil, c.fail(err)
		}
		c.setErr(err)
		c.cfg.Logger.Warn("joining the parent failed; retrying", "parent", c.joinURL(stored), "error", err)
		if !backoff(ctx, attempt) {
			return nil, ctx.Err()
		}
	}
}

// errNotConfigured is the status of a site with no parent link on a server without --parent.
var errNotConfigured = errors.New("no parent link: the site has none in its state and this server was started without --parent " +
	"(a server started with --parent URL --join-token TOKEN records it when it leads)")

// waitConfigured shows the link as not configured and waits until a link is recorded; false
// if ctx ended first.
func (c *Child) waitConfigured(ctx context.Context) bool {
	c.mu.Lock()
	first := c.state.State != LinkNotConfigured
	c.state.State, c.state.Error = LinkNotConfigured, errNotConfigured.Error()
	c.mu.Unlock()
	c.saveState()
	if first {
		c.cfg.Logger.Warn("the parent link is not configured; waiting for it to be recorded in the site's state", "error", errNotConfigured)
	}
	for {
		ws := memdb.NewWatchSet()
		row, err := c.backend.State().Setting(ws, SettingParent)
		if err == nil && row != nil {
			c.mu.Lock()
			c.state.State, c.state.Error = LinkJoining, ""
			c.mu.Unlock()
			return true
		}
		ws.Add(c.backend.State().AbandonCh())
		if err := ws.WatchCtx(ctx); err != nil {
			return false
		}
	}
}

// activeLink is the link in use (nil before one is).
func (c *Child) activeLink() *Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// joinURL is where a join goes: this server's --parent, else the stored link's.
func (c *Child) joinURL(stored *Link) string {
	if c.cfg.ParentURL == "" && stored != nil {
		return stored.URL
	}
	return c.cfg.ParentURL
}

// newJoinToken reports whether --join-token is one this link was not made with.
func (c *Child) newJoinToken(l *Link) bool {
	return c.cfg.JoinToken != "" && store.HashSecret(c.cfg.JoinToken) != l.JoinTokenHash
}

// errNoJoinToken means the child has no credential and was given no join token.
var errNoJoinToken = errors.New("not joined to the parent yet and no --join-token given (create one with 'patchtree child add NAME' at the parent)")

// isPermanent reports whether an error of the parent link cannot heal by retrying: the parent
// refused the join token or the credential (400, 401, 403, 404, 409 on join; 401 on any
// request), or there is no join token. Transport errors, 429 and 5xx are transient.
func isPermanent(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		switch he.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
			return he.join || he.Status == http.StatusUnauthorized
		}
	}
	return errors.Is(err, errNoJoinToken)
}

// fail stops the parent link for a permanent error: state failed, the error in status, one
// ERROR log line. It returns err.
func (c *Child) fail(err error) error {
	c.mu.Lock()
	already := c.state.State == LinkFailed
	c.state.State, c.state.Error = LinkFailed, err.Error()
	stop := c.stop
	c.mu.Unlock()
	c.saveState()
	if !already {
		c.cfg.Logger.Error("the parent link stopped: a permanent error; fix it and restart this server", "parent", c.joinURL(c.activeLink()), "error", err)
	}
	if stop != nil {
		stop()
	}
	return err
}

// checkPermanent stops the link when err is permanent and returns whether it did. A refused
// join token is final at once; a refused stored credential only once the parent has kept
// refusing it for RefusalGrace (a revoked or rotated credential), since a parent server that
// has not applied it yet refuses it too, for a few seconds.
func (c *Child) checkPermanent(err error) bool {
	if err == nil || !isPermanent(err) {
		return false
	}
	var he *httpError
	if errors.As(err, &he) && !he.join {
		c.mu.Lock()
		now := time.Now()
		if c.refusedSince.IsZero() {
			c.refusedSince = now
		}
		since := now.Sub(c.refusedSince)
		c.mu.Unlock()
		if since < c.cfg.RefusalGrace {
			c.cfg.Logger.Warn("the parent refused this child's credential; retrying until it has refused it for the grace period",
				"refused_for", since.Round(time.Second).String(), "grace", c.cfg.RefusalGrace.String(), "error", err)
			return false
		}
	}
	c.fail(fmt.Errorf("the parent refused this child's credential (revoked, or rotated with 'patchtree child rotate'; "+
		"restart this server with the new --join-token): %w", err))
	return true
}

func (c *Child) join(ctx context.Context, stored *Link) (*Link, error) {
	if c.cfg.JoinToken == "" {
		return nil, errNoJoinToken
	}
	base := c.joinURL(stored)
	l := &Link{URL: base, Child: c.cfg.Name, TLS: c.linkTLS()}
	if stored != nil && stored.knows(base) {
		// A new credential for the same parent: the addresses learned stay.
		l.URL, l.SiteURLs, l.SiteURLsAt, l.Direct = stored.URL, stored.SiteURLs, stored.SiteURLsAt, stored.Direct
	}
	c.setActive(l)
	var resp JoinResponse
	if _, err := c.call(ctx, http.MethodPost, ProtocolPath+"/join", "", JoinRequest{Name: c.cfg.Name, JoinToken: c.cfg.JoinToken}, &resp); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			he.join = true
		}
		return nil, fmt.Errorf("join %s as %q: %w", base, c.cfg.Name, err)
	}
	l.NodeToken, l.ParentName, l.ParentSite = resp.NodeToken, resp.ParentName, resp.ParentSite
	l.JoinedAt, l.JoinTokenHash = time.Now().UTC(), store.HashSecret(c.cfg.JoinToken)
	if _, err := c.backend.PutSetting(SettingParent, l); err != nil {
		return nil, fmt.Errorf("store the parent link: %w", err)
	}
	if stored != nil && stored.knows(base) && stored.Child == l.Child {
		c.cfg.Logger.Info("exchanged a new join token for a new credential; the replica, cursors and compliance sequence stay", "parent", resp.ParentName, "url", base)
	} else {
		c.cfg.Logger.Info("joined the parent", "parent", resp.ParentName, "url", base)
	}
	return l, nil
}

// httpError is a non-2xx answer from the parent.
type httpError struct {
	Status int
	Msg    string
	// join marks an answer to a join request (where 400, 403, 404 and 409 are permanent too).
	join bool
}

func (e *httpError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }

// call sends a JSON request to the parent and decodes a JSON answer.
func (c *Child) call(ctx context.Context, method, path, token string, in, out any) (*http.Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	return c.send(ctx, method, path, token, body, "", out)
}

// send sends body (already encoded JSON, compressed when encoding is set) to the parent and
// decodes a JSON answer into out; a non-2xx answer is an *httpError.
func (c *Child) send(ctx context.Context, method, path, token string, body []byte, encoding string, out any) (*http.Response, error) {
	resp, err := c.roundTrip(ctx, func(base string) (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		return resp, httpErrorOf(resp.StatusCode, raw)
	}
	if out != nil && err != nil {
		return resp, fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp, nil
}

// httpErrorOf is a non-2xx answer: its {"error": ...} message, or its text.
func httpErrorOf(status int, raw []byte) *httpError {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(raw))
	}
	return &httpError{Status: status, Msg: e.Error}
}
