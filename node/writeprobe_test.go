package node

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteProbe: a data dir that refuses the probe's write makes the server not ready, with the
// cause; once it takes writes again, the server is ready again.
func TestWriteProbe(t *testing.T) {
	dir := t.TempDir()
	p := newWriteProbe(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.check()
	if err := p.problem(); err != nil {
		t.Fatalf("a writable data dir: %v", err)
	}
	// A directory where the probe's file goes: every write fails, as on a full or read-only disk.
	path := filepath.Join(dir, writeProbeFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	p.check()
	err := p.problem()
	var pe *os.PathError
	if err == nil || !errors.As(err, &pe) {
		t.Fatalf("an unwritable data dir: %v, want the write's error", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p.check()
	if err := p.problem(); err != nil {
		t.Fatalf("after the data dir takes writes again: %v", err)
	}
}
