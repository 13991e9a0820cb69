// Package integration holds multi-process tests that drive the real
// patchtree binary: each test starts `patchtree serve` processes on
// loopback, talks to them over HTTP, kills and restarts them.
//
// TestMain builds patchtree/cmd/patchtree (without -race) once; set
// PATCHTREE_ITEST_BINARY to test a prebuilt binary instead. -short skips
// everything; -v shows the measured restart and failover times. A failed
// test prints the log tail of each of its server processes.
//
// Every test starts its own servers on 127.0.0.1:0 (fixed ports only from
// freePort, below the ephemeral range) and shares no state, so tests run in parallel;
// `make test` bounds them with -parallel 4. Loops of kills and rounds run a
// short form by default and their long form with PATCHTREE_SOAK=1
// (`make soak`).
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binPath  string // the patchtree binary built by TestMain
	buildErr error  // why it could not be built, reported by every test
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	tmp, err := os.MkdirTemp("", "patchtree-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	if bin := os.Getenv("PATCHTREE_ITEST_BINARY"); bin != "" {
		binPath = bin // test a prebuilt binary instead of building one
	} else {
		buildErr = buildBinary(tmp)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// buildBinary compiles patchtree/cmd/patchtree (without -race) into dir.
func buildBinary(dir string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return fmt.Errorf("no go.mod above %s", wd)
		}
		root = parent
	}
	out := filepath.Join(dir, "patchtree")
	cmd := exec.Command("go", "build", "-o", out, "patchtree/cmd/patchtree")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build patchtree/cmd/patchtree: %v\n%s", err, b)
	}
	binPath = out
	return nil
}

// requireBinary skips in -short mode and fails if the build failed.
func requireBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process integration test; skipped with -short")
	}
	if buildErr != nil {
		t.Fatalf("patchtree binary unavailable: %v", buildErr)
	}
	return binPath
}

// soak reports whether PATCHTREE_SOAK=1 asks for the long forms of the
// tests' loops (`make soak`).
func soak() bool { return os.Getenv("PATCHTREE_SOAK") == "1" }

// cleanEnv is the environment without PATCHTREE_* variables.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATCHTREE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// siteOpts describes one `patchtree serve` process.
type siteOpts struct {
	Name       string // node name for logs; also the site name unless Site is set
	Site       string // --name: the site's name, shared by all its nodes
	Role       string // "parent" (default) or "child"
	RaftListen string // fixed raft address; empty = server default
	JoinSite   string // URL of an existing node of the site
	Token      string // admin token of the site, for JoinSite
	Languages  []string
	Extra      []string
}

// run is one OS process of a proc; err is valid once done is closed.
type run struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// proc is a patchtree server node that may be killed and restarted.
type proc struct {
	name    string
	dataDir string
	logPath string
	args    []string
	url     string // base URL from api.addr of the current run
	token   string // admin token of the site
	cur     *run
}

// startSite starts a node, waits for api.addr and a ready health check,
// and reads the admin token (admin.token for a bootstrapping node).
func startSite(t *testing.T, o siteOpts) *proc {
	t.Helper()
	requireBinary(t)
	if o.Name == "" {
		o.Name = "site"
	}
	if o.Site == "" {
		o.Site = o.Name
	}
	if o.Role == "" {
		o.Role = "parent"
	}
	base := t.TempDir() // registered before the proc cleanup: removed after it
	p := &proc{
		name:    o.Name,
		dataDir: filepath.Join(base, "data"),
		logPath: filepath.Join(base, o.Name+".log"),
	}
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.args = []string{"serve", "--role", o.Role, "--name", o.Site,
		"--data-dir", p.dataDir, "--listen", "127.0.0.1:0"}
	if o.RaftListen != "" {
		p.args = append(p.args, "--raft-listen", o.RaftListen)
	}
	if o.JoinSite != "" {
		p.args = append(p.args, "--join-site", o.JoinSite, "--token", o.Token)
	}
	if len(o.Languages) > 0 {
		p.args = append(p.args, "--languages", strings.Join(o.Languages, ","))
	}
	p.args = append(p.args, o.Extra...)
	p.args = append(p.args, testImportAllow(o.Extra)...)
	t.Cleanup(func() { p.cleanup(t) })
	p.launch(t)
	p.waitUp(t, 30*time.Second)
	if o.JoinSite != "" {
		p.token = o.Token
	} else {
		p.token = readAdminToken(t, p.dataDir)
	}
	return p
}

func readAdminToken(t *testing.T, dataDir string) string {
	t.Helper()
	path := filepath.Join(dataDir, "admin.token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.Contains(tok, "\n") {
		t.Fatalf("admin.token should hold exactly one non-empty line, got %q", b)
	}
	return tok
}

func (p *proc) launch(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== %s harness: starting patchtree %s\n",
		time.Now().Format("15:04:05.000"), strings.Join(p.args, " "))
	cmd := exec.Command(binPath, p.args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = f, f, cleanEnv()
	cmd.SysProcAttr = serverSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		f.Close()
		close(r.done)
	}()
	p.cur = r
}

func (p *proc) exited() bool {
	select {
	case <-p.cur.done:
		return true
	default:
		return false
	}
}

// waitUp waits for a fresh api.addr and then for /v1/health ready=true.
func (p *proc) waitUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	addrFile := filepath.Join(p.dataDir, "api.addr")
	p.url = ""
	waitFor(t, timeout, func() (bool, string) {
		if p.exited() {
			t.Fatalf("%s exited during startup: %v", p.name, p.cur.err)
		}
		b, err := os.ReadFile(addrFile) // re-read: never trust a stale one
		if err != nil {
			return false, p.name + ": api.addr not written yet"
		}
		u := strings.TrimSpace(string(b))
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			return false, fmt.Sprintf("%s: api.addr holds %q, want http://127.0.0.1:PORT", p.name, b)
		}
		p.url = u
		st, body, err := tryDo(context.Background(), "GET", p.url+"/v1/health", "", nil)
		if err != nil || st != 200 {
			return false, fmt.Sprintf("%s: health: status %d err %v body %s", p.name, st, err, body)
		}
		var h struct {
			Ready     bool   `json:"ready"`
			RaftState string `json:"raft_state"`
		}
		if err := json.Unmarshal(body, &h); err != nil || !h.Ready {
			return false, fmt.Sprintf("%s: health not ready: %s", p.name, body)
		}
		return true, ""
	})
}

// kill9 SIGKILLs the node and waits for it to be gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("kill9: %s already exited: %v", p.name, p.cur.err)
	}
	_ = p.cur.cmd.Process.Signal(syscall.SIGKILL)
	<-p.cur.done
	p.mark("SIGKILL delivered, process gone")
}

// mark appends a harness event line to the node's log.
func (p *proc) mark(msg string) {
	if f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "==== %s harness: %s\n", time.Now().Format("15:04:05.000"), msg)
		f.Close()
	}
}

// stop sends SIGTERM and expects a clean exit (status 0) within 20 s.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		return
	}
	p.mark("sending SIGTERM")
	_ = p.cur.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.cur.done:
		if p.cur.err != nil {
			t.Errorf("%s: exit after SIGTERM: %v (want clean exit 0)", p.name, p.cur.err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s: still running 20s after SIGTERM; killing", p.name)
		_ = p.cur.cmd.Process.Signal(syscall.SIGKILL)
		<-p.cur.done
	}
}

// restart starts the stopped node again with the same data dir and flags
// and returns the time until it was ready.
func (p *proc) restart(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	p.relaunch(t)
	p.waitUp(t, 30*time.Second)
	return time.Since(start)
}

// relaunch starts the stopped node again with the same data dir and flags,
// without waiting for it; its stale api.addr is removed first.
func (p *proc) relaunch(t *testing.T) {
	t.Helper()
	if !p.exited() {
		t.Fatalf("restart: %s is still running", p.name)
	}
	if err := os.Remove(filepath.Join(p.dataDir, "api.addr")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	// --languages only seeds a new site; on a restart it must equal the stored ranges, which a
	// test may have changed since: restart as an operator would, without it.
	if i := slices.Index(p.args, "--languages"); i >= 0 && i+1 < len(p.args) {
		p.args = slices.Delete(slices.Clone(p.args), i, i+2)
	}
	p.launch(t)
}

func (p *proc) cleanup(t *testing.T) {
	if p.cur == nil {
		return
	}
	if t.Failed() {
		if !p.exited() {
			_ = p.cur.cmd.Process.Signal(syscall.SIGKILL)
			<-p.cur.done
		}
	} else {
		p.stop(t)
	}
	if t.Failed() {
		t.Logf("---- tail of %s log (%s) ----\n%s", p.name, p.logPath, tail(p.logPath, 50))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds, failing with its last reason.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	if !eventually(t, timeout, cond) {
		t.FailNow()
	}
}

// eventually polls cond until it holds; on timeout it reports the last
// reason with t.Errorf (so later checks still run) and returns false.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, reason := cond()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("not reached within %v: %s", timeout, reason)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago, for a server that must keep
// its port across restarts (a Raft address). It comes from below the kernel's ephemeral range:
// a port from 127.0.0.1:0 could be taken, while its server is killed, by any socket the kernel
// numbers, such as another test's listener or a peer's outgoing connection, and the restart then
// fails with "address already in use". Ports are handed out in turn, so tests of this process
// never share one.
func freePort(t *testing.T) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.next == 0 {
		ports.low = ephemeralLow() - 12000
		ports.next = ports.low + rand.IntN(6000) // apart from another run of these tests
	}
	for range 2000 {
		p := ports.next
		if ports.next++; ports.next >= ephemeralLow() {
			ports.next = ports.low
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

var ports struct {
	sync.Mutex
	low, next int
}

// ephemeralLow is the first port the kernel hands out for port 0 (32768 unless configured).
func ephemeralLow() int {
	low := 32768
	if buf, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(buf), &lo, &hi); err == nil && lo > 13000 {
			low = lo
		}
	}
	return low
}
