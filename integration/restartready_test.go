package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRestartedFollowerReadyOnlyWhenCaughtUp SIGKILLs a follower of a 3-server site under a
// steady stream of writes, writes more while it is down, and restarts it. The first time its
// health says ready, the token acknowledged last before the restart must authenticate there and
// its state machine must have applied through the commit index the leader had at the restart:
// ready never comes from an older state.
func TestRestartedFollowerReadyOnlyWhenCaughtUp(t *testing.T) {
	t.Parallel()
	cycles := 20
	if soak() {
		cycles = 100
	}
	a := startSite(t, siteOpts{Name: "node-a", Site: "ready3", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	nodes := []*proc{a}
	for _, name := range []string{"node-b", "node-c"} {
		n := startSite(t, siteOpts{Name: name, Site: "ready3", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			JoinSite: a.url, Token: a.token})
		nodes = append(nodes, n)
	}
	admin := a.token
	leader := waitAgreement(t, nodes, admin, 3)
	var follower *proc
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}

	// Writes through the leader all along; failures (an election) are only counted.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked, failed := 0, 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			wctx, wcancel := context.WithTimeout(ctx, 4*time.Second)
			st, _, err := tryDo(wctx, "POST", leader.url+"/v1/tokens", admin, map[string]any{"role": "auditor", "name": fmt.Sprintf("bg-%d", i)})
			wcancel()
			mu.Lock()
			if err == nil && st == 201 {
				acked++
			} else if ctx.Err() == nil {
				failed++
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	for cycle := 0; cycle < cycles; cycle++ {
		follower.kill9(t)
		var last tokenResp
		for i := 0; i < 25; i++ { // a backlog the restarted follower must apply
			last = createToken(t, leader.url, admin, "auditor", fmt.Sprintf("down-%d-%d", cycle, i))
		}
		commit := getStatus(t, leader.url, admin).Raft.CommitIndex

		start := time.Now()
		follower.relaunch(t)
		notReady := waitFirstReady(t, follower)
		// The first request after ready: the token acknowledged before the restart.
		st, raw, err := tryDo(context.Background(), "GET", follower.url+"/v1/status", last.Token, nil)
		if err != nil || st != 200 {
			t.Fatalf("cycle %d: token acknowledged before the restart, first request after ready: %d %v %s", cycle, st, err, raw)
		}
		var s statusResp
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		if s.Raft.FSMApplied < commit {
			t.Fatalf("cycle %d: ready with the state machine at %d, before the commit index %d at restart", cycle, s.Raft.FSMApplied, commit)
		}
		t.Logf("cycle %d: ready after %v (%d health polls not ready), fsm applied %d ≥ commit at restart %d",
			cycle, time.Since(start).Round(time.Millisecond), notReady, s.Raft.FSMApplied, commit)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	t.Logf("background writes: %d acknowledged, %d failed", acked, failed)
	mu.Unlock()
	if acked == 0 {
		t.Fatal("no background write was acknowledged")
	}
	checkUnwritableFollower(t, follower, admin)
}

// checkUnwritableFollower makes a follower's data dir refuse writes (a directory where the
// server's write probe writes its file, as a full or read-only disk refuses them): within 10 s
// its health says not ready and names the cause, and it serves no read; once the data dir takes
// writes again it is ready again.
func checkUnwritableFollower(t *testing.T, follower *proc, admin string) {
	t.Helper()
	probe := filepath.Join(follower.dataDir, ".write-probe")
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, func() (bool, string) {
		st, raw, err := tryDo(context.Background(), "GET", follower.url+"/v1/health?require=ready", "", nil)
		return err == nil && st == 503 && strings.Contains(string(raw), "cannot write the data dir"),
			fmt.Sprintf("health of a follower that cannot write: %d %v %s", st, err, raw)
	})
	took := time.Since(start)
	if st, raw, err := tryDo(context.Background(), "GET", follower.url+"/v1/status", admin, nil); err != nil || st != 503 {
		t.Errorf("a read from a follower that cannot write its data dir: %d %v %s, want 503", st, err, raw)
	}
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		st, raw, err := tryDo(context.Background(), "GET", follower.url+"/v1/health?require=ready", "", nil)
		return err == nil && st == 200, fmt.Sprintf("health once the data dir takes writes again: %d %v %s", st, err, raw)
	})
	t.Logf("a follower whose data dir refused writes was not ready after %v, and ready again once it took them", took.Round(time.Millisecond))
}

// waitFirstReady polls a starting server's /v1/health?require=ready as fast as it answers and
// returns once it says 200, with the number of 503 answers before that. A 200 must say ready.
func waitFirstReady(t *testing.T, p *proc) int {
	t.Helper()
	addrFile := filepath.Join(p.dataDir, "api.addr")
	notReady := 0
	waitFor(t, 30*time.Second, func() (bool, string) {
		if p.exited() {
			t.Fatalf("%s exited during startup: %v", p.name, p.cur.err)
		}
		b, err := os.ReadFile(addrFile)
		if err != nil {
			return false, p.name + ": api.addr not written yet"
		}
		p.url = strings.TrimSpace(string(b))
		st, body, err := tryDo(context.Background(), "GET", p.url+"/v1/health?require=ready", "", nil)
		switch {
		case err != nil:
			return false, fmt.Sprintf("%s: health: %v", p.name, err)
		case st == 503:
			notReady++
			if !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: 503 without a JSON error: %s", p.name, body)
			}
			return false, fmt.Sprintf("%s: not ready: %s", p.name, body)
		case st != 200 || !strings.Contains(string(body), `"ready": true`):
			t.Fatalf("%s: health?require=ready: %d %s", p.name, st, body)
		}
		return true, ""
	})
	return notReady
}
