//go:build unix

package importer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"patchtree/store"
)

// TestImportFIFORefused: a FIFO inside an allowed directory is refused at Start (and by the
// open itself, which does not block), for a native feed and inside a CSAF provider.
func TestImportFIFORefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "feed.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	f := newFakeBackend(t, "*")
	im := allowedImporter(t, f, Config{}, dir)
	if _, err := im.Start(Request{Source: fifo}); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("Start of a FIFO: %v, want ErrNotRegular", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := im.cfg.Allow.openAllowed(fifo)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("openAllowed of a FIFO: %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}

	// A CSAF provider whose changes.csv is a FIFO fails without blocking.
	prov := filepath.Join(dir, "provider")
	if err := os.Mkdir(prov, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(prov, "changes.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runImport(t, im, Request{Source: prov})
	if p.State != store.ImportFailed || !strings.Contains(p.Error, "not a regular file") {
		t.Fatalf("CSAF provider with a FIFO: state %s error %q", p.State, p.Error)
	}
}

// An allowed directory reached through a link that also lies inside another allowed directory
// (a checkout's ../shared linked elsewhere, with the temp dir allowed too) opens, whichever of
// the two the list names first; a link out of every allowed directory is still refused.
func TestAllowedDirBehindLinkInsideAnother(t *testing.T) {
	base := t.TempDir()
	realData := filepath.Join(base, "real", "data")
	if err := os.MkdirAll(realData, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(realData, "feed.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(base, "top")
	if err := os.MkdirAll(top, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "real"), filepath.Join(top, "shared")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(top, "shared", "data", "feed.json")
	for _, order := range [][]string{{top, filepath.Join(top, "shared", "data")}, {filepath.Join(top, "shared", "data"), top}} {
		a, err := ParseAllowList(order)
		if err != nil {
			t.Fatal(err)
		}
		f, err := a.openAllowed(src)
		if err != nil {
			t.Fatalf("allow %v: open %s: %v", order, src, err)
		}
		f.Close()
	}
	only, err := ParseAllowList([]string{top})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := only.openAllowed(src); err == nil {
		f.Close()
		t.Fatalf("allow %s: %s opened through a link out of it", top, src)
	}
}
