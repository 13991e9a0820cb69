package importer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"patchtree/store"
)

// DefaultAllow is the allow-list when --import-allow is not given: the location of the default
// source (--catalog-source) only. A directory allows itself, a file its directory, a URL ending
// in "/" itself, and any other URL everything up to its last "/". No default source: nothing.
func DefaultAllow(source string) []string {
	switch {
	case source == "":
		return nil
	case isURL(source):
		if i := strings.LastIndexByte(source, '/'); i >= len("https://") {
			return []string{source[:i+1]}
		}
		return []string{source}
	}
	if fi, err := os.Stat(source); err == nil && fi.IsDir() {
		return []string{source}
	}
	return []string{filepath.Dir(source)}
}

// checkSource refuses, before a run starts, a source outside the allow-list and a local source
// that is a FIFO, device or socket. It says nothing about what is at a refused location.
func (im *Importer) checkSource(src string) error {
	if allow := im.allowFor(src); allow != nil {
		if err := allow.Check(src); err != nil {
			return err
		}
	}
	if isURL(src) {
		if im.cfg.Allow == nil {
			if _, err := parseSourceURL(src); err != nil {
				return fmt.Errorf("source %q: %w: %w", src, err, store.ErrInvalid)
			}
		}
		return nil
	}
	if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
		return regular(fi, src)
	}
	return nil
}

// checkedClient returns a copy of c whose redirects are checked against the allow-list, hop by
// hop, and bounded in number, so a source cannot send the importer somewhere it may not read.
func checkedClient(c *http.Client, allow *AllowList) *http.Client {
	cc := *c
	prev := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= DefaultMaxRedirects {
			return fmt.Errorf("stopped after %d redirects", DefaultMaxRedirects)
		}
		if allow != nil {
			if err := allow.CheckURL(req.URL); err != nil {
				return fmt.Errorf("redirect from %s refused: %w", redactURL(via[len(via)-1].URL), err)
			}
		}
		if prev != nil {
			return prev(req, via)
		}
		return nil
	}
	return &cc
}

// Cancel stops a running import: its context is cancelled (which also ends a read blocked on
// the source), what it staged is dropped, and it ends in state "cancelled" with the catalog
// unchanged. It waits up to cancelWait, or ctx, for the run to stop. An unknown id is
// store.ErrNotFound; a run that already finished, or finished before the cancel took effect,
// is store.ErrConflict.
func (im *Importer) Cancel(ctx context.Context, id string) (*Progress, error) {
	im.mu.Lock()
	r := im.runs[id]
	im.mu.Unlock()
	if r == nil {
		rec, err := im.backend.State().ImportRun(nil, id)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("import run %q: %w", id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("import run %q already finished (%s): %w", id, rec.State, store.ErrConflict)
	}
	select {
	case <-r.done:
		return nil, fmt.Errorf("import run %q already finished (%s): %w", id, r.progress().State, store.ErrConflict)
	default:
	}
	r.cancel(fmt.Errorf("import %s cancelled by an admin: %w", id, ErrCancelled))
	wait, stop := context.WithTimeout(ctx, cancelWait)
	defer stop()
	select {
	case <-r.done:
	case <-wait.Done():
		return r.progress(), nil // cancelled; it ends as soon as its current step returns
	}
	p := r.progress()
	if p.State != store.ImportCancelled {
		return nil, fmt.Errorf("import run %q finished (%s) before it could be cancelled: %w", id, p.State, store.ErrConflict)
	}
	return p, nil
}

// stallWatch ends a run whose source sends nothing for its timeout: every read that returns
// bytes re-arms it; when it fires, the run's context is cancelled with ErrStalled, which also
// aborts the read that is blocked.
type stallWatch struct {
	d       time.Duration
	t       *time.Timer
	stopped atomic.Bool
	paused  atomic.Bool
}

func newStallWatch(d time.Duration, src string, cancel context.CancelCauseFunc) *stallWatch {
	w := &stallWatch{d: d}
	w.t = time.AfterFunc(d, func() {
		cancel(fmt.Errorf("source %q sent nothing for %s (--import-stall-timeout): %w", src, d, ErrStalled))
	})
	return w
}

// touch re-arms the timer after progress.
func (w *stallWatch) touch() {
	if w != nil && !w.stopped.Load() && !w.paused.Load() {
		w.t.Reset(w.d)
	}
}

// pause disarms the watch while the run waits on itself (a streamed import's parse waiting for
// its staging to catch up), not on the source; resume re-arms it.
func (w *stallWatch) pause() {
	if w != nil {
		w.paused.Store(true)
		w.t.Stop()
	}
}

func (w *stallWatch) resume() {
	if w != nil {
		w.paused.Store(false)
		w.touch()
	}
}

// stop disarms the watch once the source has been read.
func (w *stallWatch) stop() {
	if w != nil {
		w.stopped.Store(true)
		w.t.Stop()
	}
}

// stallReader re-arms a stallWatch on every read that returns bytes.
type stallReader struct {
	r io.Reader
	w *stallWatch
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.w.touch()
	}
	return n, err
}
