package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// tryDo sends one request. body may be nil, []byte/string (sent raw) or a
// value to JSON-encode.
func tryDo(ctx context.Context, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// do sends a request and fails the test on transport errors. The map is
// the decoded JSON object (nil if the body is not one).
func do(t *testing.T, method, url, token string, body any) (int, map[string]any, []byte) {
	t.Helper()
	st, raw, err := tryDo(context.Background(), method, url, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return st, m, raw
}

// doJSON sends a request, requires status want and decodes into out.
func doJSON(t *testing.T, method, url, token string, body any, want int, out any) {
	t.Helper()
	doJSONRaw(t, method, url, token, body, want, out)
}

// doJSONRaw is doJSON that also returns the raw body.
func doJSONRaw(t *testing.T, method, url, token string, body any, want int, out any) []byte {
	t.Helper()
	st, _, raw := do(t, method, url, token, body)
	if st != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, url, st, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, raw, err)
		}
	}
	return raw
}

// checkError asserts status and a JSON {"error": msg} containing substr.
func checkError(t *testing.T, what string, st int, m map[string]any, raw []byte, want int, substr string) {
	t.Helper()
	if st != want {
		t.Errorf("%s: status %d, want %d; body %s", what, st, want, raw)
	}
	msg, _ := m["error"].(string)
	if msg == "" {
		t.Errorf("%s: body is not {\"error\": non-empty}: %s", what, raw)
	} else if !strings.Contains(strings.ToLower(msg), strings.ToLower(substr)) {
		t.Errorf("%s: error %q does not mention %q", what, msg, substr)
	}
}

type serverInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

type statusResp struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	NodeID    string   `json:"node_id"`
	Index     uint64   `json:"index"`
	Languages []string `json:"languages"`
	Ready     bool     `json:"ready"`
	Raft      struct {
		State        string       `json:"state"`
		LeaderID     string       `json:"leader_id"`
		LeaderAPI    string       `json:"leader_api"`
		Term         uint64       `json:"term"`
		AppliedIndex uint64       `json:"applied_index"`
		FSMApplied   uint64       `json:"fsm_applied_index"`
		CommitIndex  uint64       `json:"commit_index"`
		LastIndex    uint64       `json:"last_index"`
		Servers      []serverInfo `json:"servers"`
	} `json:"raft"`
	LeaderLoops []string `json:"leader_loops"`
}

type tokenResp struct {
	ID          string `json:"id"`
	Token       string `json:"token"`
	Role        string `json:"role"`
	Name        string `json:"name"`
	CreateIndex uint64 `json:"create_index"`
}

type langResp struct {
	Ranges      []string `json:"ranges"`
	Index       uint64   `json:"index"`
	ModifyIndex uint64   `json:"modify_index"`
}

type digestResp struct {
	Index  uint64 `json:"index"`
	Digest string `json:"digest"`
}

func getStatus(t *testing.T, url, token string) statusResp {
	t.Helper()
	var s statusResp
	doJSON(t, "GET", url+"/v1/status", token, nil, 200, &s)
	return s
}

func getDigest(t *testing.T, url, token string) digestResp {
	t.Helper()
	var d digestResp
	doJSON(t, "GET", url+"/v1/digest", token, nil, 200, &d)
	if d.Digest == "" {
		t.Fatalf("GET %s/v1/digest: empty digest", url)
	}
	return d
}

func putLanguages(t *testing.T, url, token string, ranges []string) langResp {
	t.Helper()
	var l langResp
	doJSON(t, "PUT", url+"/v1/languages", token, map[string]any{"ranges": ranges}, 200, &l)
	if !equalStrings(l.Ranges, ranges) {
		t.Errorf("PUT languages %v: response ranges %v", ranges, l.Ranges)
	}
	return l
}

func createToken(t *testing.T, url, admin, role, name string) tokenResp {
	t.Helper()
	var tr tokenResp
	doJSON(t, "POST", url+"/v1/tokens", admin, map[string]any{"role": role, "name": name}, 201, &tr)
	if tr.ID == "" || tr.Token == "" || tr.Role != role || tr.Name != name || tr.CreateIndex == 0 {
		t.Fatalf("POST tokens role %s: incomplete response %+v", role, tr)
	}
	return tr
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",") && len(a) == len(b)
}
