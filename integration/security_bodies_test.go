package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// bodiesRepeat yields n copies of b without holding them.
type bodiesRepeat struct {
	b byte
	n int64
}

func (r *bodiesRepeat) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// bodiesStream is head, n copies of fill, then tail, as a reader.
func bodiesStream(head string, fill byte, n int64, tail string) io.Reader {
	return io.MultiReader(strings.NewReader(head), &bodiesRepeat{fill, n}, strings.NewReader(tail))
}

// bodiesZstd compresses a stream at the best ratio.
func bodiesZstd(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// bodiesSend sends a body of known length with extra headers over its own connection and
// returns the status and the decoded {"error": ...}. The answer is read while the body is still
// being written: a server that refuses a body part way answers and closes, and an HTTP client
// that writes first would see only the reset of the connection.
func bodiesSend(t *testing.T, method, url, token string, body io.Reader, length int64, header map[string]string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	conn, err := net.DialTimeout("tcp", req.URL.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	go req.Write(conn) // fails with a reset once the server has answered and closed
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

// testMemoryBounded is finding 5: what a request may cost in memory and CPU is bounded by
// limits checked while the body streams, not by what the sender chose to send.
func testMemoryBounded(t *testing.T) {
	p := startSite(t, siteOpts{Name: "mem", Languages: []string{"de", "en"}})
	node := hierJoin(t, p, "c1")
	var agent tokenResp
	doJSON(t, "POST", p.url+"/v1/tokens", p.token, map[string]any{"role": "agent", "name": "agent-1"}, 201, &agent)

	t.Run("feed with a 1 GiB string", func(t *testing.T) {
		dir := t.TempDir()
		feed := filepath.Join(dir, "feed.json.zst")
		head := `{"format":"patchtree.catalog/v1","feed":"evil","updates":[{"id":"`
		z := bodiesZstd(t, bodiesStream(head, 'a', 1<<30, `"}],"bulletins":[]}`))
		t.Logf("feed: %d bytes compressed for 1 GiB", len(z))
		if err := os.WriteFile(feed, z, 0o600); err != nil {
			t.Fatal(err)
		}
		hwm := vmHWM(t, p)
		run := catStart(t, p, map[string]any{"source": feed})
		// The accepted request itself is audited; a failed import writes nothing after it.
		before := getDigest(t, p.url, p.token)
		final, _ := catWait(t, p, run, 2*time.Minute)
		if final.State != "failed" || !strings.Contains(final.Error, fmt.Sprintf("a string at byte %d exceeds the limit of 1048576 bytes", len(head)-1)) {
			t.Errorf("import: state %q error %q; want failed with the token limit", final.State, final.Error)
		}
		if strings.Contains(final.Error, "aaaa") {
			t.Errorf("import error echoes the feed: %q", final.Error)
		}
		checkHWMGrowth(t, p, "1 GiB-string feed", hwm)
		requireDigestUnchanged(t, p, "1 GiB-string feed", before)
	})

	t.Run("four 190 MB scans", func(t *testing.T) {
		before, hwm := getDigest(t, p.url, p.token), vmHWM(t, p)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				head := fmt.Sprintf(`{"computer_id":"pc-%d","scanned_at":"2026-01-01T00:00:00Z","results":{"u":"`, i)
				const fill = 190 << 20
				url, want := p.url+"/v1/scans", "the scan exceeds 16777216 bytes"
				if i%2 == 1 {
					url, want = p.url+"/v1/scans?format=ndjson", "line 1: scan too large: a scan exceeds 16777216 bytes"
				}
				st, m, raw := bodiesSend(t, "POST", url, agent.Token, bodiesStream(head, 'a', fill, `"}}`),
					int64(len(head))+fill+3, nil)
				checkError(t, "190 MB scan", st, m, raw, 413, want)
			})
		}
		wg.Wait()
		checkHWMGrowth(t, p, "four 190 MB scans", hwm)
		requireDigestUnchanged(t, p, "big scans", before)
	})

	t.Run("75,000 language ranges", func(t *testing.T) {
		ranges := make([]string, 75000)
		for i := range ranges {
			ranges[i] = fmt.Sprintf("x-r%d", i)
		}
		before, hwm := getDigest(t, p.url, p.token), vmHWM(t, p)
		start := time.Now()
		st, m, raw := do(t, "PUT", p.url+"/v1/hierarchy/v1/languages", node, map[string]any{"child": "c1", "ranges": ranges})
		checkError(t, "child report of 75,000 ranges", st, m, raw, 400, "more than 256 ranges")
		st, m, raw = do(t, "PUT", p.url+"/v1/languages", p.token, map[string]any{"ranges": ranges})
		checkError(t, "PUT /v1/languages of 75,000 ranges", st, m, raw, 400, "more than 256 ranges")
		st, m, raw = do(t, "PUT", p.url+"/v1/languages", p.token, map[string]any{"ranges": []string{strings.Repeat("a", 1<<16)}})
		checkError(t, "a 64 KiB range", st, m, raw, 400, "limit is 64")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("refusing the ranges took %v", took)
		}
		checkHWMGrowth(t, p, "75,000 ranges", hwm)
		requireDigestUnchanged(t, p, "75,000 ranges", before)
	})

	t.Run("zstd bomb to the compliance route", func(t *testing.T) {
		head := `{"child":"c1","seq":1,"digest":"x","trigger":"x","interval":"1h","summary":{"site":"`
		bomb := bodiesZstd(t, bodiesStream(head, 'a', 256<<20, `"}}`))
		t.Logf("bomb: %d bytes compressed for 256 MiB", len(bomb))
		before, hwm := getDigest(t, p.url, p.token), vmHWM(t, p)
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				st, m, raw := bodiesSend(t, "POST", p.url+"/v1/hierarchy/v1/compliance", node, bytes.NewReader(bomb), int64(len(bomb)),
					map[string]string{"Content-Encoding": "zstd"})
				checkError(t, "zstd bomb", st, m, raw, 413, "decompressed body exceeds 8388608 bytes")
			})
		}
		wg.Wait()
		checkHWMGrowth(t, p, "six zstd bombs", hwm)
		requireDigestUnchanged(t, p, "zstd bombs", before)
	})
}

// testBadBodies is finding 7: bodies that are not JSON objects, and names that are not
// printable text, are refused with 400 and change nothing.
func testBadBodies(t *testing.T) {
	p := startSite(t, siteOpts{Name: "bodies", Languages: []string{"de"}})
	node := hierJoin(t, p, "c1")
	before := getDigest(t, p.url, p.token)

	t.Run("not objects", func(t *testing.T) {
		routes := []struct{ method, path, token string }{
			{"PUT", "/v1/languages", p.token},
			{"POST", "/v1/tokens", p.token},
			{"POST", "/v1/children", p.token},
			{"POST", "/v1/policies", p.token},
			{"PUT", "/v1/settings/agent", p.token},
			{"PUT", "/v1/replication/rules", p.token},
			{"POST", "/v1/scans", p.token},
			{"POST", "/v1/replication/now", p.token},
			{"PUT", "/v1/hierarchy/v1/languages", node},
			{"POST", "/v1/hierarchy/v1/compliance", node},
			{"POST", "/v1/hierarchy/v1/ack", node},
			{"POST", "/v1/hierarchy/v1/join", ""},
		}
		for _, rt := range routes {
			for _, body := range []string{"null", "[]", `["de"]`, `"x"`, "42", "true"} {
				st, m, raw := do(t, rt.method, p.url+rt.path, rt.token, body)
				checkError(t, rt.method+" "+rt.path+" "+body, st, m, raw, 400, "request body must be a JSON object")
			}
		}
		requireDigestUnchanged(t, p, "bodies that are not objects", before)
		var langs langResp
		doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &langs)
		if len(langs.Ranges) != 1 || langs.Ranges[0] != "de" {
			t.Errorf("languages after null bodies: %v", langs.Ranges)
		}
	})

	t.Run("names", func(t *testing.T) {
		names := []struct{ what, raw, want string }{
			{"control character", `"ab\u0007c"`, "contains the control character U+0007 at byte 2"},
			{"escape sequence", `"a\u001b[31mred"`, "contains the control character U+001B"},
			{"newline", `"a\nb"`, "contains the control character U+000A"},
			{"bidi override", `"abc\u202Egpj.exe"`, "contains the bidirectional formatting character U+202E at byte 3"},
			{"bidi isolate", `"\u2067x"`, "contains the bidirectional formatting character U+2067"},
			{"invalid UTF-8", "\"ab\xff\xfec\"", "is not valid UTF-8 (at byte 2)"},
			{"1 MB", `"` + strings.Repeat("n", 1000000) + `"`, "is 1000000 bytes, limit is 128"},
			{"empty", `""`, "is empty"},
		}
		for _, n := range names {
			for _, rt := range []struct{ what, method, path, token, body string }{
				{"child", "POST", "/v1/children", p.token, `{"name":` + n.raw + `}`},
				{"token", "POST", "/v1/tokens", p.token, `{"role":"agent","name":` + n.raw + `}`},
			} {
				if rt.what == "token" && n.what == "empty" {
					continue // a token's name is optional
				}
				st, m, raw := bodiesSend(t, rt.method, p.url+rt.path, rt.token, strings.NewReader(rt.body), int64(len(rt.body)), nil)
				if len(raw) > 1000 {
					t.Errorf("%s %s, %s: the answer is %d bytes; it echoes the name", rt.method, rt.path, n.what, len(raw))
				}
				checkError(t, rt.method+" "+rt.path+" "+n.what, st, m, raw, 400, rt.what+" name: "+n.want)
			}
		}
		// The public join route is rate limited: a few names, each retried after a 429.
		for _, n := range names[:4] {
			body := `{"name":` + n.raw + `,"join_token":"x"}`
			waitFor(t, 30*time.Second, func() (bool, string) {
				st, m, raw := bodiesSend(t, "POST", p.url+"/v1/hierarchy/v1/join", "", strings.NewReader(body), int64(len(body)), nil)
				if st == http.StatusTooManyRequests {
					return false, "join: 429"
				}
				checkError(t, "join as "+n.what, st, m, raw, 400, "child name: "+n.want)
				return true, ""
			})
		}
		requireDigestUnchanged(t, p, "bad names", before)
	})

	t.Run("site name", func(t *testing.T) {
		for _, name := range []string{"a\x1b[31m", "x\u202Ey", strings.Repeat("s", 129)} {
			cmd := exec.Command(requireBinary(t), "serve", "--role", "parent", "--name", name,
				"--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0")
			cmd.Env = cleanEnv()
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--name: site name: ") {
				t.Errorf("serve --name %q: %v, output %s", name, err, out)
			}
		}
	})
}
