package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"patchtree/node"
)

// forwardedHeader marks a request a follower forwarded, so that it is never forwarded twice.
const forwardedHeader = "X-Patchtree-Forwarded-By"

// leaderWait bounds how long a write waits for an election before failing with 503.
const leaderWait = 10 * time.Second

// forward proxies a write to the site's leader. The client sees the leader's response as if
// this server had answered it.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	if by := r.Header.Get(forwardedHeader); by != "" {
		writeError(w, fmt.Errorf("%w: request forwarded by %s reached %s, which does not lead either; retry", node.ErrNoLeader, by, s.backend.ID()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), leaderWait)
	defer cancel()
	leader, err := s.backend.WaitLeader(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := url.Parse(leader)
	if err != nil {
		writeError(w, fmt.Errorf("leader API address %q: %w", leader, err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, s.backend.ID())
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, fmt.Errorf("%w: forwarding to leader at %s failed: %v", node.ErrNoLeader, leader, err))
		},
	}
	proxy.ServeHTTP(w, r)
}
