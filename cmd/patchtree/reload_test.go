package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// servedCommonName is the subject of the certificate cfg serves now.
func servedCommonName(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination the signal goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSIGHUPReloadsTheAPICertificate: SIGHUP (systemctl reload) makes the API serve the
// certificate now in --tls-cert/--tls-key; a pair that does not load keeps the current one.
func TestSIGHUPReloadsTheAPICertificate(t *testing.T) {
	dir := t.TempDir()
	_, cert, key := testPKI(t, dir, "before")
	_, newCert, newKey := testPKI(t, dir, "after")
	f := serveFlags{tlsCert: cert, tlsKey: key}
	cfg, err := apiTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	stop := watchReloads(f, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	defer stop()
	if got := servedCommonName(t, cfg); got != "before" {
		t.Fatalf("serves %q before the reload, want before", got)
	}
	hup := func(want string) {
		t.Helper()
		before := strings.Count(logs.String(), "SIGHUP")
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(logs.String(), "SIGHUP") == before {
			if time.Now().After(deadline) {
				t.Fatalf("no log line 5s after SIGHUP; logs:\n%s", logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, logs.String())
		}
	}

	copyFile(t, newCert, cert)
	copyFile(t, newKey, key)
	hup("reloaded the API certificate")
	if got := servedCommonName(t, cfg); got != "after" {
		t.Errorf("serves %q after SIGHUP, want after", got)
	}
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("keeping the current API certificate")
	if got := servedCommonName(t, cfg); got != "after" {
		t.Errorf("serves %q after a failed reload, want after", got)
	}
}

func TestNoReloaderWithoutTLS(t *testing.T) {
	if r := newCertReloader("", "", nil); r != nil {
		t.Errorf("newCertReloader without TLS = %v, want nil", r)
	}
}
