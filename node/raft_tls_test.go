package node

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

// newTestMaterial creates a site CA for site and a server certificate for id.
func newTestMaterial(t *testing.T, site, id string) *siteTLS {
	t.Helper()
	in, err := newSiteMaterial(site, id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseSiteTLS(site, id, in)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// issuedBy returns material for server id signed by the CA of m.
func issuedBy(t *testing.T, m *siteTLS, id string) *siteTLS {
	t.Helper()
	cert, key, err := m.issueServerCert(id)
	if err != nil {
		t.Fatal(err)
	}
	in := SiteTLS{CACertPEM: pemBlock("CERTIFICATE", m.caCert.Raw), ServerCertPEM: cert, ServerKeyPEM: key}
	out, err := parseSiteTLS(m.site, id, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exchange starts a TLS Raft transport for server and sends one AppendEntries to it from
// client; it returns the RPC's error (nil when the server answered).
func exchange(t *testing.T, server, client *siteTLS) error {
	t.Helper()
	srvStream, err := newTLSStreamLayer("127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	srv := raft.NewNetworkTransport(srvStream, 1, 2*time.Second, io.Discard)
	defer srv.Close()
	go func() {
		for rpc := range srv.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
		}
	}()
	cliStream, err := newTLSStreamLayer("127.0.0.1:0", client)
	if err != nil {
		t.Fatal(err)
	}
	cli := raft.NewNetworkTransport(cliStream, 1, 2*time.Second, io.Discard)
	defer cli.Close()
	var resp raft.AppendEntriesResponse
	err = cli.AppendEntries("server", srv.LocalAddr(), &raft.AppendEntriesRequest{Term: 7}, &resp)
	if err == nil && resp.Term != 7 {
		t.Fatalf("answer term %d, want 7", resp.Term)
	}
	return err
}

func TestRaftTLSOnlyBetweenServersOfOneSite(t *testing.T) {
	hq := newTestMaterial(t, "hq", "a")
	peer := issuedBy(t, hq, "b")
	if err := exchange(t, hq, peer); err != nil {
		t.Fatalf("two servers of one site: %v", err)
	}

	other := newTestMaterial(t, "hq", "a") // same names, another CA
	if err := exchange(t, hq, other); err == nil {
		t.Fatal("a server of another site's CA got an answer")
	}
	if err := exchange(t, other, hq); err == nil {
		t.Fatal("dialled a server of another site's CA and trusted its answer")
	}

	// A certificate from the right CA that does not name a server of this site.
	renamed := issuedBy(t, &siteTLS{site: "emea", caCert: hq.caCert, caKey: hq.caKey, pool: hq.pool}, "c")
	err := exchange(t, hq, renamed)
	if err == nil {
		t.Fatal("a certificate for another site name got an answer")
	}
}

func TestIssueServerTLSRefusesBadIDs(t *testing.T) {
	in, err := newSiteMaterial("hq", "a")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseSiteTLS("hq", "a", in)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{tls: m, tlsMaterial: in}
	for _, id := range []string{"", "a/b", "a b", strings.Repeat("x", 65)} {
		if _, err := n.IssueServerTLS(id); err == nil {
			t.Errorf("IssueServerTLS(%q) succeeded", id)
		}
	}
	got, err := n.IssueServerTLS("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseSiteTLS("hq", "b", *got); err != nil {
		t.Fatalf("issued material does not parse: %v", err)
	}
	if _, err := (&Node{}).IssueServerTLS("b"); err == nil {
		t.Fatal("a server without a CA issued a certificate")
	}
}

// A data dir from before Raft TLS (no <data-dir>/tls) keeps its state on restart: the lone
// server creates a site CA and elects itself over TLS.
func TestDataDirWithoutTLSUpgradesOnRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Node { return startLoneServer(t, dir) }
	n := start()
	if _, err := n.SetLanguages(store.Actor{}, []string{"ja"}); err != nil {
		t.Fatal(err)
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Restart keeps the CA.
	n = start()
	caAgain, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if !bytes.Equal(caBefore, caAgain) {
		t.Fatal("restart replaced the site CA")
	}
	n.Shutdown()

	if err := os.RemoveAll(filepath.Join(dir, "tls")); err != nil {
		t.Fatal(err)
	}
	n = start()
	defer n.Shutdown()
	l, _ := n.State().Languages(nil, store.LanguagesSite)
	if l == nil || len(l.Ranges) != 1 || l.Ranges[0] != "ja" {
		t.Fatalf("languages after the upgrade = %+v", l)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tls", "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("site CA key after the upgrade: %v %v", fi, err)
	}
}
