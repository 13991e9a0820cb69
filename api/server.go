// Package api serves patchtree's public HTTP API: one route table, thin handlers that decode,
// call the node and encode, one error wrapper, bearer-token authentication with roles, request
// body caps, and forwarding of writes from followers to the leader.
package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"patchtree/node"
	"patchtree/replication/compliance"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/replication/policy"
	"patchtree/store"
)

// Backend is what the API needs from a site server. node.Node implements it; handler tests use
// a fake.
type Backend interface {
	ID() string
	State() *store.Store
	Status() (*node.Status, error)
	Ready() bool
	// NotReady says why the server is not ready (nil when it is).
	NotReady() error
	WaitReady(ctx context.Context) error
	IsLeader() bool
	WaitLeader(ctx context.Context) (string, error)
	Servers() ([]node.ServerStatus, error)

	// Writes made for a caller take it as by: each is applied with its audit entry in the same
	// Raft entry (node.AuditedRequest).
	CreateToken(by store.Actor, role store.Role, name string) (*node.CreatedToken, error)
	DeleteToken(by store.Actor, id string) (uint64, error)
	SetLanguages(by store.Actor, ranges []string) (uint64, error)
	AddServer(by store.Actor, req node.JoinRequest, allowNew bool) (uint64, error)
	RemoveServer(by store.Actor, id string) (uint64, error)
	IssueServerTLS(id string) (*node.SiteTLS, error)
	ChangeSeverityLevels(by store.Actor, c store.SeverityChange) (uint64, error)
	SetBulletinAdmin(by store.Actor, id string, customSeverity *string, disabled *bool) (uint64, error)
	AddChild(by store.Actor, name string) (*node.EnrolledChild, error)
	RemoveChild(by store.Actor, name string) (uint64, error)
	RotateChild(by store.Actor, name string) (*node.RotatedChild, error)
	PutSettingAs(by store.Actor, action, key string, v any) (uint64, error)
	// PutSetting is the site's own setting write (no caller to audit).
	PutSetting(key string, v any) (uint64, error)

	CreatePolicy(actor store.Actor, in policy.Input) (*store.Policy, error)
	UpdatePolicy(actor store.Actor, id string, in policy.Input) (*store.Policy, error)
	DeletePolicy(actor store.Actor, id string) (uint64, error)
	PutSettingDoc(actor store.Actor, name string, body []byte) (*store.SettingDoc, error)
	Audit(actor store.Actor, action, target string, detail any) error
	ApplyScans(scans []store.Scan) (*store.ScanOutcome, error)
}

// Importer runs catalog imports (importer.Importer implements it).
type Importer interface {
	Start(req importer.Request) (*importer.Progress, error)
	Run(id string) (*importer.Progress, error)
	Runs() ([]*importer.Progress, error)
	// Upload saves a feed streamed by an administrator and imports it (importer.Upload).
	Upload(req importer.Request, name string, size int64, body io.Reader) (*importer.Progress, error)
	// Cancel stops a running import (DELETE /v1/catalog/imports/{id}).
	Cancel(ctx context.Context, id string) (*importer.Progress, error)
}

var _ Backend = (*node.Node)(nil)

// Options tunes the API.
type Options struct {
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// ReadyTimeout is how long a request waits for a starting server to catch up (default 10s).
	ReadyTimeout time.Duration
	Logger       *slog.Logger
	// Importer runs catalog imports; nil on a server that cannot import.
	Importer Importer
	// Hierarchy serves children; ParentLink reports this site's own parent (nil: none).
	Hierarchy  Hierarchy
	ParentLink func() *hierarchy.ChildState
	// Uplink sends this site's compliance summary to its parent (nil: no parent).
	Uplink Uplink
	// TestHooks lets tests alter a child's replica (PATCH of a bulletin on a child), to prove
	// that verification detects and repairs it. Never set in production.
	TestHooks bool
	// Limits are the per-client-address rate limits (zero: none).
	Limits Limits
	// Metrics serves GET /metrics (nil: no metrics); MetricsPublic lets anyone scrape it.
	Metrics       http.Handler
	MetricsPublic bool
}

// rawResponse is a handler result that writes the response itself (a stream).
type rawResponse func(w http.ResponseWriter)

// Server is the HTTP API of one site server.
type Server struct {
	backend  Backend
	opts     Options
	logger   *slog.Logger
	router   *mux.Router
	reporter *compliance.Reporter
	limits   limiters
	console  *consoleState // the web console's sessions and event streams (console.go)
}

// handlerFunc is a thin handler: it returns a status and a value to encode, or an error.
type handlerFunc func(r *http.Request) (int, any, error)

// New builds the API over backend.
func New(backend Backend, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{backend: backend, opts: opts, logger: opts.Logger, reporter: compliance.NewReporter(), limits: newLimiters(opts.Limits)}
	r := mux.NewRouter()
	for _, rt := range s.routes() {
		r.Handle(rt.path, s.wrap(rt)).Methods(rt.method)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, fmt.Errorf("%w: %s %s", ErrNoRoute, req.Method, req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, fmt.Errorf("%w: %s %s", ErrMethod, req.Method, req.URL.Path))
	})
	s.router = r
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// wrap is the one wrapper every route goes through: body cap, readiness, authentication and
// role check, forwarding of writes to the leader, then the handler, then encoding.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				s.logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
				writeError(w, fmt.Errorf("internal error in %s %s", r.Method, r.URL.Path))
			}
		}()
		if err := s.limitRoute(r, rt); err != nil {
			writeLimited(w, err)
			return
		}
		limit := s.opts.MaxBodyBytes
		if rt.maxBody > 0 {
			limit = rt.maxBody
		}
		if r.ContentLength > limit {
			writeError(w, fmt.Errorf("%w: %d bytes, limit is %d", ErrTooLarge, r.ContentLength, limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		r = r.WithContext(context.WithValue(r.Context(), bodyLimitKey, limit))
		if !rt.access.public {
			if err := s.waitReady(r); err != nil {
				writeError(w, err)
				return
			}
			tok, err := s.authorize(r, rt.access)
			if err != nil {
				writeLimited(w, s.limitAuthFailure(r, err))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), tokenKey, tok))
			if err := extendDeadlines(w, rt); err != nil {
				s.logger.Warn("long-running route keeps the server's timeouts", "error", err)
			}
		}
		if rt.onLeader && !s.backend.IsLeader() {
			s.forward(w, r)
			return
		}
		audit := &auditMark{}
		r = r.WithContext(context.WithValue(r.Context(), auditKey, audit))
		code, v, err := rt.handler(r)
		if err == nil && !audit.done {
			err = s.auditWrite(r, rt)
		}
		switch raw, isRaw := v.(rawResponse); {
		case err != nil:
			writeError(w, err)
		case isRaw:
			raw(w)
		case code == http.StatusNoContent:
			w.WriteHeader(code)
		default:
			writeJSON(w, code, v)
		}
	})
}

// waitReady waits, at most ReadyTimeout, for a starting server to catch up with the site's log
// before it serves an authenticated request.
func (s *Server) waitReady(r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
	defer cancel()
	return s.backend.WaitReady(ctx)
}

// auditMark records whether a handler of an auditOnly route wrote its audit entry itself (with
// details the route alone does not give), so that the wrapper writes none.
type auditMark struct{ done bool }

const auditKey ctxKey = 1

// markAudited tells the wrapper that the handler recorded the request in the audit log.
func markAudited(r *http.Request) {
	if m, ok := r.Context().Value(auditKey).(*auditMark); ok {
		m.done = true
	}
}

// auditWrite records a successful write by an administrator or rollout operator whose change
// carries no audit entry of its own (auditOnly): who, which route, which object. The change is
// made by then; if its entry cannot be written the caller is told so instead of a success.
func (s *Server) auditWrite(r *http.Request, rt route) error {
	tok := callerToken(r)
	action, ok := auditOnly[rt.key()]
	if !ok || tok == nil || (tok.Role != store.RoleAdmin && tok.Role != store.RoleRollout) {
		return nil
	}
	target := ""
	for k, v := range mux.Vars(r) {
		target = k + " " + v
	}
	if err := s.backend.Audit(actor(r), action, target, nil); err != nil {
		s.logger.Error("audit log write failed", "action", action, "error", err)
		return fmt.Errorf("%s was carried out, but its audit entry could not be written: %w", action, err)
	}
	return nil
}
