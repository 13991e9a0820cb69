package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/node"
	"patchtree/store"
)

// raftRPCTimeout bounds one forged Raft RPC: a server that answers nothing must not hang it.
const raftRPCTimeout = 3 * time.Second

// forgedAppend is what an attacker on the Raft port sends: a term far ahead of the site's and an
// entry that creates an admin token the attacker knows.
func forgedAppend(t *testing.T) (*raft.AppendEntriesRequest, string) {
	t.Helper()
	secret := "attacker-secret"
	buf, err := node.Encode(node.TokenCreateRequestType, &node.TokenCreateRequest{Token: store.Token{
		ID: "attacker", SecretHash: store.HashSecret(secret), Role: store.RoleAdmin, Name: "attacker",
		CreateTime: time.Now().UTC(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("attacker"), Addr: []byte("127.0.0.1:1")},
		Term:      1 << 40, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 1 << 40,
		Entries: []*raft.Log{{Index: 1 << 30, Term: 1 << 40, Type: raft.LogCommand, Data: buf}},
	}
	return req, "attacker." + secret
}

// attackerStream is a Raft stream layer presenting a certificate of the attacker's choosing.
type attackerStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *attackerStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.cfg)
}

// sendForged sends the forged AppendEntries through trans to addr and reports what came back.
func sendForged(t *testing.T, trans raft.Transport, addr string) error {
	t.Helper()
	req, _ := forgedAppend(t)
	var resp raft.AppendEntriesResponse
	done := make(chan error, 1)
	go func() { done <- trans.AppendEntries("victim", raft.ServerAddress(addr), req, &resp) }()
	select {
	case err := <-done:
		if err == nil {
			return fmt.Errorf("answered: term %d success %v", resp.Term, resp.Success)
		}
		return nil
	case <-time.After(raftRPCTimeout + 5*time.Second):
		return nil // no answer at all
	}
}

// raftAddrs lists the Raft address of every server of the site p belongs to.
func raftAddrs(t *testing.T, p *proc) []string {
	t.Helper()
	var resp struct {
		Servers []struct {
			RaftAddr string `json:"raft_addr"`
		} `json:"servers"`
	}
	doJSON(t, "GET", p.url+"/v1/site/servers", p.token, nil, 200, &resp)
	var out []string
	for _, s := range resp.Servers {
		out = append(out, s.RaftAddr)
	}
	return out
}

// testRaftPortUnauthenticated is finding 1: whoever reaches a site's Raft port gets no answer
// without a certificate from the site's CA (docs/security.md, "Raft between the servers").
func testRaftPortUnauthenticated(t *testing.T) {
	single := startSite(t, siteOpts{Name: "lone"})
	a := startSite(t, siteOpts{Name: "node-a", Site: "site3", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	nodes := []*proc{a}
	for _, name := range []string{"node-b", "node-c"} {
		nodes = append(nodes, startSite(t, siteOpts{Name: name, Site: "site3",
			RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), JoinSite: a.url, Token: a.token}))
	}
	waitAgreement(t, nodes, a.token, 3)

	targets := map[*proc][]string{single: raftAddrs(t, single), a: raftAddrs(t, a)}
	if len(targets[single]) != 1 || len(targets[a]) != 3 {
		t.Fatalf("raft addresses: lone %v, site3 %v", targets[single], targets[a])
	}
	for _, addr := range targets[single] {
		host, _, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("a single-server site listens for Raft on %s, want loopback", addr)
		}
	}
	before := map[*proc]digestResp{single: getDigest(t, single.url, single.token), a: getDigest(t, a.url, a.token)}

	// 1. Plain hashicorp/raft RPCs, no certificate.
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, raftRPCTimeout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// 2. A certificate of another site's CA: the lone site's own server certificate.
	foreign, err := tls.LoadX509KeyPair(filepath.Join(single.dataDir, "tls", "server.pem"), filepath.Join(single.dataDir, "tls", "server-key.pem"))
	if err != nil {
		t.Fatalf("the lone site has no Raft certificate in its data dir: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	foreignTrans := raft.NewNetworkTransport(&attackerStream{Listener: ln,
		cfg: &tls.Config{Certificates: []tls.Certificate{foreign}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}},
		1, raftRPCTimeout, os.Stderr)
	defer foreignTrans.Close()

	for site, addrs := range targets {
		for _, addr := range addrs {
			if err := sendForged(t, plain, addr); err != nil {
				t.Errorf("%s: plain Raft RPC without a certificate: %v", addr, err)
			}
			if site == a {
				if err := sendForged(t, foreignTrans, addr); err != nil {
					t.Errorf("%s: Raft RPC with another site's certificate: %v", addr, err)
				}
			}
			// The TLS handshake itself refuses another site's certificate.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: raftRPCTimeout}, "tcp", addr,
				&tls.Config{Certificates: []tls.Certificate{foreign}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			if err == nil {
				conn.SetDeadline(time.Now().Add(raftRPCTimeout))
				_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the handshake
				conn.Close()
			}
			if err == nil && site == a {
				t.Errorf("%s: TLS with another site's certificate was accepted", addr)
			}
		}
	}

	// Nothing changed: no term jump took the site over, no attacker token exists.
	_, forgedBearer := forgedAppend(t)
	for site := range targets {
		requireDigestUnchanged(t, site, "after forged Raft RPCs", before[site])
		if st, _, _ := do(t, "GET", site.url+"/v1/status", forgedBearer, nil); st != 401 {
			t.Errorf("%s: the forged admin token got %d, want 401", site.name, st)
		}
	}

	// The 3-server site still works over TLS: writes through a follower are forwarded, and it
	// survives SIGKILL of its leader.
	leader := waitAgreement(t, nodes, a.token, 3)
	var follower *proc
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	putLanguages(t, follower.url, a.token, []string{"de", "en"})
	leader.kill9(t)
	var survivors []*proc
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		st, raw, err := tryDo(context.Background(), "PUT", survivors[0].url+"/v1/languages", a.token, map[string]any{"ranges": []string{"en", "fr"}})
		return err == nil && st == 200, fmt.Sprintf("write after leader kill: %d %v %s", st, err, strings.TrimSpace(string(raw)))
	})
}
