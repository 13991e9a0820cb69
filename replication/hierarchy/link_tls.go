package hierarchy

// What the link needs to reach its parent over TLS, recorded in the link when the site joins:
// the CA that verifies the parent (public, so kept whole: a server started without --tls-ca
// uses it) and whether a client certificate was presented (a private key is not replicated: a
// server without one says so in its status and its log).

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
)

// LinkTLS is what the link was set up with.
type LinkTLS struct {
	// CAPEM is the CA bundle (PEM) that verified the parent when the site joined.
	CAPEM string `json:"ca_pem,omitempty"`
	// ClientCert says the joining server presented a client certificate (--tls-cert).
	ClientCert bool `json:"client_cert,omitempty"`
}

// linkTLS is what this server would record for a link it sets up (nil: nothing to record).
func (c *Child) linkTLS() *LinkTLS {
	if len(c.cfg.CAPEM) == 0 && !c.cfg.ClientCert {
		return nil
	}
	return &LinkTLS{CAPEM: string(c.cfg.CAPEM), ClientCert: c.cfg.ClientCert}
}

// setActive makes l the link this server's requests use: its addresses, and its HTTP client
// (this server's, or one that trusts the CA recorded in the link when this server has none).
// It returns what this server lacks for the link ("" : nothing).
func (c *Child) setActive(l *Link) string {
	client, problem := c.clientFor(l)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active, c.client = l, client
	if c.current == "" || !containsURL(l.Addresses(), c.current) {
		c.current = normURL(l.URL)
	}
	c.state.URL, c.state.Addresses, c.state.Problem = c.current, l.Addresses(), problem
	return problem
}

// httpClient is the client for requests to the parent.
func (c *Child) httpClient() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client
	}
	return c.cfg.Client
}

// clientFor builds the client for a link, and says what this server lacks for it.
func (c *Child) clientFor(l *Link) (*http.Client, string) {
	client := c.cfg.Client
	if t := l.TLS; t != nil && t.CAPEM != "" && len(c.cfg.CAPEM) == 0 {
		base, ok := c.cfg.Client.Transport.(*http.Transport)
		if c.cfg.Client.Transport == nil {
			base, ok = http.DefaultTransport.(*http.Transport)
		}
		pool := x509.NewCertPool()
		if ok && pool.AppendCertsFromPEM([]byte(t.CAPEM)) {
			tr := base.Clone()
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = pool
			client = &http.Client{Transport: tr, Timeout: c.cfg.Client.Timeout}
			c.cfg.Logger.Info("this server has no --tls-ca: it verifies the parent with the CA recorded in the parent link")
		}
	}
	return client, c.tlsProblem(l)
}

// tlsProblem says what this server lacks to reach the parent as the link was set up ("":
// nothing).
func (c *Child) tlsProblem(l *Link) string {
	t := l.TLS
	if t == nil || !strings.HasPrefix(strings.ToLower(l.URL), "https://") {
		return ""
	}
	var problems []string
	if t.CAPEM != "" && len(c.cfg.CAPEM) == 0 {
		_, ok := c.cfg.Client.Transport.(*http.Transport)
		if c.cfg.Client.Transport == nil {
			ok = true
		}
		if !ok || !x509.NewCertPool().AppendCertsFromPEM([]byte(t.CAPEM)) {
			problems = append(problems, "the link's CA of the parent cannot be used here: start this server with --tls-ca")
		}
	}
	if t.ClientCert && !c.cfg.ClientCert {
		problems = append(problems, "the site joined its parent presenting a client certificate and this server has none "+
			"(--tls-cert, --tls-key): a parent that requires one refuses this server's requests")
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("TLS to the parent: %s", strings.Join(problems, "; "))
}
