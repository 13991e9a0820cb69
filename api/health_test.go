package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHealthRequire(t *testing.T) {
	cases := []struct {
		name               string
		notReady, follower bool
		query              string
		code               int
		want               string
	}{
		{"liveness while starting", true, true, "", 200, `"status": "ok"`},
		{"ready", false, true, "?require=ready", 200, `"ready": true`},
		{"not ready", true, false, "?require=ready", 503, "not applied the site's log"},
		{"leader", false, false, "?require=leader", 200, `"leader": true`},
		{"not leader", false, true, "?require=leader", 503, "not the leader"},
		{"leader not ready", true, false, "?require=leader", 200, `"ready": false`},
		{"unknown condition", false, false, "?require=fast", 400, `require must be`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.notReady, f.follower = tc.notReady, tc.follower
			rec := send(t, New(f, Options{}), http.MethodGet, "/v1/health"+tc.query, "", nil)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s, want %d containing %q", rec.Code, rec.Body, tc.code, tc.want)
			}
			if tc.code == 503 {
				var body errorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
					t.Fatalf("503 body %q is not a JSON error", rec.Body)
				}
				if rec.Header().Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
			}
		})
	}
}
