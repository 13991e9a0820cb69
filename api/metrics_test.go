package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"patchtree/store"
)

// TestMetricsAccess: GET /metrics takes an admin or auditor token, or none with MetricsPublic;
// a server without metrics answers 404.
func TestMetricsAccess(t *testing.T) {
	exposition := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("up 1\n")) })
	for _, c := range []struct {
		name    string
		opts    Options
		token   string
		want    int
		wantOut string
	}{
		{"no token", Options{Metrics: exposition}, "", http.StatusUnauthorized, ""},
		{"agent", Options{Metrics: exposition}, bearer(store.RoleAgent), http.StatusForbidden, ""},
		{"auditor", Options{Metrics: exposition}, bearer(store.RoleAuditor), http.StatusOK, "up 1\n"},
		{"public, no token", Options{Metrics: exposition, MetricsPublic: true}, "", http.StatusOK, "up 1\n"},
		{"no metrics", Options{}, bearer(store.RoleAdmin), http.StatusNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := New(newFake(t), c.opts)
			rec := send(t, srv, http.MethodGet, "/metrics", c.token, nil)
			if rec.Code != c.want || (c.wantOut != "" && rec.Body.String() != c.wantOut) {
				t.Fatalf("GET /metrics: %d %q, want %d %q", rec.Code, rec.Body, c.want, c.wantOut)
			}
		})
	}
}

// TestRouteOf: requests are named by their route's pattern, never their path.
func TestRouteOf(t *testing.T) {
	srv := New(newFake(t), Options{})
	for path, want := range map[string]string{
		"/v1/children/north":          "/v1/children/{name}",
		"/v1/catalog/bulletins/MS-01": "/v1/catalog/bulletins/{id}",
		"/v1/status":                  "/v1/status",
		"/v1/no/such/route/4711":      unmatchedRoute,
	} {
		if got := srv.RouteOf(httptest.NewRequest(http.MethodGet, path, nil)); got != want {
			t.Errorf("RouteOf(GET %s) = %q, want %q", path, got, want)
		}
	}
}
