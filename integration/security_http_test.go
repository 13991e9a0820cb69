package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// joinRefused is the one answer to a join without a valid join token.
const joinRefused = "join refused: unknown child or invalid join token"

// fromAddr is an HTTP client whose connections leave from a loopback address of its own
// (127.0.0.0/8 all reach the servers on Linux), so a test can play an attacker that is another
// client address than the real children and operators on 127.0.0.1.
func fromAddr(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
}

// postJoin sends one join attempt with client and returns status, Retry-After and body.
func postJoin(client *http.Client, url, name, token string) (int, string, []byte, error) {
	body, _ := json.Marshal(map[string]string{"name": name, "join_token": token})
	resp, err := client.Post(url+"/v1/hierarchy/v1/join", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), raw, err
}

// errorOf is the "error" of a JSON error body.
func errorOf(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Error
}

// testJoinBruteForce is finding 2: 5,000 join attempts from one address, with wrong tokens and
// unknown child names, get 429 after the join limit, write nothing to the Raft log and leave the
// site unchanged; an unknown child and a wrong token answer alike; the real child, from another
// address, still joins.
func testJoinBruteForce(t *testing.T) {
	parent := startSite(t, siteOpts{Name: "hq"})
	joinTok := hierEnrol(t, parent, "emea")
	before := getDigest(t, parent.url, parent.token)
	raftDB := filepath.Join(parent.dataDir, "raft", "raft.db")
	fi, err := os.Stat(raftDB)
	if err != nil {
		t.Fatal(err)
	}
	dbBefore := fi.Size()

	// One address probes: an unknown child and a wrong token cannot be told apart.
	probe := fromAddr("127.0.0.3", 1)
	wrongTok := "deadbeef.c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU"
	st1, _, raw1, err1 := postJoin(probe, parent.url, "no-such-child", joinTok)
	st2, _, raw2, err2 := postJoin(probe, parent.url, "emea", wrongTok)
	if err1 != nil || err2 != nil {
		t.Fatalf("probe joins: %v, %v", err1, err2)
	}
	if st1 != 401 || st2 != 401 || errorOf(raw1) != joinRefused || errorOf(raw2) != joinRefused {
		t.Errorf("unknown child: %d %s; wrong token: %d %s; want both 401 %q", st1, raw1, st2, raw2, joinRefused)
	}

	// The attacker: 5,000 attempts from 127.0.0.2 by 32 workers over kept-alive connections.
	const attempts, workers = 5000, 32
	attacker := fromAddr("127.0.0.2", workers)
	var next, refused, limited atomic.Int64
	var mu sync.Mutex
	var other []string
	var retryAfter, limitMsg string
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > attempts {
					return
				}
				name := "emea"
				if i%2 == 0 {
					name = fmt.Sprintf("guess-%d", i)
				}
				st, ra, raw, err := postJoin(attacker, parent.url, name, fmt.Sprintf("id%d.secret%d", i, i))
				switch {
				case err == nil && st == 401 && errorOf(raw) == joinRefused:
					refused.Add(1)
				case err == nil && st == 429:
					if limited.Add(1) == 1 {
						mu.Lock()
						retryAfter, limitMsg = ra, errorOf(raw)
						mu.Unlock()
					}
				default:
					mu.Lock()
					if len(other) < 5 {
						other = append(other, fmt.Sprintf("status %d err %v body %s", st, err, raw))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d join attempts in %v: %d refused (401), %d limited (429), %d other", attempts, took.Round(time.Millisecond),
		refused.Load(), limited.Load(), attempts-refused.Load()-limited.Load())
	if len(other) > 0 {
		t.Errorf("unexpected answers to join attempts: %v", other)
	}
	// The default join limit: a burst of 10, then 30 a minute.
	if maxRefused := int64(10 + 30*took.Minutes() + 2); refused.Load() > maxRefused {
		t.Errorf("%d attempts reached the join check; the limit allows about %d", refused.Load(), maxRefused)
	}
	if limited.Load() < attempts-100 {
		t.Errorf("only %d of %d attempts were rate limited", limited.Load(), attempts)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("429 without a Retry-After in seconds: %q", retryAfter)
	}
	if !strings.Contains(limitMsg, "too many join attempts") {
		t.Errorf("429 error %q does not say what was limited", limitMsg)
	}

	fi, err = os.Stat(raftDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("raft.db: %d -> %d bytes", dbBefore, fi.Size())
	if grew := fi.Size() - dbBefore; grew >= 64<<10 {
		t.Errorf("raft.db grew by %d bytes during the attack, limit 64 KiB", grew)
	}
	requireDigestUnchanged(t, parent, "join brute force", before)

	// The real child joins from 127.0.0.1 while the attacker's address is still limited.
	if st, _, _, err := postJoin(attacker, parent.url, "emea", joinTok); err != nil || st != 429 {
		t.Errorf("attacker after the attack: %d %v, want still 429", st, err)
	}
	startSite(t, siteOpts{Name: "emea", Role: "child", Extra: []string{"--parent", parent.url, "--join-token", joinTok}})
	hierWaitReported(t, parent, "emea", []string{"en"})
}

// slowConn is one slow-body connection of the attack and when the server closed it.
type slowConn struct {
	opened, closed time.Time
	err            error
}

// testSlowConnections is finding 4: 300 slow-body connections to the public join route from one
// address, against a server with a 2 s read timeout and 20 connections per client address. The
// cap closes most at once, the read timeout the rest; the server answers health and status from
// another address meanwhile; nothing changes.
func testSlowConnections(t *testing.T) {
	const readTimeout, perClient, conns = 2 * time.Second, 20, 300
	p := startSite(t, siteOpts{Name: "slow", Extra: []string{
		"--http-read-timeout", readTimeout.String(), "--http-max-conns-per-client", strconv.Itoa(perClient)}})
	before := getDigest(t, p.url, p.token)
	host := strings.TrimPrefix(p.url, "http://")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	results := make([]slowConn, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			r := &results[i]
			r.opened = time.Now()
			c, err := d.DialContext(ctx, "tcp", host)
			if err != nil {
				r.err, r.closed = err, time.Now()
				return
			}
			defer c.Close()
			head := "POST /v1/hierarchy/v1/join HTTP/1.1\r\nHost: " + host +
				"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
			if _, err := c.Write([]byte(head)); err != nil {
				r.closed = time.Now() // closed before the request was even sent
				return
			}
			// Drip a byte every 300 ms; read whatever the server answers until it closes.
			go func() {
				for ctx.Err() == nil {
					time.Sleep(300 * time.Millisecond)
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err = io.Copy(io.Discard, c)
			r.closed = time.Now()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.err = errors.New("still open after 30 s")
			}
		})
	}

	// Meanwhile the operator, from 127.0.0.1, is answered promptly.
	const answerBound = 3 * time.Second
	var worst time.Duration
	for range 10 {
		for _, path := range []string{"/v1/health", "/v1/status"} {
			start := time.Now()
			c, cancelReq := context.WithTimeout(context.Background(), answerBound)
			st, body, err := tryDo(c, "GET", p.url+path, p.token, nil)
			cancelReq()
			took := time.Since(start)
			worst = max(worst, took)
			if err != nil || st != 200 {
				t.Errorf("GET %s during the attack: %d %v %s (after %v)", path, st, err, body, took)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("health and status during the attack: slowest answer %v", worst.Round(time.Millisecond))
	wg.Wait()
	cancel()

	var atOnce, byTimeout, late int
	var longest time.Duration
	for i, r := range results {
		held := r.closed.Sub(r.opened)
		longest = max(longest, held)
		switch {
		case r.err != nil:
			if late++; late <= 5 {
				t.Errorf("slow connection %d: %v", i, r.err)
			}
		case held < readTimeout/2:
			atOnce++
		case held <= readTimeout+3*time.Second:
			byTimeout++
		default:
			if late++; late <= 5 {
				t.Errorf("slow connection %d held for %v, read timeout %v", i, held, readTimeout)
			}
		}
	}
	t.Logf("%d slow connections: %d closed at once, %d by the read timeout, %d late; longest held %v",
		conns, atOnce, byTimeout, late, longest.Round(time.Millisecond))
	if byTimeout > conns-atOnce || atOnce < conns/2 {
		t.Errorf("the per-client cap of %d closed only %d of %d connections at once", perClient, atOnce, conns)
	}
	requireDigestUnchanged(t, p, "slow connections", before)
}

// testDataDir is finding 8: a second serve on a data dir in use exits at once naming the owner's
// pid; a data dir open to others is tightened to 0700; a child's join token read from
// --join-token-file joins and is not in the process's command line, and a secret file others can
// read is refused.
func testDataDir(t *testing.T) {
	p := startSite(t, siteOpts{Name: "dd"})
	pid := p.cur.cmd.Process.Pid

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, binPath, p.args...)
	second.Env = cleanEnv()
	var stderr bytes.Buffer
	second.Stderr = &stderr
	err := second.Run()
	took := time.Since(start)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("second serve on the same data dir: %v, want exit status 1", err)
	}
	want := fmt.Sprintf("data dir %s in use by pid %d", p.dataDir, pid)
	if msg := strings.TrimSpace(stderr.String()); !strings.Contains(msg, want) || strings.Count(msg, "\n") > 0 {
		t.Errorf("second serve said %q; want one line with %q", msg, want)
	}
	t.Logf("second serve refused in %v", took.Round(time.Millisecond))
	if took > 1500*time.Millisecond {
		t.Errorf("second serve took %v to give up, want about 1 s at most", took)
	}
	if st, _, _ := do(t, "GET", p.url+"/v1/health", "", nil); st != 200 {
		t.Errorf("first server after the second one's attempt: health %d", st)
	}

	p.stop(t)
	if err := os.Chmod(p.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.restart(t)
	fi, err := os.Stat(p.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir after a restart from 0755: %#o, want 0700", perm)
	}
	if log := tail(p.logPath, 200); !strings.Contains(log, "tightened") {
		t.Errorf("no log line about tightening the data dir")
	}

	joinTok := hierEnrol(t, p, "fromfile")
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.token")
	if err := os.WriteFile(loose, []byte(joinTok+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	bad := exec.Command(binPath, "serve", "--role", "child", "--name", "x", "--data-dir", filepath.Join(dir, "x"),
		"--listen", "127.0.0.1:0", "--parent", p.url, "--join-token-file", loose)
	bad.Env = cleanEnv()
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "accessible by group or others") {
		t.Errorf("a join token file readable by others: %v %s", err, out)
	}

	private := filepath.Join(dir, "join.token")
	if err := os.WriteFile(private, []byte(joinTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startSite(t, siteOpts{Name: "fromfile", Role: "child", Extra: []string{"--parent", p.url, "--join-token-file", private}})
	hierWaitReported(t, p, "fromfile", []string{"en"})
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.cur.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read the child's command line: %v", err)
	}
	if bytes.Contains(cmdline, []byte(joinTok)) {
		t.Errorf("the join token is in the child's command line")
	}
	_, secret, _ := strings.Cut(joinTok, ".")
	if bytes.Contains(cmdline, []byte(secret)) {
		t.Errorf("the join token's secret is in the child's command line")
	}
}
