package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// apiTLS is the API's TLS configuration from the flags (nil: plain HTTP). With --tls-client-ca
// the API verifies client certificates against that CA: any presented certificate must chain to
// it, and with --tls-client-require a client without one cannot connect at all. Bearer tokens
// are still required on top (docs/security.md).
func apiTLS(f serveFlags) (*tls.Config, error) {
	if f.tlsCert == "" {
		if f.tlsClientCA != "" || f.tlsClientRequire {
			return nil, errors.New("--tls-client-ca and --tls-client-require need --tls-cert and --tls-key")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.tlsClientCA != "" {
		pool, err := loadCAPool("--tls-client-ca", f.tlsClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if f.tlsClientRequire {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if f.tlsClientRequire {
		return nil, errors.New("--tls-client-require needs --tls-client-ca")
	}
	return cfg, nil
}

// parentClient is the HTTP client for the link to the parent: it verifies the parent's
// certificate against --tls-ca when given (else the system roots), and presents this site's
// --tls-cert as its client certificate when the parent asks for one.
func parentClient(f serveFlags) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.tlsCA != "" {
		pool, err := loadCAPool("--tls-ca", f.tlsCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

// loadCAPool reads a PEM bundle of CA certificates named by flag.
func loadCAPool(flag, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", flag, path)
	}
	return pool, nil
}
