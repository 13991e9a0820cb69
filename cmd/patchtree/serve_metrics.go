package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/spf13/pflag"

	"patchtree/api"
	"patchtree/metrics"
	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
)

// metricsFlags are serve's flags for GET /metrics and the links' health.
type metricsFlags struct {
	public        bool
	degradedAfter int
	failedAfter   int
}

func (m *metricsFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&m.public, "metrics-public", false, "let anyone scrape GET /metrics without a token (a scraper on a private network); default: admin and auditor tokens")
	fs.IntVar(&m.degradedAfter, "link-degraded-after", hierarchy.DefaultDegradedAfter, "a replication link is degraded after this many failures in a row: runs that failed or did not verify, and missed contacts (a parent: poll windows a child let pass; a child: failed requests to its parent)")
	fs.IntVar(&m.failedAfter, "link-failed-after", hierarchy.DefaultFailedAfter, "a replication link is failed after this many failures in a row")
}

func (m *metricsFlags) thresholds() hierarchy.HealthThresholds {
	return hierarchy.HealthThresholds{DegradedAfter: m.degradedAfter, FailedAfter: m.failedAfter}
}

func (m *metricsFlags) validate() error {
	if err := m.thresholds().Validate(); err != nil {
		return fmt.Errorf("--link-degraded-after, --link-failed-after: %w", err)
	}
	return nil
}

// apiHandler builds the server's metrics and its API with GET /metrics, every request counted
// by route pattern.
func (m *metricsFlags) apiHandler(n *node.Node, opts api.Options, parent *hierarchy.Parent, child *hierarchy.Child,
	imp *importer.Importer, logger *slog.Logger) (http.Handler, error) {
	cfg := metrics.Config{Node: n, Parent: parent, Importer: imp, Logger: logger}
	if child != nil {
		cfg.ParentLink = func() *hierarchy.ChildState { st := child.Status(); return &st }
	}
	mt, err := metrics.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	opts.Metrics, opts.MetricsPublic = mt.Handler(), m.public
	srv := api.New(n, opts)
	return mt.Instrument(srv, srv.RouteOf), nil
}
