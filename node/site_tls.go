package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"patchtree/store"
)

// The site CA signs one certificate per server of the site; Raft between servers is mutual TLS
// against it (docs/security.md, "Raft between the servers of a site").
const (
	tlsDirName     = "tls"
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	serverCertFile = "server.pem"
	serverKeyFile  = "server-key.pem"

	// caValidity and serverCertValidity are long because nothing rotates them yet; a site is
	// re-keyed by replacing <data-dir>/tls on every server.
	caValidity         = 20 * 365 * 24 * time.Hour
	serverCertValidity = 10 * 365 * 24 * time.Hour

	// serverURIScheme names a server of a site in its certificate:
	// patchtree-server://<site>/<node-id>.
	serverURIScheme = "patchtree-server"
)

// ErrNoSiteCA means this server holds no site CA (its data dir has no TLS material yet).
var ErrNoSiteCA = errors.New("this server holds no site CA")

// SiteTLS is the TLS material of one server: the site CA (certificate and key: every server
// can issue certificates to new servers when it leads) and this server's own certificate.
type SiteTLS struct {
	CACertPEM     []byte `json:"ca_cert"`
	CAKeyPEM      []byte `json:"ca_key"`
	ServerCertPEM []byte `json:"cert"`
	ServerKeyPEM  []byte `json:"key"`
}

// siteTLS is SiteTLS parsed, ready for the Raft transport.
type siteTLS struct {
	site   string
	nodeID string
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	cert   tls.Certificate
}

// newSiteCA creates a fresh site CA for site.
func newSiteCA(site string) (certPEM, keyPEM []byte, err error) {
	now := time.Now()
	return newKeyAndCert("site CA", &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "patchtree site CA " + site, Organization: []string{"patchtree"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil)
}

// issueServerCert signs a certificate for server nodeID of site with the CA in m.
func (m *siteTLS) issueServerCert(nodeID string) (certPEM, keyPEM []byte, err error) {
	if m == nil || m.caKey == nil {
		return nil, nil, ErrNoSiteCA
	}
	now := time.Now()
	return newKeyAndCert("server", &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: nodeID, Organization: []string{"patchtree site " + m.site}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{serverURI(m.site, nodeID)},
	}, m.caCert, m.caKey)
}

// newKeyAndCert generates a P-256 key and a certificate from tmpl for it, signed by parent's
// key, or self-signed when parent is nil; what names the certificate in errors.
func newKeyAndCert(what string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", what, err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s certificate: %w", what, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s key: %w", what, err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
}

// serverURI is the identity a server certificate binds: the site and the server's node id.
func serverURI(site, nodeID string) *url.URL {
	return &url.URL{Scheme: serverURIScheme, Host: url.PathEscape(site), Path: "/" + url.PathEscape(nodeID)}
}

// verifyPeer checks a Raft peer's certificate chain against the site CA and that it names a
// server of this site. It is the only check: peers are dialled by IP address, so host names
// play no part (as Consul with verify_server_hostname off, but bound to the site instead).
func (m *siteTLS) verifyPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raft peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: m.pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("raft peer certificate is not from this site's CA: %w", err)
	}
	for _, u := range leaf.URIs {
		if u.Scheme == serverURIScheme && u.Host == url.PathEscape(m.site) && strings.Count(u.Path, "/") == 1 {
			return nil
		}
	}
	return fmt.Errorf("raft peer certificate %q does not name a server of site %q", leaf.Subject.CommonName, m.site)
}

// serverConfig is the TLS configuration of the Raft listener: TLS 1.3, a client certificate
// from this site required.
func (m *siteTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		// The chain is verified in VerifyConnection against the site CA only.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: m.verifyPeer,
	}
}

// clientConfig is the TLS configuration for dialling another server of the site.
func (m *siteTLS) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		// Peers are dialled by address; VerifyConnection checks the chain and the site binding.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection:   m.verifyPeer,
	}
}

// parseSiteTLS parses the PEM material of a server.
func parseSiteTLS(site, nodeID string, in SiteTLS) (*siteTLS, error) {
	caCert, caKey, err := parseCA(in.CACertPEM, in.CAKeyPEM)
	if err != nil {
		return nil, err
	}
	m := &siteTLS{site: site, nodeID: nodeID, pool: x509.NewCertPool(), caCert: caCert, caKey: caKey}
	m.pool.AddCert(caCert)
	if m.cert, err = tls.X509KeyPair(in.ServerCertPEM, in.ServerKeyPEM); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return m, nil
}

// parseCA parses a site CA's certificate and, when keyPEM is not empty, its key.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certBlock, _ := pem.Decode(certPEM)
	if certBlock == nil {
		return nil, nil, errors.New("site CA certificate: no PEM block")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("site CA certificate: %w", err)
	}
	if len(keyPEM) == 0 {
		return cert, nil, nil
	}
	keyBlock, _ := pem.Decode(keyPEM)
	if keyBlock == nil {
		return nil, nil, errors.New("site CA key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("site CA key: %w", err)
	}
	return cert, key, nil
}

// tlsDir is where a data dir keeps its TLS material.
func tlsDir(dataDir string) string { return filepath.Join(dataDir, tlsDirName) }

// loadSiteTLS reads a data dir's TLS material; ok is false when there is none yet.
func loadSiteTLS(dataDir string) (in SiteTLS, ok bool, err error) {
	dir := tlsDir(dataDir)
	files := []struct {
		name string
		dst  *[]byte
	}{{caCertFile, &in.CACertPEM}, {caKeyFile, &in.CAKeyPEM}, {serverCertFile, &in.ServerCertPEM}, {serverKeyFile, &in.ServerKeyPEM}}
	for i, f := range files {
		buf, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, os.ErrNotExist) && i == 0 {
			return SiteTLS{}, false, nil
		}
		if err != nil {
			return SiteTLS{}, false, fmt.Errorf("read TLS material: %w", err)
		}
		*f.dst = buf
	}
	return in, true, nil
}

// storeSiteTLS writes a server's TLS material, the CA certificate last: its presence marks the
// set complete (loadSiteTLS looks for it first).
func storeSiteTLS(dataDir string, in SiteTLS) error {
	dir := tlsDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create TLS dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{caKeyFile, in.CAKeyPEM}, {serverCertFile, in.ServerCertPEM}, {serverKeyFile, in.ServerKeyPEM}, {caCertFile, in.CACertPEM}} {
		if err := WriteFileAtomic(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// newSiteMaterial creates a site CA and this server's certificate (a new site, or a data dir
// from before Raft TLS).
func newSiteMaterial(site, nodeID string) (SiteTLS, error) {
	caCertPEM, caKeyPEM, err := newSiteCA(site)
	if err != nil {
		return SiteTLS{}, err
	}
	caCert, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return SiteTLS{}, err
	}
	m := &siteTLS{site: site, caCert: caCert, caKey: caKey}
	cert, key, err := m.issueServerCert(nodeID)
	if err != nil {
		return SiteTLS{}, err
	}
	return SiteTLS{CACertPEM: caCertPEM, CAKeyPEM: caKeyPEM, ServerCertPEM: cert, ServerKeyPEM: key}, nil
}

// IssueServerTLS issues the TLS material for a new server nodeID of this site: the site CA
// (certificate and key) and a certificate binding nodeID. The caller is an administrator
// adding a server (POST /v1/site/certificates).
func (n *Node) IssueServerTLS(nodeID string) (*SiteTLS, error) {
	if n.tls == nil {
		return nil, ErrNoSiteCA
	}
	if nodeID == "" || len(nodeID) > 64 || strings.ContainsAny(nodeID, "/\\ \t\r\n") {
		return nil, fmt.Errorf("server id %q: want 1 to 64 characters without slashes or spaces: %w", nodeID, store.ErrInvalid)
	}
	cert, key, err := n.tls.issueServerCert(nodeID)
	if err != nil {
		return nil, err
	}
	return &SiteTLS{
		CACertPEM: n.tlsMaterial.CACertPEM, CAKeyPEM: n.tlsMaterial.CAKeyPEM,
		ServerCertPEM: cert, ServerKeyPEM: key,
	}, nil
}

// caFingerprint is the SHA-256 of the site CA certificate, as "sha256:" and 16 hex bytes.
func (m *siteTLS) caFingerprint() string {
	sum := sha256.Sum256(m.caCert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return n
}
