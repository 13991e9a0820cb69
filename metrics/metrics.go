// Package metrics is the Prometheus exposition of a site server (GET /metrics): a collector
// that reads the server's state at scrape time (Raft, the store, the links to the children and
// to the parent, compliance, alerts), the event metrics the node records as they happen (Raft
// applies, snapshots), and the HTTP API's requests, counted by route pattern.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/store"
	"patchtree/version"
)

// Node is what the collector reads of the server.
type Node interface {
	Status() (*node.Status, error)
	State() *store.Store
}

// Parent is the parent side: the links to the children, and the alerts.
type Parent interface {
	Status(only string) ([]hierarchy.ChildStatus, error)
	Alerts() ([]hierarchy.Alert, error)
}

// Importer reports the catalog imports this server ran or runs (the bytes they read).
type Importer interface {
	Runs() ([]*importer.Progress, error)
}

// Config is what the metrics read.
type Config struct {
	Node Node
	// Parent is the parent side (nil: none); ParentLink the link to this site's own parent
	// (nil: none); Importer the catalog importer (nil: none).
	Parent     Parent
	ParentLink func() *hierarchy.ChildState
	Importer   Importer
	Logger     *slog.Logger
}

// Metrics is a server's registry and its HTTP instrumentation.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the registry: build info, the Go runtime and process, the node's event metrics,
// the scrape-time collector, and the HTTP request metrics.
func New(cfg Config) (*Metrics, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchtree_http_requests_total",
			Help: "HTTP API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "patchtree_http_request_duration_seconds",
			Help:    "HTTP API request duration by route pattern and method (a long-poll lasts up to its wait).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
	}
	info := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "patchtree_build_info",
		Help:        "The running build: always 1, with its version, commit and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.ShortCommit(), "go_version": info.GoVersion},
	})
	build.Set(1)
	cs := []prometheus.Collector{
		build, m.requests, m.duration, newSiteCollector(cfg),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	cs = append(cs, node.Collectors()...)
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry in the exposition format the scraper asks for.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// knownMethods bound the method label: anything else is "other".
var knownMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
	http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// Instrument counts every request next serves under the route pattern routeOf names (never the
// path: that would be one series per id), its method and its status code.
func (m *Metrics) Instrument(next http.Handler, routeOf func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, method := routeOf(r), r.Method
		if !knownMethods[method] {
			method = "other"
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(route, method, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(p)
}

// Flush passes a flush on: the pull stream and long-polls flush as they go.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines of long routes).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
