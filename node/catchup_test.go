package node

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

func TestFSMCaughtUpCountsOnlyCommands(t *testing.T) {
	logs := raft.NewInmemStore()
	types := []raft.LogType{raft.LogCommand, raft.LogNoop, raft.LogCommand, raft.LogConfiguration, raft.LogNoop, raft.LogBarrier}
	for i, lt := range types {
		if err := logs.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Type: lt}); err != nil {
			t.Fatal(err)
		}
	}
	n := &Node{fsm: testFSM(t), logs: logs}
	cases := []struct {
		applied, commit uint64
		want            bool
	}{
		{0, 6, false}, // entry 1 is a command the FSM has not run
		{1, 2, true},  // only a no-op after it
		{1, 6, false}, // entry 3 is a command
		{3, 6, true},  // configuration, no-op and barrier do not reach the FSM
		{6, 6, true},
		{6, 5, true},
	}
	for _, tc := range cases {
		n.fsm.applied.Store(tc.applied)
		if got := n.fsmCaughtUp(tc.commit); got != tc.want {
			t.Errorf("applied %d, commit %d: caught up = %v, want %v", tc.applied, tc.commit, got, tc.want)
		}
	}
	// Entries compacted into a snapshot were applied (or restored) before Raft dropped them.
	if err := logs.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	n.fsm.applied.Store(0)
	if !n.fsmCaughtUp(6) {
		t.Error("compacted entries counted as not applied")
	}
	n.fsm.applied.Store(1)
	if n.fsmCaughtUp(maxCatchUpScan + 2) {
		t.Error("a gap longer than maxCatchUpScan counted as caught up")
	}
}

// A new server whose FSM lags behind what Raft handed it is not ready: Raft's AppliedIndex moves
// when entries are queued for the FSM, so readiness must follow the FSM's own index.
func TestFollowerReadyOnlyOnceItsFSMApplied(t *testing.T) {
	nodes, _ := testCluster(t, 1, &loopProbe{running: map[string]int{}})
	leader := nodes[0]
	waitFor(t, 10*time.Second, func() (bool, string) { return leader.Ready(), "leader not ready" })
	const tokens = 20
	for i := range tokens {
		if _, err := leader.CreateToken(store.Actor{}, store.RoleAuditor, fmt.Sprintf("t%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	gate := make(chan struct{})
	var release sync.Once
	_, trans := raft.NewInmemTransport("raft-late")
	leader.trans.(*raft.InmemTransport).Connect(trans.LocalAddr(), trans)
	trans.Connect(leader.trans.LocalAddr(), leader.trans.(*raft.InmemTransport))
	late, err := New(Config{
		Name: "hq", Role: RoleParent, DataDir: t.TempDir(), NodeID: "late",
		APIAddr: "http://api-late", Languages: []string{"en"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		transport: trans, inmem: true, skipBootstrap: true, raftConf: fastRaft,
		beforeApply: func(*raft.Log) { <-gate },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Shutdown() })
	t.Cleanup(func() { release.Do(func() { close(gate) }) }) // runs first: Shutdown waits for Apply
	req := JoinRequest{ID: "late", RaftAddr: string(trans.LocalAddr()), APIAddr: "http://api-late", Name: "hq", Role: RoleParent}
	if _, err := leader.AddServer(store.Actor{}, req, true); err != nil {
		t.Fatal(err)
	}
	commit := leader.raft.CommitIndex()
	waitFor(t, 10*time.Second, func() (bool, string) {
		got := late.raft.AppliedIndex()
		return got >= commit, fmt.Sprintf("raft applied index %d < commit %d", got, commit)
	})
	for range 10 { // the old check (raft's AppliedIndex >= commit) would have passed by now
		if late.Ready() {
			t.Fatalf("ready with the FSM at index %d, commit %d", late.fsm.AppliedIndex(), commit)
		}
		time.Sleep(catchUpPoll)
	}

	release.Do(func() { close(gate) })
	waitFor(t, 10*time.Second, func() (bool, string) { return late.Ready(), "not ready after the FSM ran" })
	if got := late.fsm.AppliedIndex(); got < leader.State().LatestIndex() {
		t.Fatalf("ready at FSM index %d, before the leader's state index %d", got, leader.State().LatestIndex())
	}
	_, toks, err := late.State().Tokens(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) < tokens {
		t.Fatalf("ready with %d tokens, want at least %d", len(toks), tokens)
	}
}
