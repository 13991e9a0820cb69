package hierarchy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/iocount"
	"patchtree/store"
)

// SettingParent is the settings key of a child's link to its parent.
const SettingParent = "parent"

// SourceParent is the source id under which a child records its replica's cursor.
const SourceParent = "parent"

// pullTransferLimit bounds how long one run may take to arrive after the long-poll.
const pullTransferLimit = 30 * time.Minute

// stagedPrefix marks the staged batches of replication runs on a child.
const stagedPrefix = store.ReplicaStagePrefix

// Link is a child's link to its parent, kept in the child's replicated state so that restarts
// and new leaders need no join token, and so that whichever server of the site leads runs it.
type Link struct {
	// URL is the parent URL the link was set up with (--parent).
	URL        string    `json:"url"`
	Child      string    `json:"child"`
	NodeToken  string    `json:"node_token"`
	ParentName string    `json:"parent_name"`
	ParentSite string    `json:"parent_site_id"`
	JoinedAt   time.Time `json:"joined_at"`
	// JoinTokenHash is the hash of the join token this credential was obtained with: a
	// different --join-token (from 'patchtree child rotate') is exchanged for a new credential.
	JoinTokenHash string `json:"join_token_hash,omitempty"`
	// SiteURLs are the API addresses of the parent site's servers, as the parent last said
	// (link_addresses.go); Direct says URL was one of them, so requests fail over between them.
	SiteURLs   []string  `json:"site_urls,omitempty"`
	SiteURLsAt time.Time `json:"site_urls_at,omitzero"`
	Direct     bool      `json:"direct,omitempty"`
	// TLS is what reaching the parent needed when the site joined (link_tls.go).
	TLS *LinkTLS `json:"tls,omitempty"`
}

// ChildBackend is what the child side needs from its site server (node.Node implements it).
type ChildBackend interface {
	State() *store.Store
	PutSetting(key string, v any) (uint64, error)
	StageCatalog(runID string, b *store.CatalogBatch) error
	CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error)
	AbortCatalog(runID string) error
}

// ChildConfig configures the child side. ParentURL and JoinToken only seed the link: a server
// started without them runs the link its site already has in its replicated state.
type ChildConfig struct {
	ParentURL string
	// Health turns the link's consecutive failures into its health (zero: the defaults).
	Health    HealthThresholds
	JoinToken string
	Name      string
	Client    *http.Client
	// CAPEM is the CA bundle this server verifies the parent with (--tls-ca; nil: none), and
	// ClientCert whether Client presents a certificate: both are recorded in the link at join.
	CAPEM      []byte
	ClientCert bool
	Logger     *slog.Logger
	// PollWait is how long the parent may hold a pull (default 50s).
	PollWait time.Duration
	// RefusalGrace is how long the parent must keep refusing this child's stored credential
	// (401) before the link stops as failed (default DefaultRefusalGrace). A server of a
	// multi-server parent that has just become leader, or restarted, may not have applied the
	// credential yet and refuses it for a few seconds; a revoked or rotated one is refused for
	// good. A refused join token stops the link at once.
	RefusalGrace time.Duration
	// Downstream is this site's own parent side (its children), which a relay reports up and
	// passes replicate-now requests on to.
	Downstream *Parent
	// AddressRefresh is how often the parent site's addresses are asked for again (default
	// DefaultAddressRefresh; also after a failover).
	AddressRefresh time.Duration
	// AckDelay holds each acknowledgement back (fault tests only: a parent leader killed between
	// a run and its acknowledgement).
	AckDelay time.Duration
}

// DefaultRefusalGrace is ChildConfig.RefusalGrace's default.
const DefaultRefusalGrace = 2 * time.Minute

// Parent link states (ChildState.State).
const (
	// LinkJoining: the link has no credential yet and is exchanging its join token.
	LinkJoining = "joining"
	// LinkRunning: joined; the link reports, pulls and sends summaries (errors are retried).
	LinkRunning = "running"
	// LinkFailed: a permanent error stopped the link (Error says which); it is not retried
	// until the server restarts or its leadership changes.
	LinkFailed = "failed"
	// LinkNotConfigured: the site has no link in its state and this server no --parent; the
	// link waits for one to be recorded (by a server started with --parent and --join-token).
	LinkNotConfigured = "not-configured"
)

// ChildState is what a child's status reports about its parent link.
type ChildState struct {
	// URL is the parent address in use; Addresses every address the link may use.
	URL            string    `json:"url"`
	Addresses      []string  `json:"addresses,omitempty"`
	State          string    `json:"state"`
	Joined         bool      `json:"joined"`
	Connected      bool      `json:"connected"`
	LastContact    time.Time `json:"last_contact,omitempty"`
	Cursor         uint64    `json:"cursor"`
	RangesReported bool      `json:"ranges_reported"`
	Uncovered      []string  `json:"uncovered_ranges"`
	LastRun        string    `json:"last_run,omitempty"`
	LastVerified   bool      `json:"last_verified"`
	// Health is the link's health (active, degraded, failed) after ConsecutiveFailures failed
	// requests or unverified runs in a row (link_health.go).
	Health              string `json:"health"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Error               string `json:"error,omitempty"`
	// Problem is what this server lacks to run the link as it was set up (TLS files).
	Problem string `json:"problem,omitempty"`
	// LastSummary is the compliance summary rule's last firing.
	LastSummary *SummaryResult `json:"last_summary,omitempty"`
}

// Child is the child side: it joins its parent, reports its languages, and pulls its view.
type Child struct {
	cfg     ChildConfig
	backend ChildBackend
	ready   chan struct{}

	mu    sync.Mutex
	state ChildState
	// reported asks the report loop to report again (after each applied run, so that the
	// uncovered ranges it learns from the parent stay current).
	report chan struct{}
	// partial is a run whose stream was cut after some chunks were staged; the next pull asks
	// the parent to resume it. Only the pull loop touches it.
	partial *partialRun
	// sumMu serialises the compliance summary rule (its loop and replicate now).
	sumMu sync.Mutex
	// instance is this process's random id, sent with every request (InstanceHeader).
	instance string
	// stop ends the running link (set by LeaderLoop, under mu).
	stop context.CancelFunc
	// refusedSince is when the parent began refusing the stored credential (zero: it is not;
	// under mu). A success resets it.
	refusedSince time.Time
	// contactFailures and runFailures are the failed requests since the last contact and the
	// unverified runs since the last verified one (link_health.go; under mu).
	contactFailures, runFailures int
	// running says this server runs the link (its leader loop); under mu.
	running bool
	// active is the link in use, current the parent address in use and client the HTTP client
	// for it (link_addresses.go, link_tls.go); under mu. refresh asks for the addresses again.
	active  *Link
	current string
	client  *http.Client
	refresh chan struct{}
	// saved is the status last written to the replicated state (savedOK: one was); saveMu
	// serialises the writes (link_state.go).
	saveMu  sync.Mutex
	saved   linkRecord
	savedOK bool
}

// partialRun is where a cut run stands on this child.
type partialRun struct {
	header     RunHeader
	next       int // chunks staged so far
	seenB      map[string]bool
	seenU      map[string]bool
	wire, raw  int64
	start      time.Time
	stagedRows bool
	// keep is every policy the parent has; sentPolicies and sentSettings what the run carried.
	keep, sentPolicies, sentSettings map[string]bool
}

// NewChild returns the child side; SetBackend connects it to its server.
func NewChild(cfg ChildConfig) *Child {
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 50 * time.Second
	}
	if cfg.RefusalGrace <= 0 {
		cfg.RefusalGrace = DefaultRefusalGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AddressRefresh <= 0 {
		cfg.AddressRefresh = DefaultAddressRefresh
	}
	cfg.ParentURL = normURL(cfg.ParentURL)
	return &Child{cfg: cfg, ready: make(chan struct{}), state: ChildState{URL: cfg.ParentURL, State: LinkJoining, Uncovered: []string{}, Health: HealthActive},
		report: make(chan struct{}, 1), refresh: make(chan struct{}, 1), instance: newInstanceID()}
}

// SetBackend connects the child side to its server.
func (c *Child) SetBackend(b ChildBackend) {
	c.backend = b
	close(c.ready)
}

// Status reports the parent link: the leader's own view on the server that runs it, the
// replicated one on any other (whose last contact is only as fine as contactGrain).
func (c *Child) Status() ChildState {
	ready := false
	select {
	case <-c.ready:
		ready = true
	default:
	}
	c.mu.Lock()
	st, running := c.state, c.running
	c.mu.Unlock()
	connectedFor := c.cfg.PollWait + 15*time.Second
	if ready && !running {
		st = c.replicatedStatus(st)
		connectedFor += contactGrain
	}
	if ready {
		st.Cursor, _ = c.cursor()
	}
	st.Connected = !st.LastContact.IsZero() && time.Since(st.LastContact) < connectedFor
	return st
}

// setErr records the outcome of a request to the parent (nil: a contact) and saves the status
// if that changed it.
func (c *Child) setErr(err error) {
	c.mu.Lock()
	switch {
	case c.state.State == LinkFailed:
		// the error that stopped the link stays
	case err == nil:
		c.state.Error = ""
		c.state.LastContact = time.Now()
		c.refusedSince = time.Time{}
		c.contactFailures = 0
	default:
		c.state.Error = err.Error()
		c.contactFailures++
	}
	c.updateHealth()
	c.mu.Unlock()
	c.saveState()
}

// LeaderLoop runs on whichever server of the site leads: every server of a child or relay
// site registers it, and it runs the link recorded in the site's replicated state (a server's
// --parent and --join-token only seed it). Without a link it waits for one (state
// not-configured). It joins once, then reports languages, pulls and sends summaries. A
// permanent error (isPermanent) stops it: state failed, one ERROR line, no retry loop.
func (c *Child) LeaderLoop(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.stop, c.running = cancel, true
	c.state.State, c.state.Joined, c.state.Error = LinkJoining, false, ""
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running, c.stop = false, nil
		c.mu.Unlock()
	}()
	c.resumeState()
	// A run this site was applying when it stopped (or lost leadership) left staged batches;
	// they are dropped, and the run is pulled again from the committed cursor.
	if leftover, err := c.backend.State().StagedRuns(); err == nil {
		for _, id := range leftover {
			if strings.HasPrefix(id, stagedPrefix) {
				if err := c.backend.AbortCatalog(id); err != nil {
					c.cfg.Logger.Warn("drop a half-applied replication run", "run", id, "error", err)
				}
			}
		}
	}
	c.partial = nil
	link, err := c.ensureJoined(ctx)
	if err != nil {
		return // ctx ended, or a permanent error stopped the link
	}
	if problem := c.setActive(link); problem != "" {
		c.cfg.Logger.Error("this server lacks what the parent link was set up with", "problem", problem)
	}
	if err := c.refreshAddresses(ctx); err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("could not learn the parent site's addresses; using the configured one", "url", link.URL, "error", err)
	}
	c.mu.Lock()
	c.state.Joined, c.state.State = true, LinkRunning
	c.mu.Unlock()
	c.saveState()
	var wg sync.WaitGroup
	wg.Go(func() { c.reportLoop(ctx, link) })
	wg.Go(func() { c.summaryLoop(ctx) })
	wg.Go(func() { c.addressLoop(ctx) })
	c.pullLoop(ctx, link)
	wg.Wait()
}

// pullLoop long-polls the parent and applies each run it answers with.
func (c *Child) pullLoop(ctx context.Context, link *Link) {
	attempt := 0
	for ctx.Err() == nil {
		// After a failed pull the next one waits briefly, so that the link's status shows the
		// recovery at once instead of after a whole long-poll.
		wait := c.cfg.PollWait
		if attempt > 0 {
			wait = min(wait, recoverPollWait)
		}
		err := c.pullOnce(ctx, link, wait)
		if ctx.Err() != nil {
			return
		}
		if c.checkPermanent(err) {
			return
		}
		c.setErr(err)
		if err == nil {
			attempt = 0
			continue
		}
		var he *httpError
		if errors.As(err, &he) && he.Status == http.StatusConflict {
			// Not reported our languages yet: the report loop is on it.
			attempt = min(attempt, 1)
		}
		// A cut run that can resume is pulled again at once: earlier failures say nothing about
		// the next connection. A resume cut before it staged anything backs off, afresh.
		var cut *cutError
		resumeNow := errors.As(err, &cut) && cut.progress
		c.cfg.Logger.Warn("pull from parent failed; retrying", "error", err, "resume_now", resumeNow)
		if cut != nil {
			attempt = 0
		}
		if resumeNow {
			continue
		}
		attempt++
		if !backoff(ctx, attempt) {
			return
		}
	}
}

// cursor is where this replica's catalog stands.
func (c *Child) cursor() (uint64, []string) {
	src := c.source()
	return src.Cursor, src.Ranges
}

// source is where this replica stands: catalog, policies and settings cursors.
func (c *Child) source() store.SourceState {
	src, err := c.backend.State().Source(nil, SourceParent)
	if err != nil || src == nil {
		return store.SourceState{ID: SourceParent, Kind: "parent", Feed: "parent"}
	}
	return *src
}

// recoverPollWait is how long the parent may hold the first pull after a failed one.
const recoverPollWait = time.Second

// ackTimeout bounds the acknowledgement of a run. It is sent under the leader term's context,
// not the pull's (whose transfer limit the apply may have used up): a leader deposed while it
// applied does not acknowledge.
const ackTimeout = 30 * time.Second

// pullOnce pulls, applies and acknowledges one run; term ends with this server's leader term.
func (c *Child) pullOnce(term context.Context, link *Link, wait time.Duration) error {
	src := c.source()
	q := url.Values{}
	q.Set("cursor", fmt.Sprint(src.Cursor))
	q.Set("ranges", strings.Join(src.Ranges, ","))
	q.Set("pcursor", fmt.Sprint(src.PolicyCursor))
	q.Set("pranges", strings.Join(src.PolicyRanges, ","))
	q.Set("scursor", fmt.Sprint(src.SettingsCursor))
	q.Set("wait", wait.String())
	q.Set(RevisionParam, strconv.Itoa(RevisionCompact))
	c.addRootRanges(q)
	if c.partial != nil {
		q.Set("resume", c.partial.header.RunID)
		q.Set("chunk", fmt.Sprint(c.partial.next))
	}
	// Bound the whole pull, so that a connection that dies silently cannot hold the loop.
	ctx, cancel := context.WithTimeout(term, wait+pullTransferLimit)
	defer cancel()
	resp, err := c.roundTrip(ctx, func(base string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+ProtocolPath+"/catalog?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+link.NodeToken)
		return req, nil
	})
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	start := time.Now() // the run starts when the parent answers, not when the long-poll began
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		c.checkRootRanges(resp)
		c.dropPartial() // the parent does not hold that run any more
		return nil
	case resp.StatusCode/100 != 2:
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("pull: %w", httpErrorOf(resp.StatusCode, raw))
	}
	c.setErr(nil)
	ticket, err := DecodeTicket(resp.Header.Get(RunTicketHeader))
	if err != nil {
		c.cfg.Logger.Warn("the parent's run ticket is unreadable; the run is acknowledged without it", "error", err)
	}
	ack, cut := c.apply(ctx, link, resp.Body, start)
	if cut != nil {
		// Not acknowledged: the parent keeps the run, and the next pull resumes it.
		return cut
	}
	ar, err := c.acknowledge(term, link, ack, ticket)
	if err != nil {
		if ack.Error != "" {
			return fmt.Errorf("apply run %s: %s; and acknowledge it: %w", ack.RunID, ack.Error, err)
		}
		return err
	}
	c.mu.Lock()
	c.state.LastRun, c.state.LastVerified = ack.RunID, ar.Verified
	if ar.Verified {
		c.runFailures = 0
	} else {
		c.runFailures++
	}
	c.updateHealth()
	c.mu.Unlock()
	c.saveState()
	c.afterRun(ack.header, ar.Verified)
	if ack.carried {
		select {
		case c.report <- struct{}{}:
		default:
		}
	}
	if ack.Error != "" {
		return errors.New(ack.Error)
	}
	if !ar.Verified {
		c.cfg.Logger.Warn("replica did not verify; the parent will send a complete run", "run", ack.RunID, "mismatches", ar.Mismatches)
	}
	return nil
}

// cutError is a run whose stream was cut after some chunks were staged: the next pull resumes
// it. progress says this stream staged at least one chunk.
type cutError struct {
	run            string
	staged, chunks int
	progress       bool
	err            error
}

func (e *cutError) Error() string {
	return fmt.Sprintf("run %s cut after %d of %d chunks (%v); the next pull resumes it", e.run, e.staged, e.chunks, e.err)
}

func (e *cutError) Unwrap() error { return e.err }

// dropPartial discards a cut run that cannot be resumed.
func (c *Child) dropPartial() {
	if c.partial == nil {
		return
	}
	if c.partial.stagedRows {
		if err := c.backend.AbortCatalog(stagedPrefix + c.partial.header.RunID); err != nil {
			c.cfg.Logger.Warn("drop a cut replication run", "run", c.partial.header.RunID, "error", err)
		}
	}
	c.partial = nil
}

// apply reads a run (zstd JSON lines), stages each chunk as one Raft entry and makes the run
// visible in one commit entry; it returns the acknowledgement to send. If the stream is cut
// after some chunks were staged, it keeps them and returns cut: the next pull resumes the run at
// the next chunk instead of starting over.
func (c *Child) apply(ctx context.Context, link *Link, body io.Reader, start time.Time) (ack Ack, cut error) {
	wire := &iocount.Reader{R: body}
	ack = Ack{Child: link.Child}
	dec, err := zstd.NewReader(wire, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderMaxWindow(maxRunWindow), zstd.WithDecoderConcurrency(1),
		RunDecoderDict())
	if err != nil {
		ack.Error = err.Error()
		return ack, nil
	}
	defer dec.Close()
	raw := &iocount.Reader{R: &lineCap{r: dec, limit: maxRunLineBytes}}
	jd := json.NewDecoder(raw)
	var h RunHeader
	if err := jd.Decode(&h); err != nil {
		ack.Error = fmt.Sprintf("read run header: %v", err)
		return ack, nil
	}
	ack.RunID, ack.header = h.RunID, h
	pr := c.partial
	staged := 0 // chunks this stream staged
	c.partial = nil
	if pr != nil && (pr.header.RunID != h.RunID || pr.next != h.FirstChunk) {
		c.partial = pr
		c.dropPartial() // the parent sent another run: the cut one is gone
		pr = nil
	}
	if pr == nil {
		if h.FirstChunk != 0 {
			ack.Error = fmt.Sprintf("the parent resumed run %s at chunk %d, which this child does not hold", h.RunID, h.FirstChunk)
			return ack, nil
		}
		pr = &partialRun{header: h, seenB: map[string]bool{}, seenU: map[string]bool{}, start: start,
			keep: map[string]bool{}, sentPolicies: map[string]bool{}, sentSettings: map[string]bool{}}
	} else {
		c.cfg.Logger.Info("resuming a cut replication run", "run", h.RunID, "from_chunk", pr.next, "chunks", h.Chunks)
	}
	runID := stagedPrefix + h.RunID
	carried := carriedStreams(&h)
	fail := func(format string, args ...any) (Ack, error) {
		if pr.stagedRows {
			if err := c.backend.AbortCatalog(runID); err != nil {
				c.cfg.Logger.Warn("drop staged replication run", "run", runID, "error", err)
			}
		}
		ack.Error = fmt.Sprintf(format, args...)
		ack.BytesWire, ack.BytesRaw = pr.wire+wire.N, pr.raw+raw.N
		return ack, nil
	}
	for pr.next < h.Chunks {
		var ch chunk
		if err := jd.Decode(&ch); err != nil {
			if pr.next > 0 && ctx.Err() == nil {
				pr.wire, pr.raw = pr.wire+wire.N, pr.raw+raw.N
				c.partial = pr
				return ack, &cutError{run: h.RunID, staged: pr.next, chunks: h.Chunks, progress: staged > 0, err: err}
			}
			return fail("read chunk %d of %d of run %s: %v", pr.next+1, h.Chunks, h.RunID, err)
		}
		// Deletions leave tombstones here too: a relay serves its own children differentially.
		ch.Replica, ch.Tombstones = true, true
		for _, st := range carried {
			st.collect(&h, pr, &ch)
		}
		if err := c.backend.StageCatalog(runID, &ch); err != nil {
			return fail("stage chunk %d of run %s: %v", pr.next+1, h.RunID, err)
		}
		pr.stagedRows = true
		pr.next++
		staged++
	}
	state := c.backend.State()
	for _, st := range carried {
		parts, err := st.drops(state, &h, pr, &ack)
		if err != nil {
			return fail("run %s: %v", h.RunID, err)
		}
		for _, part := range parts {
			if err := c.backend.StageCatalog(runID, part); err != nil {
				return fail("stage the %s deletions of run %s: %v", st.scope(), h.RunID, err)
			}
			pr.stagedRows = true
		}
	}
	now := time.Now().UTC()
	rec := &store.ImportRun{ID: runID, Source: link.URL, Kind: "replication", Feed: "parent", Mode: h.Mode, RootVersion: h.RootVersion,
		State: store.ImportSucceeded, StartedAt: pr.start.UTC(), FinishedAt: now}
	src := c.source()
	src.LastImport, src.LastRunID = now, runID
	for _, st := range carried {
		st.advance(&h, &src)
	}
	if _, err := c.backend.CommitCatalog(rec, &src); err != nil {
		return fail("commit run %s: %v", h.RunID, err)
	}
	ack.Applied = true
	ack.BytesWire, ack.BytesRaw = pr.wire+wire.N, pr.raw+raw.N
	ack.DurationMS = time.Since(pr.start).Milliseconds()
	for _, st := range carried {
		if err := st.replicaDigest(state, &h, pr, &ack); err != nil && ack.Error == "" {
			ack.Error = fmt.Sprintf("verify run %s: %v", h.RunID, err)
		}
	}
	c.cfg.Logger.Info("applied replication run", "run", h.RunID, "mode", h.Mode, "trigger", h.Trigger,
		"records", h.Records, "deletes", h.Deletes, "wire_bytes", ack.BytesWire, "raw_bytes", ack.BytesRaw)
	return ack, nil
}

// splitDeletes splits a deletion batch into parts of at most n ids.
func splitDeletes(b *store.CatalogBatch, n int) []*store.CatalogBatch {
	var out []*store.CatalogBatch
	ids := append(append([]string{}, b.DeleteBulletins...), b.DeleteUpdates...)
	nb := len(b.DeleteBulletins)
	for i := 0; i < len(ids); i += n {
		part := &store.CatalogBatch{Replica: true}
		for j := i; j < len(ids) && j < i+n; j++ {
			if j < nb {
				part.DeleteBulletins = append(part.DeleteBulletins, ids[j])
			} else {
				part.DeleteUpdates = append(part.DeleteUpdates, ids[j])
			}
		}
		out = append(out, part)
	}
	return out
}

// sample picks about pct percent of the replica's records for the record-by-record check.
func sample(v *store.CatalogView, pct float64) []SampleRecord {
	if pct <= 0 {
		return nil
	}
	var out []SampleRecord
	pick := func() bool { return rand.Float64()*100 < pct }
	v.EachUpdate(func(u *store.Update) bool {
		if pick() {
			h := UpdateHash(u)
			out = append(out, SampleRecord{Kind: "update", ID: u.ID, Hash: hex.EncodeToString(h[:])})
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		if pick() {
			h := BulletinHash(b, b.UpdateIDs)
			out = append(out, SampleRecord{Kind: "bulletin", ID: b.ID, Hash: hex.EncodeToString(h[:])})
		}
		return true
	})
	return out
}
