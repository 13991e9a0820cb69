package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"patchtree/replication/policy"
	"patchtree/store"
)

// caller is one column of the auth matrix.
type caller struct {
	name  string
	token string
	role  store.Role // empty for no/bad token
}

var callers = []caller{
	{"no token", "", ""},
	{"bad token", "admin.wrong-secret", ""},
	{"admin", bearer(store.RoleAdmin), store.RoleAdmin},
	{"rollout", bearer(store.RoleRollout), store.RoleRollout},
	{"auditor", bearer(store.RoleAuditor), store.RoleAuditor},
	{"agent", bearer(store.RoleAgent), store.RoleAgent},
}

// sample builds a valid request for a route, so that an allowed caller gets a 2xx. Every route
// needs one: a new route without a sample fails the matrix test.
func sample(t *testing.T, f *fakeBackend, method, path string) (string, any) {
	switch method + " " + path {
	case "GET /v1/health", "GET /v1/status", "GET /v1/digest", "GET /metrics", "GET /v1/languages", "GET /v1/tokens", "GET /v1/site/servers":
		return path, nil
	case "PUT /v1/languages":
		return path, map[string]any{"ranges": []string{"de", "fr"}}
	case "POST /v1/tokens":
		return path, map[string]any{"role": "auditor", "name": "matrix"}
	case "DELETE /v1/tokens/{id}":
		created, err := f.CreateToken(store.Actor{}, store.RoleAgent, "victim")
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/tokens/" + created.Token.ID, nil
	case "POST /v1/site/servers":
		return path, map[string]any{"id": "n9", "raft_addr": "127.0.0.1:9", "api_addr": "http://127.0.0.1:9", "name": "hq", "role": "parent"}
	case "POST /v1/site/certificates":
		return path, map[string]any{"id": "n9"}
	case "DELETE /v1/site/servers/{id}":
		if _, err := f.AddServer(store.Actor{}, joinReq("n8"), true); err != nil {
			t.Fatal(err)
		}
		return "/v1/site/servers/n8", nil
	case "POST /v1/catalog/import":
		return path, map[string]any{"source": "feed.json"}
	case "POST /v1/catalog/import/upload":
		return path + "?name=feed.json", map[string]any{"bulletins": []any{}}
	case "GET /v1/catalog/imports", "GET /v1/catalog", "GET /v1/catalog/bulletins", "GET /v1/catalog/severities":
		return path, nil
	case "GET /v1/catalog/imports/{id}", "DELETE /v1/catalog/imports/{id}":
		return "/v1/catalog/imports/run1", nil
	case "GET /v1/catalog/bulletins/{id}":
		return "/v1/catalog/bulletins/B1", nil
	case "PATCH /v1/catalog/bulletins/{id}":
		return "/v1/catalog/bulletins/B1", map[string]any{"disabled": true}
	case "PUT /v1/catalog/bulletins/{id}/custom-severity":
		return "/v1/catalog/bulletins/B1/custom-severity", map[string]any{"severity": ""}
	case "POST /v1/catalog/severities":
		f.mu.Lock()
		n := fmt.Sprintf("level-%d", f.idx)
		f.mu.Unlock()
		return path, map[string]any{"name": n}
	case "PUT /v1/catalog/severities":
		return path, map[string]any{"levels": []string{"Urgent"}}
	case "DELETE /v1/catalog/severities/{name}":
		f.mu.Lock()
		n := fmt.Sprintf("victim-%d", f.idx)
		f.mu.Unlock()
		if _, err := f.ChangeSeverityLevels(store.Actor{}, store.SeverityChange{Op: "add", Name: n}); err != nil {
			t.Fatal(err)
		}
		return "/v1/catalog/severities/" + n, nil
	case "POST /v1/children":
		f.mu.Lock()
		n := fmt.Sprintf("child-%d", f.idx)
		f.mu.Unlock()
		return path, map[string]any{"name": n}
	case "GET /v1/children", "GET /v1/alerts", "GET /v1/tree", "GET /v1/catalog/digest", "GET /v1/replication/runs", "GET /v1/replication/rules":
		return path, nil
	case "GET /v1/children/{name}":
		return "/v1/children/c1", nil
	case "DELETE /v1/children/{name}":
		c, err := f.AddChild(store.Actor{}, fmt.Sprintf("gone-%d", f.idx))
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/children/" + c.Child.Name, nil
	case "POST /v1/children/{name}/rotate":
		c, err := f.AddChild(store.Actor{}, fmt.Sprintf("rotated-%d", f.idx))
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/children/" + c.Child.Name + "/rotate", nil
	case "POST /v1/replication/now":
		return path, map[string]any{"scope": "policies"}
	case "POST /v1/scans":
		return path, map[string]any{"computer_id": "pc-1", "scanned_at": "2026-11-20T10:00:00Z", "results": map[string]string{"B1-u": "installed"}}
	case "GET /v1/compliance", "GET /v1/compliance/bulletins":
		return path, nil
	case "POST /v1/hierarchy/v1/compliance":
		return path, map[string]any{"seq": 1, "digest": "d", "interval": "1h", "unchanged": true}
	case "GET /v1/policies", "GET /v1/settings", "GET /v1/audit":
		return path, nil
	case "POST /v1/policies":
		return path, map[string]any{"bulletins": []string{"B2"}, "folder": "matrix"}
	case "GET /v1/policies/{id}", "PATCH /v1/policies/{id}", "DELETE /v1/policies/{id}":
		p, err := f.CreatePolicy(store.Actor{Name: "matrix"}, policy.Input{Bulletins: []string{"B2"}})
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPatch {
			return "/v1/policies/" + p.ID, map[string]any{"enabled": false}
		}
		return "/v1/policies/" + p.ID, nil
	case "GET /v1/settings/{name}", "PUT /v1/settings/{name}":
		if _, err := f.PutSettingDoc(store.Actor{Name: "matrix"}, "assessment", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPut {
			return "/v1/settings/assessment", map[string]any{"scan_interval": "12h"}
		}
		return "/v1/settings/assessment", nil
	case "PUT /v1/replication/rules":
		return path, map[string]any{"catalog": "continuous"}
	case "POST /v1/hierarchy/v1/join":
		return path, map[string]any{"name": "c1", "join_token": "a.b"}
	case "PUT /v1/hierarchy/v1/languages":
		return path, map[string]any{"ranges": []string{"de"}}
	case "GET /v1/hierarchy/v1/catalog":
		return path + "?cursor=0&wait=1ms", nil
	case "GET /v1/hierarchy/v1/site":
		return path, nil
	case "GET /v1/snapshot":
		return path, nil
	case "PUT /v1/snapshot":
		return path, snapBackupOf(t, f.s)
	case "POST /v1/hierarchy/v1/ack":
		return path, map[string]any{"run_id": "r1", "applied": true}
	}
	t.Fatalf("no sample request for %s %s: add one to the auth matrix", method, path)
	return "", nil
}

func send(t *testing.T, h http.Handler, method, path, token string, body any) *httptest.ResponseRecorder {
	t.Helper()
	buf, isRaw := body.([]byte)
	if body != nil && !isRaw {
		var err error
		if buf, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(buf))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestAuthMatrix walks every route registered in the router and every kind of caller, and
// checks the answer against the route table's access, the single source of truth.
func TestAuthMatrix(t *testing.T) {
	f := newFake(t)
	f.addBulletin(t, "B1")
	f.addBulletin(t, "B2")
	srv := New(f, Options{Importer: fakeImporter{}, Hierarchy: fakeHierarchy{}, Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})

	table := map[string]route{}
	for _, rt := range srv.routes() {
		table[rt.key()] = rt
	}
	var walked []string
	err := srv.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := r.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s registered without methods", path)
		}
		for _, m := range methods {
			walked = append(walked, m+" "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(walked)
	if len(walked) != len(table) {
		t.Fatalf("router has %d routes, table %d", len(walked), len(table))
	}

	for _, key := range walked {
		rt, ok := table[key]
		if !ok {
			t.Fatalf("router route %s is not in the route table", key)
		}
		if isConsoleRoute(rt) {
			continue // authenticated by session cookie too: console_auth_test.go walks them
		}
		for _, c := range callers {
			t.Run(key+"/"+c.name, func(t *testing.T) {
				path, body := sample(t, f, rt.method, rt.path)
				rec := send(t, srv, rt.method, path, c.token, body)
				want := "2xx"
				switch {
				case rt.access.public:
				case c.role == "":
					want = "401"
				case !rt.access.allows(c.role):
					want = "403"
				}
				got := fmt.Sprint(rec.Code)
				if rec.Code/100 == 2 {
					got = "2xx"
				}
				if got != want {
					t.Fatalf("%s as %s: got %d %s, want %s", key, c.name, rec.Code, rec.Body, want)
				}
				if want != "2xx" {
					var e errorBody
					if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
						t.Fatalf("error answer is not {\"error\": ...}: %s", rec.Body)
					}
				}
			})
		}
	}
}

func TestAuthRejectsMalformedHeaders(t *testing.T) {
	srv := New(newFake(t), Options{})
	for _, h := range []string{"Basic abc", "Bearer", "Bearer nodot", "Bearer .secret", "Bearer admin."} {
		req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "error") {
			t.Errorf("%q: got %d %s", h, rec.Code, rec.Body)
		}
	}
}
