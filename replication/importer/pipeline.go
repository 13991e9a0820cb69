package importer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"patchtree/replication/csaf"
	"patchtree/store"
)

// importRun fetches, parses, plans, stages and commits one run. Nothing is written to Raft
// before the whole feed has been read and checked, so a bad feed leaves the state untouched;
// once staging starts, a failure drops what was staged.
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

func (im *Importer) importSteps(ctx context.Context, r *run) (*store.ImportRun, error) {
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

	col := newCollector(ranges, &req)
	src := &store.SourceState{ID: req.Source, Kind: kind, LastImport: time.Now().UTC(), LastRunID: r.rec.ID}
	opts := planOptions{deleteExcluded: req.DeleteExcluded, disableSuperseded: req.DisableSuperseded}
	var warnings []string

	switch kind {
	case KindNative:
		var etag, lastMod string
		if prev != nil && !complete {
			etag, lastMod = prev.ETag, prev.LastModified
		}
		op, err := openNative(ctx, im.cfg.HTTPClient, req.Source, etag, lastMod)
		if err != nil {
			return nil, err
		}
		if op.notModified {
			return im.finishUnchanged(r, prev, src)
		}
		defer op.body.Close()
		r.total.Store(op.size)
		plain, closeDec, err := decompress(countingReader{r: op.body, n: &r.bytes}, im.cfg.MaxFeedBytes)
		if err != nil {
			return nil, err
		}
		defer closeDec()
		r.setPhase(PhaseParsing)
		hdr, err := ParseNative(plain, col, func() { r.records.Add(1) })
		if err != nil {
			return nil, err
		}
		src.Feed, src.ETag, src.LastModified = hdr.Feed, op.etag, op.lastModified
		opts.removeMissing = true
	case KindCSAF:
		fetch := csaf.DirFetch(req.Source)
		if isURL(req.Source) {
			fetch = httpFetch(im.cfg.HTTPClient, req.Source)
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
			col.Bulletin(&b)
			for i := range a.Updates {
				col.Update(&a.Updates[i])
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
	opts.feed = src.Feed
	r.mu.Lock()
	r.rec.Feed = src.Feed
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("import cancelled: %w", err)
	}

	r.setPhase(PhaseDiffing)
	view, err := state.CatalogView(nil)
	if err != nil {
		return nil, err
	}
	p, err := col.makePlan(view, opts)
	if err != nil {
		return nil, err
	}
	p.result.Warnings = capWarnings(append(p.result.Warnings, warnings...), 100)

	r.setPhase(PhaseStaging)
	staged := false
	for _, b := range p.batches(im.cfg.MaxBatchBytes) {
		if err := ctx.Err(); err != nil {
			im.abort(r.rec.ID, staged)
			return nil, fmt.Errorf("import cancelled while staging: %w", err)
		}
		if err := im.backend.StageCatalog(r.rec.ID, b); err != nil {
			im.abort(r.rec.ID, staged)
			return nil, fmt.Errorf("stage batch %d: %w", r.batches+1, err)
		}
		staged = true
		r.mu.Lock()
		r.batches++
		r.mu.Unlock()
	}

	r.setPhase(PhaseCommitting)
	r.mu.Lock()
	rec := r.rec
	r.mu.Unlock()
	rec.Result, rec.State, rec.FinishedAt = p.result, store.ImportSucceeded, time.Now().UTC()
	if !staged {
		rec.State = store.ImportUnchanged
	}
	if _, err := im.backend.CommitCatalog(&rec, src); err != nil {
		im.abort(rec.ID, staged)
		return nil, fmt.Errorf("commit import: %w", err)
	}
	return &rec, nil
}

// finishUnchanged ends a run whose source answered 304 Not Modified: nothing was parsed.
func (im *Importer) finishUnchanged(r *run, prev, src *store.SourceState) (*store.ImportRun, error) {
	src.Feed, src.ETag, src.LastModified, src.Since = prev.Feed, prev.ETag, prev.LastModified, prev.Since
	r.mu.Lock()
	rec := r.rec
	r.mu.Unlock()
	rec.Feed, rec.State, rec.FinishedAt = prev.Feed, store.ImportUnchanged, time.Now().UTC()
	if _, err := im.backend.CommitCatalog(&rec, src); err != nil {
		return nil, fmt.Errorf("record unchanged import: %w", err)
	}
	return &rec, nil
}

// abort drops what a failed run staged; if that fails too, the next leader term drops it.
func (im *Importer) abort(runID string, staged bool) {
	if !staged {
		return
	}
	if err := im.backend.AbortCatalog(runID); err != nil {
		im.logger.Warn("could not drop staged import changes; the next leader term will", "run", runID, "error", err)
	}
}

func capWarnings(w []string, max int) []string {
	if len(w) <= max {
		return w
	}
	return append(w[:max], fmt.Sprintf("... and %d more warnings", len(w)-max))
}
