package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"patchtree/api"
	"patchtree/langalert"
	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/store"
)

// apiAddrFile holds the base URL a running server listens on, for scripts, tests and the demo.
const apiAddrFile = "api.addr"

type serveFlags struct {
	role, name, dataDir, listen, advertise string
	languages                              string
	raftListen, joinSite, token            string
	adminToken                             string
	logLevel                               string
	maxBody                                int64
	catalogSource                          string
	catalogMaxBytes                        int64
	importAllow                            []string
	importStall                            time.Duration
	parent, joinToken                      string
	parentRefusalGrace                     time.Duration
	tlsCert, tlsKey, tlsCA                 string
	tlsClientCA                            string
	tlsClientRequire                       bool
	testHooks                              bool
	testAckDelay                           time.Duration
	parentAddressRefresh                   time.Duration
	limits                                 httpLimits
	secretFiles                            secretFiles
	metrics                                metricsFlags
	snapshots                              snapshotFlags
}

func runServe(args []string) error {
	fs := newFlags("serve", "--role parent|relay|child --name NAME --data-dir DIR [flags]",
		"Run one server of a site. A data dir without Raft state bootstraps a new single-server site,\nunless --join-site adds this server to an existing site.")
	var f serveFlags
	fs.StringVar(&f.role, "role", "", "site role: parent (the root: imports the vendor catalog), relay (a parent with a parent) or child (required)")
	fs.StringVar(&f.name, "name", "", "site name (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the Raft log, snapshots and tokens (required)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8400", "HTTP API listen address (port 0 picks one; see <data-dir>/api.addr)")
	fs.StringVar(&f.advertise, "advertise", "", "API URL other servers of the site use to reach this one (default: from --listen)")
	fs.StringVar(&f.languages, "languages", "en", "managed language ranges of a new site, comma-separated (BCP 47 or *)")
	fs.StringVar(&f.raftListen, "raft-listen", "127.0.0.1:0", "Raft address; a multi-server site needs a fixed port")
	fs.StringVar(&f.joinSite, "join-site", "", "API URL of a server of an existing site to join")
	fs.StringVar(&f.token, "token", os.Getenv("PATCHTREE_TOKEN"), "admin token of the site to join (env PATCHTREE_TOKEN)")
	fs.StringVar(&f.adminToken, "admin-token", os.Getenv("PATCHTREE_ADMIN_TOKEN"), "first admin token of a new site, \"<id>.<secret>\" (env PATCHTREE_ADMIN_TOKEN; default: random)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Int64Var(&f.maxBody, "max-body-bytes", 1<<20, "largest request body accepted")
	fs.StringVar(&f.catalogSource, "catalog-source", "", "catalog source used when an import names none: feed file, feed URL, or CSAF provider directory/URL")
	fs.Int64Var(&f.catalogMaxBytes, "catalog-max-bytes", 4<<30, "largest native feed accepted, after decompression")
	fs.StringSliceVar(&f.importAllow, "import-allow", nil, "directories and http(s) URL prefixes imports may read, repeatable or comma-separated (default: the location of --catalog-source only; none without it)")
	fs.DurationVar(&f.importStall, "import-stall-timeout", importer.DefaultStallTimeout, "end an import whose source sends no byte for this long")
	fs.StringVar(&f.parent, "parent", "", "API URL of a server of this site's parent (a child or relay site): seeds the parent link, which the site keeps in its replicated state and runs on whichever server leads")
	fs.DurationVar(&f.parentRefusalGrace, "parent-refusal-grace", hierarchy.DefaultRefusalGrace, "how long the parent must keep refusing this child's credential (401) before the parent link stops as failed")
	fs.StringVar(&f.joinToken, "join-token", os.Getenv("PATCHTREE_JOIN_TOKEN"), "one-time join token from 'patchtree child add' at the parent (env PATCHTREE_JOIN_TOKEN); needed only until the child has joined")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve the API over TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "CA certificate (PEM) to verify the parent's TLS certificate")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "CA certificates (PEM) that API clients' certificates must chain to, when they present one")
	fs.BoolVar(&f.tlsClientRequire, "tls-client-require", false, "refuse API clients without a certificate from --tls-client-ca")
	f.secretFiles.register(fs)
	f.limits.register(fs)
	f.metrics.register(fs)
	f.snapshots.register(fs)
	fs.DurationVar(&f.parentAddressRefresh, "parent-address-refresh", hierarchy.DefaultAddressRefresh, "how often the parent link asks its parent site for the API addresses of its servers (also after a failover)")
	fs.BoolVar(&f.testHooks, "test-hooks", false, "enable hooks for fault tests (altering a child's replica); never in production")
	fs.MarkHidden("test-hooks")
	fs.DurationVar(&f.testAckDelay, "test-ack-delay", 0, "with --test-hooks, hold each acknowledgement of a run back this long")
	fs.MarkHidden("test-ack-delay")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.secretFiles.read(fs, &f); err != nil {
		return err
	}
	cfg, logger, err := f.config(fs.NArg())
	if err != nil {
		return usageError{err}
	}
	cfg.LanguagesGiven = fs.Changed("languages")
	return serve(f, cfg, logger)
}

// config validates the flags and builds the node configuration.
func (f *serveFlags) config(nargs int) (node.Config, *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return node.Config{}, nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", f.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	switch {
	case nargs > 0:
		return node.Config{}, nil, errors.New("serve takes no arguments")
	case !node.ValidRole(f.role):
		return node.Config{}, nil, fmt.Errorf("--role must be parent, relay or child, not %q", f.role)
	case f.role == node.RoleParent && f.parent != "":
		return node.Config{}, nil, errors.New("--parent: a parent is the root of its tree; a site with a parent that serves children is a relay (--role relay)")
	case f.name == "":
		return node.Config{}, nil, errors.New("--name is required")
	case f.dataDir == "":
		return node.Config{}, nil, errors.New("--data-dir is required")
	case f.joinSite != "" && strings.HasSuffix(f.raftListen, ":0"):
		return node.Config{}, nil, errors.New("--join-site needs a fixed --raft-listen address (not port 0)")
	case f.joinSite != "" && f.token == "":
		return node.Config{}, nil, errors.New("--join-site needs the site's admin token (--token, --token-file or PATCHTREE_TOKEN)")
	case f.maxBody <= 0:
		return node.Config{}, nil, errors.New("--max-body-bytes must be positive")
	case f.catalogMaxBytes <= 0:
		return node.Config{}, nil, errors.New("--catalog-max-bytes must be positive")
	case f.importStall <= 0:
		return node.Config{}, nil, errors.New("--import-stall-timeout must be positive")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return node.Config{}, nil, errors.New("--tls-cert and --tls-key go together")
	case f.parent != "" && !strings.HasPrefix(f.parent, "http://") && !strings.HasPrefix(f.parent, "https://"):
		return node.Config{}, nil, fmt.Errorf("--parent must be an http:// or https:// URL, not %q", f.parent)
	case f.testAckDelay != 0 && !f.testHooks:
		return node.Config{}, nil, errors.New("--test-ack-delay needs --test-hooks")
	case f.parentAddressRefresh <= 0:
		return node.Config{}, nil, errors.New("--parent-address-refresh must be positive")
	}
	if err := store.CheckName("site", f.name); err != nil {
		return node.Config{}, nil, fmt.Errorf("--name: %w", err)
	}
	if err := f.limits.validate(); err != nil {
		return node.Config{}, nil, err
	}
	if err := f.metrics.validate(); err != nil {
		return node.Config{}, nil, err
	}
	ranges, err := langalert.ParseRanges([]string{f.languages})
	if err != nil {
		return node.Config{}, nil, fmt.Errorf("--languages: %w", err)
	}
	cfg := node.Config{
		Name: f.name, Role: f.role, DataDir: f.dataDir, RaftBind: f.raftListen,
		Languages: ranges, AdminToken: f.adminToken, JoinSite: f.joinSite, JoinToken: f.token,
		Logger: logger,
	}
	if err := f.snapshots.apply(&cfg); err != nil {
		return node.Config{}, nil, err
	}
	return cfg, logger, nil
}

// serve runs the server until SIGINT/SIGTERM or a fatal node error.
func serve(f serveFlags, cfg node.Config, logger *slog.Logger) error {
	slog.SetDefault(logger) // the log package's lines (net/http's errors) take the same format
	// The data dir's lock comes first: a second server on the same dir stops here at once.
	lock, err := node.LockDataDir(f.dataDir, logger)
	if err != nil {
		return err
	}
	defer lock.Release()
	addrPath := filepath.Join(f.dataDir, apiAddrFile)
	if err := os.Remove(addrPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", addrPath, err)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	cfg.APIAddr = f.advertise
	if cfg.APIAddr == "" {
		cfg.APIAddr = advertiseURL(ln.Addr().(*net.TCPAddr), f.tlsCert != "", logger)
	}
	client, err := parentClient(f)
	if err != nil {
		ln.Close()
		return err
	}
	apiTLSConfig, err := apiTLS(f)
	if err != nil {
		ln.Close()
		return err
	}
	allowed := f.importAllow
	if len(allowed) == 0 {
		allowed = importer.DefaultAllow(f.catalogSource)
	}
	allow, err := importer.ParseAllowList(allowed)
	if err != nil {
		ln.Close()
		return usageError{err}
	}
	logger.Info("catalog imports may read", "import_allow", allow.String())
	imp := importer.New(importer.Config{DefaultSource: f.catalogSource, MaxFeedBytes: f.catalogMaxBytes, Logger: logger,
		Allow: allow, StallTimeout: f.importStall, UploadDir: filepath.Join(f.dataDir, "uploads")})
	parent := hierarchy.NewParent(logger.With("side", "parent"))
	parent.SetHealthThresholds(f.metrics.thresholds())
	cfg.LeaderLoops = append(cfg.LeaderLoops, node.LeaderLoop{Name: "hierarchy-parent", Run: parent.LeaderLoop})
	// Every server of a child or relay site runs the parent link when it leads: the link is in
	// the site's replicated state, and --parent and --join-token only seed it.
	var child *hierarchy.Child
	if f.role != node.RoleParent {
		var caPEM []byte
		if f.tlsCA != "" {
			if caPEM, err = os.ReadFile(f.tlsCA); err != nil {
				ln.Close()
				return fmt.Errorf("--tls-ca: %w", err)
			}
		}
		child = hierarchy.NewChild(hierarchy.ChildConfig{ParentURL: f.parent, JoinToken: f.joinToken, Name: f.name,
			Client: client, CAPEM: caPEM, ClientCert: f.tlsCert != "", Logger: logger.With("side", "child"),
			RefusalGrace: f.parentRefusalGrace, Downstream: parent, AddressRefresh: f.parentAddressRefresh, AckDelay: f.testAckDelay,
			Health: f.metrics.thresholds()})
		cfg.LeaderLoops = append(cfg.LeaderLoops, node.LeaderLoop{Name: "hierarchy-child", Run: child.LeaderLoop})
	}
	if f.role == node.RoleParent {
		// Only a parent imports from vendors; a child's catalog comes from its parent.
		cfg.LeaderLoops = append(cfg.LeaderLoops, node.LeaderLoop{Name: "catalog-import", Run: imp.LeaderLoop})
	}
	n, err := node.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	imp.SetBackend(n)
	parent.SetBackend(n)
	apiOpts := api.Options{MaxBodyBytes: f.maxBody, Logger: logger, Importer: imp, Hierarchy: parent, TestHooks: f.testHooks,
		Limits: f.limits.apiLimits()}
	if child != nil {
		child.SetBackend(n)
		apiOpts.ParentLink = func() *hierarchy.ChildState { st := child.Status(); return &st }
		apiOpts.Uplink = child
	}
	handler, err := f.metrics.apiHandler(n, apiOpts, parent, child, imp, logger)
	if err != nil {
		ln.Close()
		return errors.Join(err, n.Shutdown())
	}
	srv := f.limits.server(handler)
	ln = f.limits.listener(ln, logger)
	srv.TLSConfig = apiTLSConfig
	stopReloads := watchReloads(f, apiTLSConfig, logger) // SIGHUP re-reads the API certificate (reload.go)
	defer stopReloads()
	serveErr := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	if err := node.WriteFileAtomic(addrPath, []byte(cfg.APIAddr+"\n"), 0o644); err != nil {
		logger.Error("write api address file", "path", addrPath, "error", err)
	}
	logger.Info("serving", "site", f.name, "role", f.role, "api", cfg.APIAddr, "node", n.ID())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var runErr error
	select {
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String())
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-n.Fatal():
		runErr = err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := n.Shutdown(); err != nil && runErr == nil {
		runErr = err
	}
	os.Remove(addrPath)
	return runErr
}

// advertiseURL derives the API URL from the listener; an unspecified address (0.0.0.0) is
// advertised as loopback, which only suits a single-server site.
func advertiseURL(addr *net.TCPAddr, tls bool, logger *slog.Logger) string {
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
		logger.Warn("listening on all interfaces; advertising loopback. Set --advertise for a multi-server site.")
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}
