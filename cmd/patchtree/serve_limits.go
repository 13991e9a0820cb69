package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"patchtree/api"
	"patchtree/node"
)

// readHeaderTimeout bounds reading a request's headers (never more than --http-read-timeout).
const readHeaderTimeout = 10 * time.Second

// minHeaderBytes is the smallest --http-max-header-bytes accepted: a bearer token, a few
// ordinary headers and a long query string must fit.
const minHeaderBytes = 4 << 10

// httpLimits are the HTTP server's timeouts, header cap, per-address connection cap and
// per-address rate limits (docs/security.md, "HTTP: timeouts, connections and rate limits").
type httpLimits struct {
	readTimeout, writeTimeout, idleTimeout time.Duration
	maxHeaderBytes                         int
	maxConnsPerClient                      int
	joinRate, authFailRate                 float64
	joinBurst, authFailBurst               int
}

// register adds the limit flags to the serve command.
func (l *httpLimits) register(fs *pflag.FlagSet) {
	fs.DurationVar(&l.readTimeout, "http-read-timeout", 30*time.Second, "longest time to read one request, headers and body (authenticated long-polls and bulk uploads get longer)")
	fs.DurationVar(&l.writeTimeout, "http-write-timeout", 60*time.Second, "longest time to write one response (authenticated long-polls and streams get longer)")
	fs.DurationVar(&l.idleTimeout, "http-idle-timeout", 120*time.Second, "close a keep-alive connection idle this long")
	fs.IntVar(&l.maxHeaderBytes, "http-max-header-bytes", 64<<10, "largest request header block accepted")
	fs.IntVar(&l.maxConnsPerClient, "http-max-conns-per-client", 256, "most concurrent connections from one client address; more are closed at once (0: no cap)")
	fs.Float64Var(&l.joinRate, "join-rate", 30, "join requests per minute per client address on the public join route (0: no limit)")
	fs.IntVar(&l.joinBurst, "join-burst", 10, "join requests one client address may send at once before --join-rate applies")
	fs.Float64Var(&l.authFailRate, "auth-fail-rate", 60, "failed authentications (missing, unknown or revoked token) per minute per client address before 429 (0: no limit)")
	fs.IntVar(&l.authFailBurst, "auth-fail-burst", 30, "failed authentications one client address may have at once before --auth-fail-rate applies")
}

// validate checks the limit flags.
func (l *httpLimits) validate() error {
	switch {
	case l.readTimeout <= 0, l.writeTimeout <= 0, l.idleTimeout <= 0:
		return errors.New("--http-read-timeout, --http-write-timeout and --http-idle-timeout must be positive")
	case l.maxHeaderBytes < minHeaderBytes:
		return fmt.Errorf("--http-max-header-bytes must be at least %d", minHeaderBytes)
	case l.maxConnsPerClient < 0:
		return errors.New("--http-max-conns-per-client must not be negative")
	case l.joinRate < 0, l.authFailRate < 0:
		return errors.New("--join-rate and --auth-fail-rate must not be negative")
	case l.joinBurst < 1, l.authFailBurst < 1:
		return errors.New("--join-burst and --auth-fail-burst must be at least 1")
	}
	return nil
}

// apiLimits are the rate limits handed to the API.
func (l *httpLimits) apiLimits() api.Limits {
	return api.Limits{JoinPerMinute: l.joinRate, JoinBurst: l.joinBurst, AuthFailPerMinute: l.authFailRate, AuthFailBurst: l.authFailBurst}
}

// server builds the HTTP server with the timeouts and header cap.
func (l *httpLimits) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(readHeaderTimeout, l.readTimeout),
		ReadTimeout:       l.readTimeout,
		WriteTimeout:      l.writeTimeout,
		IdleTimeout:       l.idleTimeout,
		MaxHeaderBytes:    l.maxHeaderBytes,
	}
}

// listener wraps ln with the per-address connection cap.
func (l *httpLimits) listener(ln net.Listener, logger *slog.Logger) net.Listener {
	return api.LimitListener(ln, l.maxConnsPerClient, logger)
}

// secretFiles are --token-file, --join-token-file and --admin-token-file: secrets read from
// files, so that they stay out of the process list.
type secretFiles struct {
	token, joinToken, adminToken string
}

// register adds the secret file flags.
func (s *secretFiles) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.token, "token-file", "", "read --token from this file (mode 0600 or stricter; its first line)")
	fs.StringVar(&s.joinToken, "join-token-file", "", "read --join-token from this file (mode 0600 or stricter; its first line)")
	fs.StringVar(&s.adminToken, "admin-token-file", "", "read --admin-token from this file (mode 0600 or stricter; its first line)")
}

// read fills f.token, f.joinToken and f.adminToken from their files. A file and its flag are mutually
// exclusive; a file wins over the environment variable.
func (s *secretFiles) read(fs *pflag.FlagSet, f *serveFlags) error {
	for _, c := range []struct {
		file, flag string
		dst        *string
	}{{s.token, "token", &f.token}, {s.joinToken, "join-token", &f.joinToken}, {s.adminToken, "admin-token", &f.adminToken}} {
		if c.file == "" {
			continue
		}
		if fs.Changed(c.flag) {
			return usageError{fmt.Errorf("--%s and --%s-file are mutually exclusive", c.flag, c.flag)}
		}
		secret, err := node.ReadSecretFile(c.file)
		if err != nil {
			return fmt.Errorf("--%s-file: %w", c.flag, err)
		}
		*c.dst = secret
	}
	return nil
}
