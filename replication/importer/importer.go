// Package importer is the vendor-to-parent hop: it imports a native patchtree.catalog/v1 feed or
// a CSAF 2.0 provider into the parent's catalog, incrementally by content, filtered to the
// site's languages, written as bounded Raft entries that become visible in one final entry.
package importer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"patchtree/replication/policy"
	"patchtree/store"
)

// Sentinel errors.
var (
	// ErrNotLeader means imports run on the site's leader; the API forwards there.
	ErrNotLeader = errors.New("imports run on the leader")
	// ErrBusy means another import is running.
	ErrBusy = errors.New("an import is already running")
	// ErrCancelled ends a run cancelled with DELETE /v1/catalog/imports/{id}.
	ErrCancelled = errors.New("import cancelled")
	// ErrStalled ends a run whose source sent no byte for the stall timeout.
	ErrStalled = errors.New("import source stalled")
)

// Defaults of the importer's bounds.
const (
	// DefaultStallTimeout ends an import whose source sends no byte for this long
	// (--import-stall-timeout).
	DefaultStallTimeout = 10 * time.Minute
	// DefaultMaxRedirects is how many redirects a URL source may follow, each of them checked
	// against the allow-list.
	DefaultMaxRedirects = 10
	// DefaultMaxBatchRows bounds the records of one staged batch, so that the entry that
	// publishes it applies in well under a second. MaxBatchBytes binds first on feeds shaped
	// like the Mozilla catalog (~1,200 updates of ~600 bytes fill 768 KiB).
	DefaultMaxBatchRows = 2048
	// cancelWait bounds how long a cancel waits for the run to stop before it answers.
	cancelWait = 30 * time.Second
)

// Backend is what the importer needs from a site server (node.Node implements it).
type Backend interface {
	State() *store.Store
	CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error)
	AbortCatalog(runID string) error
	// PublishCatalog stages a batch and writes it into the version being published, hidden
	// until SwitchCatalog makes that version visible; UnpublishCatalog takes the last one back
	// out (store/catalog_publish.go).
	PublishCatalog(runID string, b *store.CatalogBatch) (*store.PublishProgress, error)
	UnpublishCatalog(runID string) (*store.PublishProgress, error)
	SwitchCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error)
}

// Config tunes the importer.
type Config struct {
	// DefaultSource is used when a request names none (--catalog-source).
	DefaultSource string
	// MaxFeedBytes caps a native feed after decompression (default 4 GiB).
	MaxFeedBytes int64
	// MaxDocBytes caps one CSAF document (default 32 MiB).
	MaxDocBytes int64
	// MaxBatchBytes bounds one staged Raft entry (default 768 KiB, under node.MaxEntrySize).
	MaxBatchBytes int
	// MaxBatchRows bounds the records one batch writes or removes (default
	// DefaultMaxBatchRows), and so the work of the entry that publishes it.
	MaxBatchRows int
	HTTPClient   *http.Client
	Logger       *slog.Logger
	// KeepRuns is how many finished runs stay in memory with their progress (default 100).
	KeepRuns int
	// ScheduleTick is how often the import schedule is checked (default 10s).
	ScheduleTick time.Duration
	// Allow lists the directories and URL prefixes imports may read (--import-allow). Every
	// source, and every redirect of a URL source, is checked against it. nil allows every
	// source (embedding in tests); patchtree serve always sets it.
	Allow *AllowList
	// StallTimeout ends an import whose source sends no byte for this long (default 10m).
	StallTimeout time.Duration
	// UploadDir keeps uploaded feeds while they are imported (Upload); "" takes no uploads.
	UploadDir string
}

// Request starts an import.
type Request struct {
	Source string `json:"source,omitempty"`
	// Kind is "native" or "csaf"; empty detects it from the source.
	Kind string `json:"kind,omitempty"`
	// Mode "incremental" (default) uses the last import's validators; "complete" ignores them,
	// re-reads everything, and for CSAF removes records the provider no longer has.
	Mode              string   `json:"mode,omitempty"`
	IncludeVendors    []string `json:"include_vendors,omitempty"`
	ExcludeVendors    []string `json:"exclude_vendors,omitempty"`
	DeleteExcluded    bool     `json:"delete_excluded,omitempty"`
	DisableSuperseded bool     `json:"disable_superseded,omitempty"`
	// RevisePolicies adds the new updates of a policy's bulletins to the policy: "disabled"
	// (default), "enabled", or "off" to leave policies alone.
	RevisePolicies string `json:"revise_policies,omitempty"`
}

// Import phases.
const (
	PhaseFetching   = "fetching"
	PhaseParsing    = "parsing"
	PhaseDiffing    = "diffing"
	PhaseStaging    = "staging"
	PhaseCommitting = "committing"
	PhaseDone       = "done"
)

// Progress is an import run as the API reports it: the record plus live progress.
type Progress struct {
	store.ImportRun
	Phase       string `json:"phase"`
	RecordsRead int64  `json:"records_read"`
	BytesRead   int64  `json:"bytes_read"`
	BytesTotal  int64  `json:"bytes_total"`
	Batches     int    `json:"batches_staged"`
}

// run is a live import.
type run struct {
	mu      sync.Mutex
	rec     store.ImportRun
	req     Request
	phase   string
	batches int
	records atomic.Int64
	bytes   atomic.Int64
	total   atomic.Int64
	done    chan struct{}
	// cancel ends the run's context with a cause: ErrCancelled or ErrStalled.
	cancel context.CancelCauseFunc
}

func (r *run) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

func (r *run) progress() *Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &Progress{ImportRun: r.rec, Phase: r.phase, RecordsRead: r.records.Load(),
		BytesRead: r.bytes.Load(), BytesTotal: r.total.Load(), Batches: r.batches}
}

// Importer runs catalog imports on the site's leader.
type Importer struct {
	cfg      Config
	backend  Backend
	hasBacks chan struct{} // closed by SetBackend
	logger   *slog.Logger
	// uploadAllow is the allow-list uploaded feeds are read under: Config.UploadDir alone (nil:
	// no uploads).
	uploadAllow *AllowList

	mu        sync.Mutex
	leaderCtx context.Context
	active    *run
	runs      map[string]*run
	order     []string
}

// New returns an importer; SetBackend must be called before it runs.
func New(cfg Config) *Importer {
	if cfg.MaxFeedBytes <= 0 {
		cfg.MaxFeedBytes = 4 << 30
	}
	if cfg.ScheduleTick <= 0 {
		cfg.ScheduleTick = 10 * time.Second
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 768 << 10
	}
	if cfg.MaxBatchRows <= 0 {
		cfg.MaxBatchRows = DefaultMaxBatchRows
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Minute}
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	cfg.HTTPClient = checkedClient(cfg.HTTPClient, cfg.Allow)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KeepRuns <= 0 {
		cfg.KeepRuns = 100
	}
	im := &Importer{cfg: cfg, logger: cfg.Logger, runs: map[string]*run{}, hasBacks: make(chan struct{})}
	if cfg.UploadDir != "" {
		allow, err := ParseAllowList([]string{cfg.UploadDir})
		if err != nil {
			cfg.Logger.Error("uploaded feeds are refused: the upload directory is unusable", "dir", cfg.UploadDir, "error", err)
		}
		im.uploadAllow = allow
	}
	return im
}

// SetBackend connects the importer to its site server (which is built after the importer,
// because the server takes the importer's leader loop).
func (im *Importer) SetBackend(b Backend) {
	im.backend = b
	close(im.hasBacks)
}

// LeaderLoop runs while this server leads: imports may start, and changes staged by runs that
// a failed leader left behind are dropped. When leadership ends, a running import is cancelled
// and waited for.
func (im *Importer) LeaderLoop(ctx context.Context) {
	select {
	case <-im.hasBacks:
	case <-ctx.Done():
		return
	}
	im.mu.Lock()
	im.leaderCtx = ctx
	im.mu.Unlock()
	if leftover, err := im.backend.State().StagedRuns(); err == nil {
		for _, id := range leftover {
			if strings.HasPrefix(id, store.ReplicaStagePrefix) {
				continue // a run the site's parent link is applying: that side drops its own
			}
			if err := im.dropStaged(ctx, id); err != nil {
				im.logger.Warn("drop changes staged by an unfinished import", "run", id, "error", err)
			} else {
				im.logger.Info("dropped changes staged by an unfinished import", "run", id)
			}
		}
	}
	im.scheduleLoop(ctx)
	im.mu.Lock()
	im.leaderCtx = nil
	active := im.active
	im.mu.Unlock()
	if active != nil {
		<-active.done
	}
}

// Start begins an import and returns at once with its run.
func (im *Importer) Start(req Request) (*Progress, error) {
	if req.Source == "" {
		req.Source = im.cfg.DefaultSource
	}
	if req.Source == "" {
		return nil, fmt.Errorf("no source given and no --catalog-source configured: %w", store.ErrInvalid)
	}
	switch req.Mode {
	case "":
		req.Mode = "incremental"
	case "incremental", "complete":
	default:
		return nil, fmt.Errorf("mode must be incremental or complete, not %q: %w", req.Mode, store.ErrInvalid)
	}
	switch req.RevisePolicies {
	case "":
		req.RevisePolicies = store.ReviseDisabled
	case store.ReviseOff, store.ReviseDisabled, store.ReviseEnabled:
	default:
		return nil, fmt.Errorf("revise_policies must be off, disabled or enabled, not %q: %w", req.RevisePolicies, store.ErrInvalid)
	}
	switch req.Kind {
	case "", KindNative, KindCSAF:
	default:
		return nil, fmt.Errorf("kind must be native or csaf, not %q: %w", req.Kind, store.ErrInvalid)
	}
	if err := im.checkSource(req.Source); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.leaderCtx == nil {
		return nil, ErrNotLeader
	}
	if im.active != nil {
		return nil, fmt.Errorf("%w (%s); wait for it to finish: %w", ErrBusy, im.active.rec.ID, store.ErrConflict)
	}
	now := time.Now().UTC()
	r := &run{
		rec: store.ImportRun{ID: newRunID(now), Source: req.Source, Kind: req.Kind, Mode: req.Mode, State: store.ImportRunning, StartedAt: now,
			RevisePolicies: req.RevisePolicies, DisableSuperseded: req.DisableSuperseded},
		req:  req,
		done: make(chan struct{}),
	}
	r.phase = PhaseFetching
	im.active = r
	im.remember(r)
	ctx, cancel := context.WithCancelCause(im.leaderCtx)
	r.cancel = cancel
	go im.execute(ctx, r)
	return r.progress(), nil
}

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// remember keeps a run in memory, forgetting the oldest finished ones beyond KeepRuns.
func (im *Importer) remember(r *run) {
	im.runs[r.rec.ID] = r
	im.order = append(im.order, r.rec.ID)
	for len(im.order) > im.cfg.KeepRuns {
		delete(im.runs, im.order[0])
		im.order = im.order[1:]
	}
}

// Run reports one import: live from memory on the leader that ran it, else the recorded result.
func (im *Importer) Run(id string) (*Progress, error) {
	im.mu.Lock()
	r := im.runs[id]
	im.mu.Unlock()
	if r != nil {
		return r.progress(), nil
	}
	rec, err := im.backend.State().ImportRun(nil, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("import run %q: %w", id, store.ErrNotFound)
	}
	return &Progress{ImportRun: *rec, Phase: PhaseDone}, nil
}

// Runs lists recorded and in-memory runs, newest first.
func (im *Importer) Runs() ([]*Progress, error) {
	recs, err := im.backend.State().ImportRuns(nil)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Progress{}
	for _, r := range recs {
		byID[r.ID] = &Progress{ImportRun: *r, Phase: PhaseDone}
	}
	im.mu.Lock()
	for id, r := range im.runs {
		byID[id] = r.progress()
	}
	im.mu.Unlock()
	out := make([]*Progress, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// Wait blocks until run id finishes or ctx ends (for tests and the API's wait option).
func (im *Importer) Wait(ctx context.Context, id string) (*Progress, error) {
	im.mu.Lock()
	r := im.runs[id]
	im.mu.Unlock()
	if r == nil {
		return im.Run(id)
	}
	select {
	case <-r.done:
		return r.progress(), nil
	case <-ctx.Done():
		return r.progress(), ctx.Err()
	}
}

// execute runs one import to its end and records the outcome.
func (im *Importer) execute(ctx context.Context, r *run) {
	defer close(r.done)
	defer r.cancel(nil)
	start := time.Now()
	final, err := im.importRun(ctx, r)
	state := store.ImportFailed
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		// Cancelled by an admin or stalled: that, not the read error it caused, is the outcome.
		err = cause
		if errors.Is(cause, ErrCancelled) {
			state = store.ImportCancelled
		}
	}
	// Free the importer before publishing the outcome, so that whoever sees the run finished
	// can start the next one.
	im.mu.Lock()
	im.active = nil
	im.mu.Unlock()
	r.mu.Lock()
	if err != nil {
		r.rec.State, r.rec.Error, r.rec.FinishedAt = state, err.Error(), time.Now().UTC()
	} else {
		r.rec = *final
	}
	r.phase = PhaseDone
	rec := r.rec
	r.mu.Unlock()
	if err != nil {
		im.logger.Error("catalog import failed; the catalog is unchanged", "run", rec.ID, "source", rec.Source, "error", err)
		return
	}
	im.logger.Info("catalog import finished", "run", rec.ID, "state", rec.State, "feed", rec.Feed,
		"version", rec.CatalogVersion, "duration", time.Since(start).Round(time.Millisecond),
		"bulletins", fmt.Sprintf("%+v", rec.Result.Bulletins), "updates", fmt.Sprintf("%+v", rec.Result.Updates),
		"warnings", len(rec.Result.Warnings))
}

// scheduleLoop runs the catalog import task on the schedule of the server-tasks settings
// (catalog_import: "off", "HH:MM" daily or an interval) from the configured default source,
// until ctx ends. A run that finds an import already running waits for the next firing.
func (im *Importer) scheduleLoop(ctx context.Context) {
	tick := time.NewTicker(im.cfg.ScheduleTick)
	defer tick.Stop()
	var spec string
	var sched policy.Schedule
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			im.dropOrphanPublish(ctx)
			cur := "off"
			if doc, err := im.backend.State().SettingDoc(nil, policy.SettingsServerTasks); err == nil {
				if t := policy.ParseServerTasks(doc); t != nil && t.CatalogImport != "" {
					cur = t.CatalogImport
				}
			}
			if cur != spec {
				spec, next = cur, time.Time{}
				var err error
				if sched, err = policy.ParseSchedule(spec, false); err == nil && spec != "off" {
					next = sched.Next(now)
					im.logger.Info("catalog import scheduled", "schedule", spec, "next", next)
				}
			}
			if next.IsZero() || now.Before(next) {
				continue
			}
			next = sched.Next(now)
			if im.cfg.DefaultSource == "" {
				im.logger.Warn("scheduled catalog import skipped: no --catalog-source configured", "next", next)
				continue
			}
			if p, err := im.Start(Request{Mode: "incremental"}); err != nil {
				im.logger.Warn("scheduled catalog import not started", "error", err, "next", next)
			} else {
				im.logger.Info("scheduled catalog import started", "run", p.ID, "next", next)
			}
		}
	}
}

// dropStaged takes what a run published back out, one bounded entry per batch, then drops
// what it staged. The published version stays as it was throughout.
func (im *Importer) dropStaged(ctx context.Context, runID string) error {
	if publishing, err := im.backend.State().Publishing(); err != nil {
		return err
	} else if publishing == runID {
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("unpublish import %s: %w", runID, err)
			}
			p, err := im.backend.UnpublishCatalog(runID)
			if err != nil {
				return fmt.Errorf("unpublish import %s: %w", runID, err)
			}
			if p.Published == 0 {
				break
			}
		}
	}
	return im.backend.AbortCatalog(runID)
}

// dropOrphanPublish takes back a publish that no running import owns, which a snapshot or backup
// restored mid-publish brings without a new leader term: until it ends, the catalog's
// administrator writes answer 409.
func (im *Importer) dropOrphanPublish(ctx context.Context) {
	runID, err := im.backend.State().Publishing()
	if err != nil || runID == "" {
		return
	}
	im.mu.Lock()
	owned := im.active != nil && im.active.rec.ID == runID
	im.mu.Unlock()
	if owned {
		return
	}
	if err := im.dropStaged(ctx, runID); err != nil {
		im.logger.Warn("drop a catalog publish no import owns", "run", runID, "error", err)
		return
	}
	im.logger.Info("dropped a catalog publish no import owns", "run", runID)
}
