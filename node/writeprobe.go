package node

// A server that cannot write its data dir cannot append to its Raft log: it stops following the
// site while its replica looks current. The write probe writes and syncs a small file in the
// data dir every few seconds; while that fails the server is not ready (health, and every
// authenticated request, answer 503), so a load balancer moves readers elsewhere instead of
// serving a state frozen in the past.

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// writeProbeFile is the file the probe rewrites in the data dir.
const writeProbeFile = ".write-probe"

// writeProbeInterval is how often the probe writes; a failing disk is seen within about that.
const writeProbeInterval = 2 * time.Second

// writeProbe remembers whether the data dir took the last write.
type writeProbe struct {
	path   string
	logger *slog.Logger

	mu  sync.Mutex
	err error // the last write's error (nil: it succeeded)
}

func newWriteProbe(dataDir string, logger *slog.Logger) *writeProbe {
	return &writeProbe{path: filepath.Join(dataDir, writeProbeFile), logger: logger}
}

// run writes every interval until stop closes.
func (p *writeProbe) run(stop <-chan struct{}) {
	t := time.NewTicker(writeProbeInterval)
	defer t.Stop()
	for {
		p.check()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// check writes and syncs the probe file once and records the outcome, logging each change.
func (p *writeProbe) check() {
	err := writeSynced(p.path, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"))
	p.mu.Lock()
	was := p.err
	p.err = err
	p.mu.Unlock()
	switch {
	case err != nil && was == nil:
		p.logger.Error("cannot write the data dir: this server reports not ready until it can", "error", err)
	case err == nil && was != nil:
		p.logger.Info("the data dir takes writes again", "was", was.Error())
	}
}

// problem is why the data dir is not writable (nil: it is, as of the last check).
func (p *writeProbe) problem() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("cannot write the data dir: %w", p.err)
	}
	return nil
}

// writeSynced writes buf to path and syncs it to disk.
func writeSynced(path string, buf []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
