package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// cluster tracks a 3-node site and every write it acknowledged.
type cluster struct {
	nodes  []*proc
	admin  string
	langs  []string
	tokens []ackedToken
	seq    int
}

func (c *cluster) alive() []*proc {
	var out []*proc
	for _, n := range c.nodes {
		if !n.exited() {
			out = append(out, n)
		}
	}
	return out
}

// write sends a PUT languages and a POST token through n; both must succeed.
func (c *cluster) write(t *testing.T, n *proc) {
	t.Helper()
	c.seq++
	langs := langSets[c.seq%len(langSets)]
	putLanguages(t, n.url, c.admin, langs)
	c.langs = langs
	tr := createToken(t, n.url, c.admin, "auditor", fmt.Sprintf("via-%s-%d", n.name, c.seq))
	c.tokens = append(c.tokens, ackedToken{tr.ID, tr.Token, "auditor"})
	// Not a hard requirement on a follower (the contract only promises it
	// on the creating node), but worth knowing.
	if st, _, raw := do(t, "GET", n.url+"/v1/status", tr.Token, nil); st != 200 {
		t.Logf("note: token created via %s did not authenticate there immediately: %d %s",
			n.name, st, strings.Join(strings.Fields(string(raw)), " "))
	}
}

// statuses fetches /v1/status from the given nodes without failing.
func statuses(nodes []*proc, token string) ([]statusResp, string) {
	var out []statusResp
	for _, n := range nodes {
		st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/status", token, nil)
		if err != nil || st != 200 {
			return nil, fmt.Sprintf("%s status: %d %v %s", n.name, st, err, raw)
		}
		var s statusResp
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Sprintf("%s status: %v: %s", n.name, err, raw)
		}
		out = append(out, s)
	}
	return out, ""
}

// waitAgreement waits until every node in nodes is ready, lists want
// servers, and they all agree on one leader among nodes whose leader_loops
// are non-empty while every follower's are empty. It returns the leader.
func waitAgreement(t *testing.T, nodes []*proc, token string, want int) *proc {
	t.Helper()
	var leader *proc
	waitFor(t, 20*time.Second, func() (bool, string) {
		ss, why := statuses(nodes, token)
		if ss == nil {
			return false, why
		}
		leader = nil
		for i, s := range ss {
			if !s.Ready || len(s.Raft.Servers) != want {
				return false, fmt.Sprintf("%s: ready=%v servers=%d (want %d)", nodes[i].name, s.Ready, len(s.Raft.Servers), want)
			}
			marked := 0
			for _, sv := range s.Raft.Servers {
				if sv.Leader {
					marked++
					if sv.ID != s.Raft.LeaderID {
						return false, fmt.Sprintf("%s: servers mark %s leader, leader_id %s", nodes[i].name, sv.ID, s.Raft.LeaderID)
					}
				}
			}
			if marked != 1 || s.Raft.LeaderID != ss[0].Raft.LeaderID {
				return false, fmt.Sprintf("%s: %d servers marked leader, leader_id %q vs %q", nodes[i].name, marked, s.Raft.LeaderID, ss[0].Raft.LeaderID)
			}
			isLeader := s.NodeID == s.Raft.LeaderID
			if isLeader != (s.Raft.State == "Leader") {
				return false, fmt.Sprintf("%s: node_id %s state %s leader_id %s", nodes[i].name, s.NodeID, s.Raft.State, s.Raft.LeaderID)
			}
			if isLeader {
				leader = nodes[i]
				if len(s.LeaderLoops) == 0 {
					return false, nodes[i].name + ": leader has no leader_loops"
				}
			} else if len(s.LeaderLoops) != 0 {
				return false, fmt.Sprintf("%s: follower runs leader_loops %v", nodes[i].name, s.LeaderLoops)
			}
		}
		if leader == nil {
			return false, "leader " + ss[0].Raft.LeaderID + " is not among the live nodes"
		}
		return true, ""
	})
	return leader
}

// waitConverged waits until all nodes have the acknowledged state and the
// same digest.
func (c *cluster) waitConverged(t *testing.T, nodes []*proc) {
	t.Helper()
	waitFor(t, 15*time.Second, func() (bool, string) {
		var first digestResp
		for i, n := range nodes {
			st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/languages", c.admin, nil)
			var l langResp
			if err != nil || st != 200 || json.Unmarshal(raw, &l) != nil || !equalStrings(l.Ranges, c.langs) {
				return false, fmt.Sprintf("%s languages: %d %v %s (want %v)", n.name, st, err, raw, c.langs)
			}
			for _, tk := range c.tokens {
				if st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/status", tk.secret, nil); err != nil || st != 200 {
					return false, fmt.Sprintf("%s: token %s: %d %v %s", n.name, tk.id, st, err, raw)
				}
			}
			st, raw, err = tryDo(context.Background(), "GET", n.url+"/v1/digest", c.admin, nil)
			var d digestResp
			if err != nil || st != 200 || json.Unmarshal(raw, &d) != nil || d.Digest == "" {
				return false, fmt.Sprintf("%s digest: %d %v %s", n.name, st, err, raw)
			}
			if i == 0 {
				first = d
			} else if d != first {
				return false, fmt.Sprintf("digest %s@%d on %s != %s@%d on %s", d.Digest, d.Index, n.name, first.Digest, first.Index, nodes[0].name)
			}
		}
		return true, ""
	})
}

func TestThreeNodeSite(t *testing.T) {
	t.Parallel()
	raftAddrs := map[string]bool{}
	raftAddr := func() string {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		raftAddrs[addr] = true
		return addr
	}
	a := startSite(t, siteOpts{Name: "node-a", Site: "site3", RaftListen: raftAddr()})
	c := &cluster{admin: a.token, nodes: []*proc{a}}
	for _, name := range []string{"node-b", "node-c"} {
		// node-b joins via node-a, node-c via node-b (any node of the site).
		via := c.nodes[len(c.nodes)-1]
		n := startSite(t, siteOpts{Name: name, Site: "site3", RaftListen: raftAddr(), JoinSite: via.url, Token: a.token})
		c.nodes = append(c.nodes, n)
	}
	leader := waitAgreement(t, c.nodes, c.admin, 3)
	t.Logf("initial leader: %s", leader.name)
	for _, n := range c.nodes {
		if s := getStatus(t, n.url, c.admin); s.Name != "site3" || s.Role != "parent" {
			t.Errorf("%s: status name %q role %q, want site3 parent", n.name, s.Name, s.Role)
		}
	}

	// Writes through every node, followers forward to the leader.
	for _, n := range c.nodes {
		c.write(t, n)
	}
	c.waitConverged(t, c.nodes)

	// Kill the leader and measure until a write through a survivor succeeds.
	leader.kill9(t)
	killedAt := time.Now()
	survivors := c.alive()
	var odd []string
	attempts, n503, nNetErr := 0, 0, 0
	for {
		attempts++
		n := survivors[attempts%len(survivors)]
		langs := []string{"it", "ja"}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		st, raw, err := tryDo(ctx, "PUT", n.url+"/v1/languages", c.admin, map[string]any{"ranges": langs})
		cancel()
		if err == nil && st == 200 {
			c.langs = langs
			break
		}
		switch {
		case err != nil:
			nNetErr++
		case st == 503:
			n503++
		}
		if err == nil && st != 503 {
			odd = append(odd, fmt.Sprintf("%s: %d %s", n.name, st, raw))
		} else if err == nil && !strings.Contains(string(raw), `"error"`) {
			odd = append(odd, fmt.Sprintf("%s: 503 without JSON error: %s", n.name, raw))
		}
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("no write succeeded within 30s of killing leader %s; last: %d %v %s", leader.name, st, err, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	failover := time.Since(killedAt)
	t.Logf("leader failover: write through a survivor acknowledged %v after SIGKILL of %s (%d attempts: %d×503, %d transport errors)",
		failover, leader.name, attempts, n503, nNetErr)
	if failover >= 10*time.Second {
		t.Errorf("failover took %v, want < 10s", failover)
	}
	if len(odd) > 0 {
		t.Errorf("during the election writes should fail with 503 {\"error\": ...} only; got:\n%s", strings.Join(odd, "\n"))
	}
	for i := 0; i < 2; i++ {
		for _, n := range survivors {
			c.write(t, n)
		}
	}
	newLeader := waitAgreement(t, survivors, c.admin, 3)
	t.Logf("new leader: %s", newLeader.name)
	c.waitConverged(t, survivors)

	// The old leader comes back with the same data dir and flags.
	d := leader.restart(t)
	t.Logf("old leader %s restarted and ready in %v", leader.name, d)
	if got := waitAgreement(t, c.nodes, c.admin, 3); got == leader {
		t.Errorf("restarted node %s took leadership back; expected it to rejoin as follower", leader.name)
	}
	c.waitConverged(t, c.nodes)
	c.write(t, leader) // and it forwards writes again
	c.waitConverged(t, c.nodes)
	waitServers(t, c.nodes, c.tokens[0].secret, raftAddrs)

	// A follower that joined with --join-site shuts down cleanly and is
	// restarted with the same flags: it has Raft state, ignores --join-site.
	cur := waitAgreement(t, c.nodes, c.admin, 3)
	var joiner *proc
	for _, n := range c.nodes[1:] {
		if n != cur {
			joiner = n
			break
		}
	}
	joiner.stop(t)
	c.write(t, cur)
	d = joiner.restart(t)
	t.Logf("follower %s restarted after SIGTERM, ready in %v", joiner.name, d)
	waitAgreement(t, c.nodes, c.admin, 3)
	c.write(t, joiner)
	c.waitConverged(t, c.nodes)
	waitServers(t, c.nodes, c.tokens[0].secret, raftAddrs)
}

// waitServers waits until GET /v1/site/servers on every node lists exactly
// the given raft addresses as voters, each with its node's current API
// address. A mismatch is reported without stopping the test.
func waitServers(t *testing.T, nodes []*proc, token string, raftAddrs map[string]bool) {
	t.Helper()
	apis := map[string]bool{}
	for _, n := range nodes {
		apis[strings.TrimPrefix(n.url, "http://")] = true
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		var stale []string
		for _, n := range nodes {
			st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/site/servers", token, nil)
			var resp struct {
				Servers []serverInfo `json:"servers"`
			}
			if err != nil || st != 200 || json.Unmarshal(raw, &resp) != nil {
				return false, fmt.Sprintf("%s: GET /v1/site/servers: %d %v %s", n.name, st, err, raw)
			}
			if len(resp.Servers) != len(raftAddrs) {
				return false, fmt.Sprintf("%s: %d servers, want %d: %s", n.name, len(resp.Servers), len(raftAddrs), raw)
			}
			for _, sv := range resp.Servers {
				if !raftAddrs[sv.RaftAddr] || !strings.EqualFold(sv.Suffrage, "voter") || sv.ID == "" {
					return false, fmt.Sprintf("%s: unexpected server %+v (raft addrs %v)", n.name, sv, raftAddrs)
				}
				if !apis[strings.TrimPrefix(sv.APIAddr, "http://")] {
					stale = append(stale, fmt.Sprintf("%s lists server %s (raft %s) with api_addr %q",
						n.name, sv.ID, sv.RaftAddr, sv.APIAddr))
				}
			}
		}
		if len(stale) > 0 {
			return false, fmt.Sprintf("api_addr is not the node's current API address (%v):\n%s",
				apis, strings.Join(stale, "\n"))
		}
		return true, ""
	})
}
