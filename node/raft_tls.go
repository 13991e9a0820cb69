package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// raftHandshakeTimeout bounds a TLS handshake on the Raft port, so a peer that connects and
	// says nothing holds no goroutine for long.
	raftHandshakeTimeout = 10 * time.Second
	// tlsFetchTimeout bounds how long a joining server keeps asking the site for its
	// certificate while the site is unreachable.
	tlsFetchTimeout = 5 * time.Minute
)

// tlsStreamLayer is the Raft transport's stream layer: TCP with mutual TLS 1.3 against the site
// CA. A peer without a certificate of this site fails the handshake and gets no Raft answer.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	m         *siteTLS
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// newTLSStreamLayer listens on bind.
func newTLSStreamLayer(bind string, m *siteTLS) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%s is not an address other servers can reach (name one interface)", ln.Addr())
	}
	return &tlsStreamLayer{Listener: ln, advertise: ln.Addr(), m: m}, nil
}

// Accept returns the next connection; its handshake runs (bounded) on first use, in the
// transport's per-connection goroutine, so one slow peer does not stall the others' accepts.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.m.serverConfig())}, nil
}

// Addr is the address peers reach this server at.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial opens a TLS connection to another server of the site.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, l.m.clientConfig())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// handshakeConn completes the server side TLS handshake within raftHandshakeTimeout before the
// first read or write.
type handshakeConn struct {
	*tls.Conn
}

func (c *handshakeConn) handshake() error {
	ctx, cancel := context.WithTimeout(context.Background(), raftHandshakeTimeout)
	defer cancel()
	return c.HandshakeContext(ctx)
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *handshakeConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// prepareTLS loads this server's TLS material from the data dir, or obtains it: a new site (or
// a data dir from before Raft TLS) creates its site CA; a server joining a site asks the site
// for a certificate with the admin token.
func (n *Node) prepareTLS(hasState bool) error {
	in, ok, err := loadSiteTLS(n.cfg.DataDir)
	if err != nil {
		return err
	}
	switch {
	case ok:
	case !hasState && n.cfg.JoinSite != "":
		n.logger.Info("asking the site for this server's Raft certificate", "via", n.cfg.JoinSite)
		if in, err = n.fetchSiteTLS(); err != nil {
			return err
		}
	default:
		if hasState {
			n.logger.Warn("data dir has Raft state but no TLS material: creating a site CA; " +
				"other servers of a multi-server site need a copy of <data-dir>/tls (docs/security.md)")
		}
		if in, err = newSiteMaterial(n.cfg.Name, n.id); err != nil {
			return err
		}
	}
	m, err := parseSiteTLS(n.cfg.Name, n.id, in)
	if err != nil {
		return fmt.Errorf("TLS material in %s: %w", tlsDir(n.cfg.DataDir), err)
	}
	if !ok {
		if err := storeSiteTLS(n.cfg.DataDir, in); err != nil {
			return err
		}
	}
	n.tls, n.tlsMaterial = m, in
	return nil
}

// fetchSiteTLS asks the site to join for this server's TLS material, retrying while the site
// is unreachable or not ready; a refusal is final.
func (n *Node) fetchSiteTLS() (SiteTLS, error) {
	url := strings.TrimRight(n.cfg.JoinSite, "/") + "/v1/site/certificates"
	body, _ := json.Marshal(map[string]string{"id": n.id})
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(tlsFetchTimeout)
	for attempt := 1; ; attempt++ {
		in, permanent, err := postForTLS(client, url, n.cfg.JoinToken, body)
		if err == nil {
			return in, nil
		}
		if permanent || time.Now().After(deadline) {
			return SiteTLS{}, fmt.Errorf("get this server's Raft certificate from %s: %w", n.cfg.JoinSite, err)
		}
		n.logger.Warn("could not get this server's Raft certificate; retrying", "attempt", attempt, "error", err)
		time.Sleep(joinRetry)
	}
}

func postForTLS(client *http.Client, url, token string, body []byte) (in SiteTLS, permanent bool, err error) {
	buf, permanent, err := postToSite(client, url, token, body)
	if err != nil {
		return in, permanent, err
	}
	if err := json.Unmarshal(buf, &in); err != nil {
		return in, true, fmt.Errorf("decode TLS material: %w", err)
	}
	if len(in.CACertPEM) == 0 || len(in.ServerCertPEM) == 0 || len(in.ServerKeyPEM) == 0 {
		return in, true, errors.New("site answered without a certificate")
	}
	return in, false, nil
}
