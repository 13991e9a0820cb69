package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"patchtree/replication/csaf"
	"patchtree/replication/sourcefile"
	"patchtree/store"
)

// importRun fetches, parses, plans, stages and commits one run. What it stages is published
// hidden from readers until the switch, so a failure at any point (a bad feed found late, a
// cancel, a failed entry) takes back what was staged and leaves the catalog as it was.
// On success it returns the committed record; the live run's state stays "running" until the
// caller publishes it.
func (im *Importer) importRun(ctx context.Context, r *run) (*store.ImportRun, error) {
	rec, err := im.importSteps(ctx, r)
	if err != nil {
		return nil, err
	}
	committed, err := im.backend.State().ImportRun(nil, rec.ID)
	if err != nil {
		return nil, err
	}
	if committed == nil {
		return nil, errors.New("committed import run is missing from the state")
	}
	return committed, nil
}

func (im *Importer) importSteps(ctx context.Context, r *run) (_ *store.ImportRun, err error) {
	state := im.backend.State()
	req := r.req
	langs, err := state.Languages(nil, store.LanguagesSite)
	if err != nil {
		return nil, err
	}
	var ranges []string
	if langs != nil {
		ranges = langs.Ranges
	}
	prev, err := state.Source(nil, req.Source)
	if err != nil {
		return nil, err
	}
	complete := req.Mode == "complete"
	kind := req.Kind
	if kind == "" {
		if kind, err = detectKind(req.Source); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.rec.Kind = kind
	r.mu.Unlock()

	// The source must keep sending: a run whose source is silent for the stall timeout ends.
	watch := newStallWatch(im.cfg.StallTimeout, req.Source, r.cancel)
	defer watch.stop()
	col := newCollector(ranges, &req)
	// st stages the plan's rows. A streamed import starts it before the parse; the others once
	// the plan is made. Until its finish, a failed run stops it and takes back what it staged.
	var (
		st   *stager
		view *store.CatalogView
	)
	stopStaging := func() {
		if st == nil || err == nil {
			return
		}
		staged, stageErr := st.stop()
		if stageErr != nil && errors.Is(err, errStagingStopped) {
			err = stageErr // the parse stopped because staging had failed: say why
		}
		im.abort(r.rec.ID, staged)
	}
	src := &store.SourceState{ID: req.Source, Kind: kind, LastImport: time.Now().UTC(), LastRunID: r.rec.ID}
	opts := planOptions{deleteExcluded: req.DeleteExcluded, disableSuperseded: req.DisableSuperseded}
	var warnings []string

	switch kind {
	case KindNative:
		var etag, lastMod string
		if prev != nil && !complete {
			etag, lastMod = prev.ETag, prev.LastModified
		}
		src.FilterKey = filterKey(ranges, &req)
		if prev != nil && !complete && prev.ContentHash != "" && prev.FilterKey == src.FilterKey && !isURL(req.Source) {
			sum, err := im.fileHash(ctx, req.Source, watch)
			if err != nil {
				return nil, err
			}
			if sum == prev.ContentHash {
				return im.finishUnchanged(r, prev, src)
			}
		}
		op, err := openNative(ctx, im.cfg.HTTPClient, im.allowFor(req.Source), req.Source, etag, lastMod)
		if err != nil {
			return nil, err
		}
		if op.notModified {
			return im.finishUnchanged(r, prev, src)
		}
		defer op.body.Close()
		r.total.Store(op.size)
		hasher := sha256.New()
		raw := ctxReader{ctx: ctx, r: io.TeeReader(stallReader{r: op.body, w: watch}, hasher)}
		plain, closeDec, err := decompress(countingReader{r: raw, n: &r.bytes}, im.cfg.MaxFeedBytes)
		if err != nil {
			return nil, err
		}
		defer closeDec()
		r.setPhase(PhaseParsing)
		if plain, err = requireObject(plain, req.Source); err != nil {
			return nil, err
		}
		if streamable(&req) {
			// Kept updates become rows, diffed and staged, while the feed is still being read.
			if view, err = state.CatalogView(nil); err != nil {
				return nil, err
			}
			// The parse may run two batches ahead of the one being staged: the parse and the
			// publish entries overlap without the parse holding more.
			st = newStager(2 * im.cfg.MaxBatchRows)
			// Waiting for its own staging is not the source stalling.
			st.rows.waiting = func(w bool) {
				if w {
					watch.pause()
				} else {
					watch.resume()
				}
			}
			col.streamUpdates(st.plan, view, st.emit)
			im.start(ctx, r, st)
			defer stopStaging()
		}
		hdr, err := ParseNative(plain, col, func() { r.records.Add(1) })
		if err != nil {
			return nil, err
		}
		src.Feed, src.ETag, src.LastModified = hdr.Feed, op.etag, op.lastModified
		src.ContentHash = hex.EncodeToString(hasher.Sum(nil))
		opts.removeMissing = true
	case KindCSAF:
		var fetch csaf.FetchFunc
		if isURL(req.Source) {
			fetch = httpFetch(im.cfg.HTTPClient, im.cfg.Allow, watch, req.Source)
		} else if fetch, err = im.cfg.Allow.dirFetch(req.Source, watch); err != nil {
			return nil, err
		}
		var since time.Time
		if prev != nil && !complete {
			since = prev.Since
		}
		delivered := map[string]bool{}
		r.setPhase(PhaseParsing)
		newest, err := csaf.Read(ctx, fetch, since, im.cfg.MaxDocBytes, func(path string, a *csaf.Advisory) error {
			delivered[a.Bulletin.ID] = true
			b := a.Bulletin
			if err := col.Bulletin(&b); err != nil {
				return err
			}
			for i := range a.Updates {
				if err := col.Update(&a.Updates[i]); err != nil {
					return err
				}
			}
			for _, w := range a.Warnings {
				warnings = append(warnings, path+": "+w)
			}
			r.records.Add(int64(1 + len(a.Updates)))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if newest.Before(since) {
			newest = since
		}
		src.Feed, src.Since = csafFeedName(req.Source), newest
		opts.removeMissing, opts.delivered = complete, delivered
	default:
		return nil, fmt.Errorf("unknown source kind %q", kind)
	}
	watch.stop() // the source has been read; what follows is local
	opts.feed = src.Feed
	r.mu.Lock()
	r.rec.Feed = src.Feed
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("import cancelled: %w", err)
	}

	r.setPhase(PhaseDiffing)
	streamed := st != nil
	if !streamed {
		if view, err = state.CatalogView(nil); err != nil {
			return nil, err
		}
		st = newStager(0) // the whole plan is queued, then staged: the parsed feed is freed first
		defer stopStaging()
	}
	if err := col.makePlan(st.plan, view, opts, st.emit); err != nil {
		return nil, err
	}
	col = nil // the parsed feed is no longer needed: the plan and the log hold what is written
	if !streamed {
		im.start(ctx, r, st)
	}
	r.setPhase(PhaseStaging)
	staged, err := st.finish()
	p := st.plan
	st = nil // finished: nothing left to stop
	if err != nil {
		im.abort(r.rec.ID, staged)
		return nil, err
	}
	p.result.Warnings = capWarnings(append(p.result.Warnings, warnings...), 100)
	result := p.result

	r.mu.Lock()
	rec := r.rec
	r.mu.Unlock()
	rec.Result, rec.State = result, store.ImportSucceeded
	if !staged {
		// Nothing changed: one small entry records the run.
		rec.State, rec.FinishedAt = store.ImportUnchanged, time.Now().UTC()
		r.setPhase(PhaseCommitting)
		if _, err := im.backend.CommitCatalog(&rec, src); err != nil {
			return nil, fmt.Errorf("commit import: %w", err)
		}
		return &rec, nil
	}
	r.setPhase(PhaseCommitting)
	if err := ctx.Err(); err != nil {
		im.abort(rec.ID, staged)
		return nil, fmt.Errorf("import cancelled before its switch: %w", err)
	}
	// The run finishes when its version becomes visible: the switch is one small entry.
	rec.FinishedAt = time.Now().UTC()
	if _, err := im.backend.SwitchCatalog(&rec, src); err != nil {
		im.abort(rec.ID, staged)
		return nil, fmt.Errorf("switch to the imported version: %w", err)
	}
	return &rec, nil
}

// publishInFlight is how many publish entries a run keeps in flight: encoding the next batch,
// the log's write and the FSM's apply of the one before overlap, and Raft writes entries that
// queue up together with one fsync. Other writes queue behind them: with three in flight a 500k
// import was visible in 34 s but small writes waited 0.53 s at p99; with two, 46 s and 0.27 s.
const publishInFlight = 2

// stageAll stages every batch of the plan and writes it into the version being published, one
// bounded entry per batch; readers keep seeing the published version until the switch. Batches
// are independent (no record is in two), so their order in the log does not matter. staged
// reports whether any entry may have reached the log.
func (im *Importer) stageAll(ctx context.Context, r *run, bt *batcher) (staged bool, err error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	slots := make(chan struct{}, publishInFlight)
	n := 0
	for b := bt.next(); b != nil && !failed(); b = bt.next() {
		if err := ctx.Err(); err != nil {
			fail(fmt.Errorf("import cancelled while staging: %w", err))
			break
		}
		slots <- struct{}{}
		n++
		staged = true
		wg.Add(1)
		go func(n int, b *store.CatalogBatch) {
			defer wg.Done()
			defer func() { <-slots }()
			if _, err := im.backend.PublishCatalog(r.rec.ID, b); err != nil {
				fail(fmt.Errorf("stage batch %d: %w", n, err))
				return
			}
			r.mu.Lock()
			r.batches++
			r.mu.Unlock()
		}(n, b)
	}
	wg.Wait()
	return staged, first
}

// finishUnchanged ends a run whose source is as last imported (HTTP 304 Not Modified, or the
// same bytes under the same filter): nothing was parsed, and every record of the feed counts as
// unchanged.
func (im *Importer) finishUnchanged(r *run, prev, src *store.SourceState) (*store.ImportRun, error) {
	src.Feed, src.ETag, src.LastModified, src.Since = prev.Feed, prev.ETag, prev.LastModified, prev.Since
	src.ContentHash, src.FilterKey = prev.ContentHash, prev.FilterKey
	r.mu.Lock()
	rec := r.rec
	r.mu.Unlock()
	rec.Feed, rec.State, rec.FinishedAt = prev.Feed, store.ImportUnchanged, time.Now().UTC()
	if view, err := im.backend.State().CatalogView(nil); err == nil {
		view.FeedBulletins(prev.Feed, func(*store.Bulletin) bool { rec.Result.Bulletins.Unchanged++; return true })
		view.FeedUpdates(prev.Feed, func(*store.Update) bool { rec.Result.Updates.Unchanged++; return true })
	}
	if _, err := im.backend.CommitCatalog(&rec, src); err != nil {
		return nil, fmt.Errorf("record unchanged import: %w", err)
	}
	return &rec, nil
}

// abort takes back what a failed run published and drops what it staged; if that fails too,
// the next leader term does it. It runs after the run's context ended (a cancel), so it stops
// only when leadership does (its writes then fail).
func (im *Importer) abort(runID string, staged bool) {
	if !staged {
		return
	}
	if err := im.dropStaged(context.Background(), runID); err != nil {
		im.logger.Warn("could not drop staged import changes; the next leader term will", "run", runID, "error", err)
	}
}

// filterKey hashes what decides which records a site keeps from a feed.
func filterKey(ranges []string, req *Request) string {
	buf, _ := json.Marshal([]any{ranges, req.IncludeVendors, req.ExcludeVendors, req.DeleteExcluded, req.DisableSuperseded})
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// fileHash is the SHA-256 of a file's bytes; the file is opened as a source is.
func (im *Importer) fileHash(ctx context.Context, path string, watch *stallWatch) (string, error) {
	f, err := im.allowFor(path).openAllowed(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	h := sha256.New()
	_, err = io.CopyBuffer(h, ctxReader{ctx: ctx, r: stallReader{r: f, w: watch}}, make([]byte, 1<<20))
	switch {
	case err != nil && errors.Is(err, ctx.Err()):
		return "", err
	case err != nil:
		return "", fmt.Errorf("source %q: read: %w", path, sourcefile.PathCause(err))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func capWarnings(w []string, max int) []string {
	if len(w) <= max {
		return w
	}
	return append(w[:max], fmt.Sprintf("... and %d more warnings", len(w)-max))
}
