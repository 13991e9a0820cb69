package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// bigRanges is a syntactically valid languages body of about n bytes.
func bigRanges(n int) string {
	var b strings.Builder
	b.WriteString(`{"ranges":["de"`)
	for b.Len() < n {
		b.WriteString(`,"de"`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// oversized is a request body sent over a raw connection with bodiesSend:
// the server may answer 413 and close before reading it all, and Go's
// http.Transport then often reports its write error ("broken pipe")
// instead of the response.
type oversized struct {
	body    string
	chunked bool // Transfer-Encoding: chunked instead of Content-Length
}

func rawDo(t *testing.T, method, url, token string, o oversized) (int, map[string]any, []byte) {
	t.Helper()
	length := int64(len(o.body))
	if o.chunked {
		length = -1 // unknown: the request is written chunked
	}
	return bodiesSend(t, method, url, token, strings.NewReader(o.body), length, nil)
}

func TestBadInputLeavesStateUnchanged(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "badinput", Languages: []string{"de", "fr"}})

	// api.addr format: exactly the base URL plus a newline.
	if b, err := os.ReadFile(filepath.Join(p.dataDir, "api.addr")); err != nil {
		t.Fatal(err)
	} else if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+\n$`).Match(b) {
		t.Errorf("api.addr = %q, want \"http://127.0.0.1:PORT\\n\"", b)
	}
	var l langResp
	doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &l)
	if !equalStrings(l.Ranges, []string{"de", "fr"}) {
		t.Errorf("--languages de,fr on first start: ranges %v", l.Ranges)
	}
	var h struct {
		Status    string `json:"status"`
		Ready     bool   `json:"ready"`
		RaftState string `json:"raft_state"`
	}
	doJSON(t, "GET", p.url+"/v1/health", "", nil, 200, &h)
	if h.Status != "ok" || !h.Ready || h.RaftState != "Leader" {
		t.Errorf("health of a lone site = %+v, want status ok, ready, raft_state Leader", h)
	}
	if s := getStatus(t, p.url, p.token); s.Name != "badinput" || s.Role != "parent" || !equalStrings(s.Languages, []string{"de", "fr"}) {
		t.Errorf("status name %q role %q languages %v, want badinput parent [de fr]", s.Name, s.Role, s.Languages)
	}
	auditor := createToken(t, p.url, p.token, "auditor", "bad-input-auditor")
	agent := createToken(t, p.url, p.token, "agent", "")
	if st, _, raw := do(t, "GET", p.url+"/v1/status", auditor.Token, nil); st != 200 {
		t.Errorf("new auditor token does not authenticate immediately: %d %s", st, raw)
	}

	mib := 1 << 20
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		errSubstr                 string
	}{
		{"range ja-JP-mac", "PUT", "/v1/languages", "admin", `{"ranges":["ja-JP-mac"]}`, 400, "ja-JP-mac"},
		{"range de_DE", "PUT", "/v1/languages", "admin", `{"ranges":["de_DE"]}`, 400, "de_DE"},
		{"range *-DE", "PUT", "/v1/languages", "admin", `{"ranges":["*-DE"]}`, 400, "*-DE"},
		{"valid then invalid range", "PUT", "/v1/languages", "admin", `{"ranges":["en","x_y"]}`, 400, "x_y"},
		{"range with space", "PUT", "/v1/languages", "admin", `{"ranges":["de fr"]}`, 400, "de fr"},
		{"malformed JSON", "PUT", "/v1/languages", "admin", `{"ranges":["de"`, 400, ""},
		{"not JSON", "PUT", "/v1/languages", "admin", `ranges=de`, 400, ""},
		{"ranges is a string", "PUT", "/v1/languages", "admin", `{"ranges":"de"}`, 400, ""},
		{"ranges has a number", "PUT", "/v1/languages", "admin", `{"ranges":[7]}`, 400, ""},
		{"unknown field", "PUT", "/v1/languages", "admin", `{"ranges":["de"],"extra":true}`, 400, "extra"},
		{"trailing garbage", "PUT", "/v1/languages", "admin", `{"ranges":["en"]} {"ranges":["fr"]}`, 400, ""},
		{"languages body 2 MiB", "PUT", "/v1/languages", "admin", oversized{bigRanges(2 * mib), false}, 413, ""},
		{"languages body 2 MiB chunked", "PUT", "/v1/languages", "admin", oversized{bigRanges(2 * mib), true}, 413, ""},
		{"languages without token", "PUT", "/v1/languages", "", `{"ranges":["en"]}`, 401, ""},
		{"languages with bad token", "PUT", "/v1/languages", "bogus", `{"ranges":["en"]}`, 401, ""},
		{"languages as auditor", "PUT", "/v1/languages", "auditor", `{"ranges":["en"]}`, 403, ""},
		{"languages as agent", "PUT", "/v1/languages", "agent", `{"ranges":["en"]}`, 403, ""},
		{"unknown role", "POST", "/v1/tokens", "admin", `{"role":"superuser"}`, 400, "superuser"},
		{"role node", "POST", "/v1/tokens", "admin", `{"role":"node","name":"n1"}`, 400, "node"},
		{"missing role", "POST", "/v1/tokens", "admin", `{"name":"x"}`, 400, "role"},
		{"token malformed JSON", "POST", "/v1/tokens", "admin", `{"role":`, 400, ""},
		{"token unknown field", "POST", "/v1/tokens", "admin", `{"role":"auditor","secret":"x"}`, 400, "secret"},
		{"token body 2 MiB", "POST", "/v1/tokens", "admin", oversized{`{"role":"auditor","name":"` + strings.Repeat("n", 2*mib) + `"}`, false}, 413, ""},
		{"token as auditor", "POST", "/v1/tokens", "auditor", `{"role":"admin"}`, 403, ""},
		{"token without token", "POST", "/v1/tokens", "", `{"role":"admin"}`, 401, ""},
		{"delete unknown token", "DELETE", "/v1/tokens/no-such-token-id", "admin", nil, 404, ""},
		{"delete as auditor", "DELETE", "/v1/tokens/" + agent.ID, "auditor", nil, 403, ""},
		{"list tokens as agent", "GET", "/v1/tokens", "agent", nil, 403, ""},
		{"status without token", "GET", "/v1/status", "", nil, 401, ""},
		{"digest with bad token", "GET", "/v1/digest", "bogus", nil, 401, ""},
	}
	tokenFor := map[string]string{"admin": p.token, "auditor": auditor.Token, "agent": agent.Token, "bogus": "pt-not-a-real-token", "": ""}
	before := getDigest(t, p.url, p.token)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				st  int
				m   map[string]any
				raw []byte
			)
			if o, ok := tc.body.(oversized); ok {
				st, m, raw = rawDo(t, tc.method, p.url+tc.path, tokenFor[tc.token], o)
			} else {
				st, m, raw = do(t, tc.method, p.url+tc.path, tokenFor[tc.token], tc.body)
			}
			if len(raw) > 300 {
				raw = append(raw[:300:300], "..."...)
			}
			checkError(t, tc.method+" "+tc.path, st, m, raw, tc.status, tc.errSubstr)
			if after := getDigest(t, p.url, p.token); after != before {
				t.Errorf("state changed: digest %s@%d -> %s@%d", before.Digest, before.Index, after.Digest, after.Index)
				before = after
			}
		})
	}
	// The site still works, and a real write changes the digest. Ranges
	// come back sorted and canonical.
	var put, got langResp
	doJSON(t, "PUT", p.url+"/v1/languages", p.token, `{"ranges":["fr","en-gb","de"]}`, 200, &put)
	if want := []string{"de", "en-GB", "fr"}; !equalStrings(put.Ranges, want) {
		t.Errorf("PUT [fr en-gb de]: ranges %v, want sorted canonical %v", put.Ranges, want)
	}
	doJSON(t, "GET", p.url+"/v1/languages", auditor.Token, nil, 200, &got)
	if !equalStrings(got.Ranges, put.Ranges) || got.ModifyIndex != put.Index || put.Index == 0 {
		t.Errorf("GET languages = %+v after PUT answered %+v (want same ranges, modify_index = index)", got, put)
	}
	if after := getDigest(t, p.url, p.token); after.Digest == before.Digest || after.Index < put.Index {
		t.Errorf("digest %+v after a successful write at index %d (before: %+v)", after, put.Index, before)
	}
	doJSON(t, "DELETE", p.url+"/v1/tokens/"+agent.ID, p.token, nil, 200, nil)
	if st, _, raw := do(t, "GET", p.url+"/v1/status", agent.Token, nil); st != 401 {
		t.Errorf("deleted token still authenticates: %d %s", st, raw)
	}
	var list struct {
		Tokens []tokenResp `json:"tokens"`
	}
	doJSON(t, "GET", p.url+"/v1/tokens", p.token, nil, 200, &list)
	for _, tk := range list.Tokens {
		if tk.ID == agent.ID {
			t.Errorf("deleted token %s still listed", agent.ID)
		}
		if tk.Token != "" {
			t.Errorf("GET /v1/tokens returns a secret for token %s", tk.ID)
		}
	}
	if st, m, raw := do(t, "DELETE", p.url+"/v1/tokens/"+agent.ID, p.token, nil); st != 404 {
		checkError(t, "DELETE of a deleted token", st, m, raw, 404, "")
	}

	// --languages only applies on first start; the admin token survives.
	p.stop(t)
	for i, a := range p.args {
		if a == "de,fr" {
			p.args[i] = "ja"
		}
	}
	p.restart(t)
	if tok := readAdminToken(t, p.dataDir); tok != p.token {
		t.Errorf("admin.token changed across a restart")
	}
	doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &got)
	if !equalStrings(got.Ranges, put.Ranges) {
		t.Errorf("after restart with --languages ja: ranges %v, want unchanged %v", got.Ranges, put.Ranges)
	}
}
