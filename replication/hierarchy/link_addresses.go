package hierarchy

// The parent site's addresses: learned from the parent (GET /v1/hierarchy/v1/site), kept in the
// link (replicated), refreshed periodically and after failures, and the one request path that
// fails over between them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultAddressRefresh is ChildConfig.AddressRefresh's default.
const DefaultAddressRefresh = 5 * time.Minute

// refreshMinGap is the least time between two refreshes of the addresses, so that a parent
// site that fails every request is not also asked for its addresses on every failure.
const refreshMinGap = 10 * time.Second

// normURL is a base URL without surrounding space or trailing slashes.
func normURL(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }

// containsURL reports whether urls holds u (scheme and host compared case-insensitively).
func containsURL(urls []string, u string) bool {
	return slices.ContainsFunc(urls, func(x string) bool { return strings.EqualFold(normURL(x), normURL(u)) })
}

// knows reports whether u is the link's configured URL or one of its parent site's addresses.
func (l *Link) knows(u string) bool {
	return strings.EqualFold(normURL(l.URL), normURL(u)) || containsURL(l.SiteURLs, u)
}

// Addresses are where the link sends its requests. When the configured URL was one of the
// parent site's servers, every server of the parent site (requests fail over between them);
// otherwise the configured URL alone: it is an indirection the operator chose (a load balancer
// or a proxy), which does its own failover.
func (l *Link) Addresses() []string {
	if l.Direct && len(l.SiteURLs) > 0 {
		return slices.Clone(l.SiteURLs)
	}
	return []string{l.URL}
}

// endpoints are the addresses to try, the one in use first, then the others in order after it.
func (c *Child) endpoints() []string {
	c.mu.Lock()
	l, cur := c.active, c.current
	c.mu.Unlock()
	if l == nil {
		// Not running the link yet (a summary asked for before the loop set it up): the link
		// the site has.
		select {
		case <-c.ready:
			l, _ = c.link()
		default:
		}
	}
	urls := []string{c.cfg.ParentURL}
	if l != nil {
		urls = l.Addresses()
	}
	if i := slices.IndexFunc(urls, func(u string) bool { return strings.EqualFold(u, cur) }); i > 0 {
		urls = append(urls[i:], urls[:i]...)
	}
	return urls
}

// failoverStatus reports whether an answer says that this server cannot serve the request now
// while another server of the parent site may: 5xx, which includes the 503 of a follower
// that cannot reach a leader and of a server that is not the leader.
func failoverStatus(code int) bool { return code >= 500 }

// roundTrip sends a request built by build for each address in turn until one answers with
// anything but a transport error or a 5xx, and keeps using that address. The last address's
// answer is returned whatever it is; the caller closes its body.
func (c *Child) roundTrip(ctx context.Context, build func(base string) (*http.Request, error)) (*http.Response, error) {
	urls := c.endpoints()
	client := c.httpClient()
	var lastErr error
	for i, base := range urls {
		req, err := build(base)
		if err != nil {
			return nil, err
		}
		req.Header.Set(InstanceHeader, c.instance)
		resp, err := client.Do(req)
		last := i == len(urls)-1
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil:
			lastErr = err
		case failoverStatus(resp.StatusCode) && !last:
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			lastErr = fmt.Errorf("%s: %w", base, httpErrorOf(resp.StatusCode, raw))
		default:
			c.use(base, i > 0)
			return resp, nil
		}
		if !last {
			c.cfg.Logger.Warn("parent server unavailable; trying the next address of the parent site", "url", base, "next", urls[i+1], "error", lastErr)
		}
	}
	c.askRefresh()
	return nil, lastErr
}

// use makes base the address in use; after a failover the addresses are refreshed.
func (c *Child) use(base string, failedOver bool) {
	c.mu.Lock()
	changed := c.current != base
	c.current = base
	c.state.URL = base
	c.mu.Unlock()
	if changed && failedOver {
		c.cfg.Logger.Info("the parent link now goes through another server of the parent site", "url", base)
		c.askRefresh()
	}
}

// askRefresh asks the address loop to refresh the parent site's addresses.
func (c *Child) askRefresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// refreshAddresses asks the parent for its site's addresses and stores them in the link when
// they changed. A parent without the route (older) leaves the configured URL alone in use.
func (c *Child) refreshAddresses(ctx context.Context) error {
	c.mu.Lock()
	l := c.active
	c.mu.Unlock()
	if l == nil {
		return nil
	}
	var sa SiteAddresses
	if _, err := c.call(ctx, http.MethodGet, ProtocolPath+SitePath, l.NodeToken, nil, &sa); err != nil {
		var he *httpError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("learn the parent site's addresses: %w", err)
	}
	var urls []string
	for _, u := range sa.URLs {
		if u = normURL(u); u != "" && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && !containsURL(urls, u) {
			urls = append(urls, u)
		}
	}
	next := *l
	next.SiteURLs = urls
	next.Direct = l.Direct || containsURL(urls, l.URL)
	if slices.Equal(next.SiteURLs, l.SiteURLs) && next.Direct == l.Direct {
		return nil
	}
	next.SiteURLsAt = time.Now().UTC()
	if _, err := c.backend.PutSetting(SettingParent, &next); err != nil {
		return fmt.Errorf("store the parent site's addresses: %w", err)
	}
	c.mu.Lock()
	c.active = &next
	c.state.Addresses = next.Addresses()
	c.mu.Unlock()
	c.cfg.Logger.Info("learned the parent site's addresses", "urls", urls, "configured", l.URL, "fail_over", next.Direct)
	return nil
}

// addressLoop refreshes the parent site's addresses every AddressRefresh, and when a request
// failed over or failed on every address (at most once per refreshMinGap).
func (c *Child) addressLoop(ctx context.Context) {
	timer := time.NewTimer(c.cfg.AddressRefresh)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.refresh:
		}
		if err := c.refreshAddresses(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("could not refresh the parent site's addresses", "error", err)
		}
		timer.Reset(c.cfg.AddressRefresh)
		select {
		case <-ctx.Done():
			return
		case <-time.After(refreshMinGap):
		}
	}
}
