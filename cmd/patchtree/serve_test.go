package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParentClientVerifiesCA: the link to a TLS parent verifies the parent's certificate
// against --tls-ca, and refuses a parent it cannot verify.
func TestParentClientVerifiesCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	trusted, err := parentClient(serveFlags{tlsCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := trusted.Get(srv.URL)
	if err != nil {
		t.Fatalf("client with --tls-ca could not reach the parent: %v", err)
	}
	resp.Body.Close()

	untrusted, err := parentClient(serveFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client without the CA reached an unverifiable parent: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := parentClient(serveFlags{tlsCA: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without certificates was accepted: %v", err)
	}
	if _, err := parentClient(serveFlags{tlsCA: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
