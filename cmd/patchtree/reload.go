package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// certReloader serves the API's TLS certificate and reads --tls-cert and --tls-key again on
// SIGHUP (systemctl reload): a renewed certificate takes effect for new connections without a
// restart. A pair that does not load is logged and the current certificate stays.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertReloader takes over cfg's certificate: cfg then asks the reloader for it. A nil cfg
// (no --tls-cert) gives a nil reloader.
func newCertReloader(certFile, keyFile string, cfg *tls.Config) *certReloader {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return nil
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	r.cert.Store(&cfg.Certificates[0])
	cfg.Certificates = nil
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil }
	return r
}

// reload reads the certificate and key again.
func (r *certReloader) reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("reload --tls-cert/--tls-key: %w", err)
	}
	r.cert.Store(&cert)
	return nil
}

// watchReloads handles SIGHUP until the returned stop is called: it reloads the API certificate
// (logging what it did), or says there is nothing to reload without --tls-cert.
func watchReloads(f serveFlags, apiTLS *tls.Config, logger *slog.Logger) (stop func()) {
	reloader := newCertReloader(f.tlsCert, f.tlsKey, apiTLS)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				switch {
				case reloader == nil:
					logger.Info("SIGHUP: nothing to reload (the API serves plain HTTP: no --tls-cert)")
				default:
					if err := reloader.reload(); err != nil {
						logger.Error("SIGHUP: keeping the current API certificate", "error", err)
						continue
					}
					logger.Info("SIGHUP: reloaded the API certificate", "tls_cert", f.tlsCert)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
