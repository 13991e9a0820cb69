package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI writes a CA and a leaf certificate for 127.0.0.1 (server and client use) into dir.
func testPKI(t *testing.T, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(file, typ string, b []byte) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write(name+"-ca.pem", "CERTIFICATE", caDER), write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestAPIClientCertificates: with --tls-client-ca the API takes clients with a certificate of
// that CA, refuses one of another CA, and with --tls-client-require refuses clients without one.
func TestAPIClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := testPKI(t, dir, "site")
	_, otherCert, otherKey := testPKI(t, dir, "other")

	get := func(srvCfg *tls.Config, client serveFlags) error {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.TLS = srvCfg
		srv.StartTLS()
		defer srv.Close()
		c, err := parentClient(client)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	optional, err := apiTLS(serveFlags{tlsCert: cert, tlsKey: key, tlsClientCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	required, err := apiTLS(serveFlags{tlsCert: cert, tlsKey: key, tlsClientCA: ca, tlsClientRequire: true})
	if err != nil {
		t.Fatal(err)
	}
	withCert := serveFlags{tlsCA: ca, tlsCert: cert, tlsKey: key}
	without := serveFlags{tlsCA: ca}
	foreign := serveFlags{tlsCA: ca, tlsCert: otherCert, tlsKey: otherKey}
	for _, c := range []struct {
		what   string
		srv    *tls.Config
		client serveFlags
		ok     bool
	}{
		{"optional, with a certificate", optional, withCert, true},
		{"optional, without", optional, without, true},
		// A client holding only another CA's certificate does not present it (it matches none
		// of the CAs the server names), so it connects as a client without one.
		{"optional, another CA's certificate", optional, foreign, true},
		{"required, with a certificate", required, withCert, true},
		{"required, without", required, without, false},
		{"required, another CA's certificate", required, foreign, false},
	} {
		if err := get(c.srv, c.client); (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.what, err, c.ok)
		}
	}

	for _, bad := range []serveFlags{
		{tlsClientCA: ca},
		{tlsClientRequire: true},
		{tlsCert: cert, tlsKey: key, tlsClientRequire: true},
		{tlsCert: cert, tlsKey: key, tlsClientCA: filepath.Join(dir, "missing.pem")},
	} {
		if _, err := apiTLS(bad); err == nil {
			t.Errorf("apiTLS(%+v) accepted", bad)
		}
	}
}
