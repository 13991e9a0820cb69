package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"patchtree/node"
	"patchtree/store"
)

func joinReq(id string) node.JoinRequest {
	return node.JoinRequest{ID: id, RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:1", Name: "hq", Role: "parent"}
}

// TestBadInputLeavesStateUnchanged sends malformed requests and checks each gets a precise JSON
// error and leaves the state digest exactly as it was.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{MaxBodyBytes: 1024})
	admin := bearer(store.RoleAdmin)
	cases := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"not well-formed range", "PUT", "/v1/languages", `{"ranges":["ja-JP-mac"]}`, 400, `"ja-JP-mac"`},
		{"underscore range", "PUT", "/v1/languages", `{"ranges":["de","de_DE"]}`, 400, `"de_DE"`},
		{"extended range", "PUT", "/v1/languages", `{"ranges":["*-DE"]}`, 400, `"*-DE"`},
		{"ranges missing", "PUT", "/v1/languages", `{}`, 400, `"ranges" is required`},
		{"ranges wrong type", "PUT", "/v1/languages", `{"ranges":"de"}`, 400, `field "ranges" must be an array`},
		{"malformed JSON", "PUT", "/v1/languages", `{"ranges":[`, 400, "truncated JSON"},
		{"syntax error", "PUT", "/v1/languages", `{"ranges":[de]}`, 400, "malformed JSON at byte"},
		{"unknown field", "PUT", "/v1/languages", `{"ranges":["de"],"langs":1}`, 400, `unknown field "langs"`},
		{"trailing data", "PUT", "/v1/languages", `{"ranges":["de"]} {}`, 400, "after the JSON object"},
		{"empty body", "PUT", "/v1/languages", ``, 400, "body is empty"},
		{"not an object", "PUT", "/v1/languages", `["de"]`, 400, "must be a JSON object"},
		{"oversized body", "PUT", "/v1/languages", `{"ranges":["` + strings.Repeat("a", 2000) + `"]}`, 413, "too large"},
		{"unknown role", "POST", "/v1/tokens", `{"role":"root"}`, 400, `"root"`},
		{"node role", "POST", "/v1/tokens", `{"role":"node"}`, 400, "node"},
		{"role missing", "POST", "/v1/tokens", `{"name":"x"}`, 400, `"role" is required`},
		{"unknown token", "DELETE", "/v1/tokens/nope", ``, 404, `"nope"`},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "no such route"},
		{"wrong method", "PATCH", "/v1/languages", ``, 405, "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := f.s.Digest()
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+admin)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("error %q does not mention %q (%v)", rec.Body, tc.want, err)
			}
			after, _ := f.s.Digest()
			if after.Digest != before.Digest {
				t.Fatalf("state changed: %+v -> %+v", before.Tables, after.Tables)
			}
		})
	}
}

// TestOversizedBodyRejectedBeforeAuth: a declared Content-Length over the cap is refused before
// any work, even before the token is checked.
func TestOversizedBodyRejectedBeforeAuth(t *testing.T) {
	srv := New(newFake(t), Options{MaxBodyBytes: 16})
	req := httptest.NewRequest(http.MethodPut, "/v1/languages", strings.NewReader(strings.Repeat("x", 64)))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}
