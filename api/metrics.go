package api

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"
)

// metricsAccess is who may scrape GET /metrics: admins and auditors, or anyone with
// Options.MetricsPublic (a scraper on a private network, without a token).
func (s *Server) metricsAccess() access {
	if s.opts.MetricsPublic {
		return public
	}
	return adminAudit
}

// metrics serves the Prometheus exposition (Options.Metrics) on this server: every server of
// a site is scraped for its own Raft state, so a follower answers itself.
func (s *Server) metrics(r *http.Request) (int, any, error) {
	if s.opts.Metrics == nil {
		return 0, nil, fmt.Errorf("%w: this server exports no metrics", ErrNoRoute)
	}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) { s.opts.Metrics.ServeHTTP(w, r) }), nil
}

// unmatchedRoute is the route label of a request no route matched.
const unmatchedRoute = "unmatched"

// RouteOf names the route pattern a request matches ("/v1/children/{name}"), the bounded
// label the HTTP metrics count requests by; "unmatched" for any other path.
func (s *Server) RouteOf(r *http.Request) string {
	var m mux.RouteMatch
	if !s.router.Match(r, &m) || m.Route == nil {
		return unmatchedRoute
	}
	tpl, err := m.Route.GetPathTemplate()
	if err != nil {
		return unmatchedRoute
	}
	return tpl
}
