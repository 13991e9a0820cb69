package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

// waitFor polls cond until it holds or the timeout passes, failing with cond's last reason.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopProbe is a leader loop that records which nodes run it right now.
type loopProbe struct {
	mu      sync.Mutex
	running map[string]int
	starts  int
}

func (p *loopProbe) loop(id string) LeaderLoop {
	return LeaderLoop{Name: "probe", Run: func(ctx context.Context) {
		p.mu.Lock()
		p.running[id]++
		p.starts++
		p.mu.Unlock()
		<-ctx.Done()
		p.mu.Lock()
		p.running[id]--
		p.mu.Unlock()
	}}
}

// runners lists the nodes running the probe loop.
func (p *loopProbe) runners() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, n := range p.running {
		for i := 0; i < n; i++ {
			out = append(out, id)
		}
	}
	return out
}

func fastRaft(c *raft.Config) {
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}

// testCluster starts n in-memory servers forming one site.
func testCluster(t *testing.T, size int, probe *loopProbe) ([]*Node, []*raft.InmemTransport) {
	t.Helper()
	nodes := make([]*Node, size)
	trans := make([]*raft.InmemTransport, size)
	for i := range nodes {
		_, trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("raft-%d", i)))
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	for i := range nodes {
		id := fmt.Sprintf("n%d", i)
		cfg := Config{
			Name: "hq", Role: RoleParent, DataDir: t.TempDir(), NodeID: id,
			APIAddr: "http://api-" + id, Languages: []string{"en"},
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			LeaderLoops: []LeaderLoop{probe.loop(id)},
			transport:   trans[i], inmem: true, skipBootstrap: i > 0, raftConf: fastRaft,
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		nodes[i] = n
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		return nodes[0].established.Load(), "first server did not establish leadership"
	})
	for i := 1; i < size; i++ {
		req := JoinRequest{ID: nodes[i].ID(), RaftAddr: string(trans[i].LocalAddr()), APIAddr: "http://api-" + nodes[i].ID(), Name: "hq", Role: RoleParent}
		if _, err := nodes[0].AddServer(store.Actor{}, req, true); err != nil {
			t.Fatalf("add server %d: %v", i, err)
		}
	}
	return nodes, trans
}

func leaderOf(nodes []*Node, skip *Node) *Node {
	for _, n := range nodes {
		if n != skip && n.IsLeader() && n.established.Load() {
			return n
		}
	}
	return nil
}

func TestLeaderLoopsFollowLeadership(t *testing.T) {
	probe := &loopProbe{running: map[string]int{}}
	nodes, trans := testCluster(t, 3, probe)

	waitFor(t, 10*time.Second, func() (bool, string) {
		r := probe.runners()
		return len(r) == 1 && r[0] == nodes[0].ID(), fmt.Sprintf("probe runs on %v, want only n0", r)
	})
	for _, n := range nodes[1:] {
		waitFor(t, 10*time.Second, func() (bool, string) { return n.Ready(), n.ID() + " not caught up" })
		if loops := n.RunningLoops(); len(loops) != 0 {
			t.Fatalf("follower %s runs leader loops %v", n.ID(), loops)
		}
	}

	// Cut the leader off: it must stop its loops, and exactly one new leader must start them.
	old := nodes[0]
	trans[0].DisconnectAll()
	for _, tr := range trans[1:] {
		tr.Disconnect(trans[0].LocalAddr())
	}
	var next *Node
	waitFor(t, 10*time.Second, func() (bool, string) {
		next = leaderOf(nodes, old)
		r := probe.runners()
		return next != nil && len(r) == 1 && r[0] == next.ID(), fmt.Sprintf("probe runs on %v", r)
	})
	if old.IsLeader() || len(old.RunningLoops()) != 0 {
		t.Fatalf("partitioned old leader still leads (%v) or runs loops %v", old.IsLeader(), old.RunningLoops())
	}

	// Writes continue on the new leader and reach the old one once it is reconnected.
	if _, err := next.SetLanguages(store.Actor{}, []string{"de"}); err != nil {
		t.Fatal(err)
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		l, _ := old.State().Languages(nil, store.LanguagesSite)
		r := probe.runners()
		return l != nil && len(l.Ranges) == 1 && l.Ranges[0] == "de" && len(r) == 1,
			fmt.Sprintf("old leader languages %+v, probe on %v", l, r)
	})
	if _, err := old.SetLanguages(store.Actor{}, []string{"fr"}); err == nil && !old.IsLeader() {
		t.Fatal("a follower applied a write itself")
	}
}

// startLoneServer starts (or restarts) a single-server site "hq" on dir with a real data dir,
// Raft log and TLS transport, and waits until it is ready.
func startLoneServer(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := New(Config{Name: "hq", Role: RoleParent, DataDir: dir, RaftBind: "127.0.0.1:0",
		APIAddr: "http://127.0.0.1:1", Languages: []string{"en"}, raftConf: fastRaft,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() (bool, string) { return n.Ready(), "not ready" })
	return n
}

func TestSingleServerBootstrapsOnceAndRecovers(t *testing.T) {
	dir := t.TempDir()
	start := func() *Node { return startLoneServer(t, dir) }
	n := start()
	site, _ := n.State().Site(nil)
	if _, err := n.SetLanguages(store.Actor{}, []string{"ja"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	n = start()
	defer n.Shutdown()
	again, _ := n.State().Site(nil)
	if again == nil || again.SiteID != site.SiteID {
		t.Fatalf("site re-initialised on restart: %+v vs %+v", again, site)
	}
	l, _ := n.State().Languages(nil, store.LanguagesSite)
	if l == nil || len(l.Ranges) != 1 || l.Ranges[0] != "ja" {
		t.Fatalf("languages after restart = %+v", l)
	}
	// The lone server came back on a different Raft port and fixed its own address.
	waitFor(t, 10*time.Second, func() (bool, string) {
		servers, _ := n.Servers()
		return len(servers) == 1 && servers[0].RaftAddr == string(n.trans.LocalAddr()),
			fmt.Sprintf("servers %+v, local %s", servers, n.trans.LocalAddr())
	})
}
