// Package procbench holds benchmarks against the real `patchtree serve` process: a benchmark
// starts the server on 127.0.0.1:0 with its own data dir, drives it over HTTP, and reads the
// server's CPU time and peak RSS from /proc (Linux only; elsewhere the benchmarks skip).
//
// The binary is built once per test binary (without -race) on first use; set
// PATCHTREE_BENCH_BINARY to measure a prebuilt one. Every benchmark reports its figures with
// b.ReportMetric, so `make bench` prints them next to ns/op.
package procbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string // the patchtree binary built on first use
	buildErr  error  // why it could not be built
	buildDir  string // holds binPath; removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// moduleRoot is the directory holding go.mod above the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		dir = parent
	}
}

// binary returns the patchtree binary, building it on first use; it skips on systems without
// /proc and with -short.
func binary(tb testing.TB) string {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("procbench reads /proc: Linux only")
	}
	if testing.Short() {
		tb.Skip("process benchmark; skipped with -short")
	}
	buildOnce.Do(func() {
		if bin := os.Getenv("PATCHTREE_BENCH_BINARY"); bin != "" {
			binPath = bin
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "patchtree-procbench-"); err != nil {
			buildErr = fmt.Errorf("temp dir: %w", err)
			return
		}
		out := filepath.Join(buildDir, "patchtree")
		cmd := exec.Command("go", "build", "-o", out, "patchtree/cmd/patchtree")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build patchtree/cmd/patchtree: %w\n%s", err, b)
			return
		}
		binPath = out
	})
	if buildErr != nil {
		tb.Fatalf("patchtree binary unavailable: %v", buildErr)
	}
	return binPath
}

// sharedData returns <module root>/../shared/data/<rel>, or skips tb when it is absent.
func sharedData(tb testing.TB, rel string) string {
	tb.Helper()
	root, err := moduleRoot()
	if err != nil {
		tb.Skipf("shared data unavailable: %v", err)
	}
	p := filepath.Join(root, "..", "shared", "data", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data %s is absent (%v); skipping", rel, err)
	}
	return p
}

// ServerOpts describes one `patchtree serve` process.
type ServerOpts struct {
	Name      string   // site name (--name); default "bench"
	Role      string   // "parent" (default), "relay" or "child"
	Languages []string // --languages of the new site; default the server's
	Extra     []string // more flags, e.g. --catalog-max-bytes
}

// Server is a running `patchtree serve` process.
type Server struct {
	Name    string
	Dir     string // temp dir holding DataDir and the log
	DataDir string
	LogPath string
	URL     string // base URL from api.addr
	Token   string // the site's admin token (admin.token)
	bin     string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // valid once done is closed
	client  *http.Client
}

// launch starts the process (its output appended to the log) without waiting for it.
func (s *Server) launch(tb testing.TB) {
	tb.Helper()
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start patchtree serve: %v", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.err = err
		close(done)
	}()
}

// Restart stops the server (SIGTERM, a clean exit expected) and starts it again on the same
// data dir, then waits until it is ready: a process that holds only what its state needs
// (after an import, say). --languages only seeds a new site and is dropped.
func (s *Server) Restart(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	s.Stop(tb)
	if s.err != nil {
		tb.Fatalf("%s: exit after SIGTERM: %v", s.Name, s.err)
	}
	if err := os.Remove(filepath.Join(s.DataDir, "api.addr")); err != nil && !errors.Is(err, os.ErrNotExist) {
		tb.Fatal(err)
	}
	if i := slices.Index(s.args, "--languages"); i >= 0 && i+1 < len(s.args) {
		s.args = slices.Delete(slices.Clone(s.args), i, i+2)
	}
	s.launch(tb)
	s.waitUp(tb, timeout)
}

// StartServer starts `patchtree serve` on 127.0.0.1:0 with a fresh data dir, waits until it
// is ready and reads its admin token. The server is stopped (SIGTERM) when tb ends; a failed
// benchmark also logs the tail of its log.
func StartServer(tb testing.TB, o ServerOpts) *Server {
	tb.Helper()
	bin := binary(tb)
	if o.Name == "" {
		o.Name = "bench"
	}
	if o.Role == "" {
		o.Role = "parent"
	}
	dir := tb.TempDir()
	s := &Server{
		Name:    o.Name,
		Dir:     dir,
		DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(dir, o.Name+".log"),
		client:  &http.Client{Timeout: 10 * time.Minute},
	}
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	args := []string{"serve", "--role", o.Role, "--name", o.Name,
		"--data-dir", s.DataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"}
	if len(o.Languages) > 0 {
		args = append(args, "--languages", strings.Join(o.Languages, ","))
	}
	args = append(args, o.Extra...)
	if !hasFlag(o.Extra, "--import-allow") {
		allow := []string{os.TempDir()}
		if root, err := moduleRoot(); err == nil {
			allow = append(allow, filepath.Join(root, "testdata"), filepath.Join(root, "..", "shared", "data"))
		}
		args = append(args, "--import-allow", strings.Join(allow, ","))
	}
	s.bin, s.args = bin, args
	s.launch(tb)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("---- tail of %s log ----\n%s", s.Name, s.LogTail(40))
		}
		s.Stop(tb)
	})
	s.waitUp(tb, 60*time.Second)
	tok, err := os.ReadFile(filepath.Join(s.DataDir, "admin.token"))
	if err != nil {
		tb.Fatalf("admin token: %v", err)
	}
	s.Token = strings.TrimSpace(string(tok))
	return s
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// cleanEnv is the environment without PATCHTREE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATCHTREE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

func (s *Server) waitUp(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	reason := ""
	for time.Now().Before(deadline) {
		if s.Exited() {
			tb.Fatalf("%s exited during startup: %v\n%s", s.Name, s.err, s.LogTail(30))
		}
		b, err := os.ReadFile(filepath.Join(s.DataDir, "api.addr"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "http://127.0.0.1:") {
			s.URL = strings.TrimSpace(string(b))
			var h struct {
				Ready bool `json:"ready"`
			}
			st, err := s.Do(context.Background(), "GET", "/v1/health", nil, &h)
			if err == nil && st == http.StatusOK && h.Ready {
				return
			}
			reason = fmt.Sprintf("health: status %d, ready %v, err %v", st, h.Ready, err)
		} else {
			reason = "api.addr not written yet"
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s not ready within %v: %s", s.Name, timeout, reason)
}

// Stop sends SIGTERM and waits up to 30 s for the exit, then SIGKILLs.
func (s *Server) Stop(tb testing.TB) {
	if s.Exited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		tb.Errorf("%s: still running 30 s after SIGTERM; killing", s.Name)
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// LogTail is the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogLines is the last n lines of the server's log that contain substr.
func (s *Server) LogLines(substr string, n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

// Do sends a request with the admin token; body (if not nil) is sent as JSON and a 2xx
// answer is decoded into out (if not nil). It returns the status; a non-2xx status is an
// error carrying the body.
func (s *Server) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	return s.DoToken(ctx, s.Token, method, path, body, out)
}

// DoToken is Do with another bearer token ("" for none).
func (s *Server) DoToken(ctx context.Context, token, method, path string, body, out any) (int, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return doJSON(ctx, s.client, method, s.URL, path, h, body, out)
}

// doJSON sends method base+path with header; body (if not nil) is sent as JSON and a 2xx
// answer is decoded into out (if not nil). It returns the status; a non-2xx status is an error
// carrying the body.
func doJSON(ctx context.Context, client *http.Client, method, base, path string, header http.Header, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %.200s: %w", method, path, raw, err)
		}
	}
	return resp.StatusCode, nil
}

// ImportRun is the part of an import run (GET /v1/catalog/imports/{id}) the benchmarks read.
type ImportRun struct {
	ID             string    `json:"id"`
	State          string    `json:"state"`
	Phase          string    `json:"phase"`
	Error          string    `json:"error"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	CatalogVersion uint64    `json:"catalog_version"`
}

// Import runs POST /v1/catalog/import with body and polls the run until it is no longer
// running; it fails tb unless the run succeeded (or found the catalog unchanged). A 503 right after a start is retried.
func (s *Server) Import(tb testing.TB, body map[string]any, timeout time.Duration) ImportRun {
	tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var run ImportRun
	for {
		st, err := s.Do(ctx, "POST", "/v1/catalog/import", body, &run)
		if err == nil {
			break
		}
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			tb.Fatalf("start import %v: %v", body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for run.State == "running" {
		if time.Now().After(deadline) {
			tb.Fatalf("import %s still running after %v (phase %s)", run.ID, timeout, run.Phase)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := s.Do(ctx, "GET", "/v1/catalog/imports/"+run.ID, nil, &run); err != nil {
			tb.Fatalf("poll import: %v", err)
		}
	}
	if run.State != "succeeded" && run.State != "unchanged" {
		tb.Fatalf("import %s: state %q, error %q", run.ID, run.State, run.Error)
	}
	return run
}

// ProcStats are a process's cumulative CPU time and memory, read from /proc.
type ProcStats struct {
	CPU     time.Duration // user + system time so far
	RSS     int64         // resident set size now, bytes (VmRSS)
	PeakRSS int64         // peak resident set size, bytes (VmHWM)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux ABI Go runs on.
const clockTick = 100

// ReadProcStats reads pid's CPU time from /proc/PID/stat and its RSS and peak RSS from
// /proc/PID/status.
func ReadProcStats(pid int) (ProcStats, error) {
	var ps ProcStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("read stat: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields count from
	// after its closing parenthesis, where field 3 (state) is the first.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ps, fmt.Errorf("parse /proc/%d/stat: no ')' in %q", pid, stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return ps, fmt.Errorf("parse /proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return ps, fmt.Errorf("parse /proc/%d/stat times: %w", pid, err)
	}
	ps.CPU = time.Duration(utime+stime) * time.Second / clockTick
	st, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("read status: %w", err)
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v) // "123456 kB"
		if len(fs) != 2 || fs[1] != "kB" {
			return ps, fmt.Errorf("parse /proc/%d/status %s: %q", pid, k, v)
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return ps, fmt.Errorf("parse /proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			ps.RSS = n << 10
		} else {
			ps.PeakRSS = n << 10
		}
	}
	if err := sc.Err(); err != nil {
		return ps, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	return ps, nil
}

// Stats reads the server's ProcStats, failing tb on error.
func (s *Server) Stats(tb testing.TB) ProcStats {
	tb.Helper()
	ps, err := ReadProcStats(s.PID())
	if err != nil {
		tb.Fatalf("%s: %v", s.Name, err)
	}
	return ps
}

// ResetPeakRSS resets the server's peak RSS (VmHWM) to its current RSS, so a later PeakRSS
// covers only what follows (writes "5" to /proc/PID/clear_refs, Linux 4.0+). It returns an
// error where the kernel refuses; the benchmark then reports the peak since the start.
func (s *Server) ResetPeakRSS() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID()), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of %s: %w", s.Name, err)
	}
	return nil
}

// MiB is n bytes in MiB, for ReportMetric.
func MiB(n int64) float64 { return float64(n) / (1 << 20) }

// TestHarness starts a server, reads its stats and stops it: the harness itself works.
func TestHarness(t *testing.T) {
	s := StartServer(t, ServerOpts{Name: "harness"})
	var h struct {
		Ready bool `json:"ready"`
	}
	if _, err := s.Do(context.Background(), "GET", "/v1/health", nil, &h); err != nil || !h.Ready {
		t.Fatalf("health: ready %v, err %v", h.Ready, err)
	}
	ps := s.Stats(t)
	if ps.CPU <= 0 || ps.RSS <= 0 || ps.PeakRSS < ps.RSS {
		t.Fatalf("implausible stats of a running server: %+v", ps)
	}
	if err := s.ResetPeakRSS(); err != nil {
		t.Logf("note: %v", err)
	}
	t.Logf("server %d: cpu %v, rss %.1f MiB, peak %.1f MiB", s.PID(), ps.CPU, MiB(ps.RSS), MiB(ps.PeakRSS))
	pid := s.PID()
	s.Restart(t, 60*time.Second)
	if _, err := s.Do(context.Background(), "GET", "/v1/health", nil, &h); err != nil || !h.Ready || s.PID() == pid {
		t.Fatalf("after a restart: pid %d (was %d), ready %v, err %v", s.PID(), pid, h.Ready, err)
	}
	s.Stop(t)
	if !s.Exited() || s.err != nil {
		t.Fatalf("stop: exited %v, err %v", s.Exited(), s.err)
	}
}

// envInt reads a positive integer from the environment variable name (a benchmark's scale), or
// def when it is unset or not one.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
