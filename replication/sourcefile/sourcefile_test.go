//go:build unix

package sourcefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenOnlyRegularFilesWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "feed.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, fi, err := Open(os.Stat, os.OpenFile, file)
	if err != nil || fi.Size() != 2 {
		t.Fatalf("Open of a regular file: %v, %v", fi, err)
	}
	f.Close()

	for name, kind := range map[string]string{fifo: "a FIFO", dir: "a directory"} {
		done := make(chan error, 1)
		go func() { _, _, err := Open(os.Stat, os.OpenFile, name); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || nr.Kind() != kind {
				t.Errorf("Open(%s): %v, want a NotRegularError of %s", name, err, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) blocked", name)
		}
	}

	_, _, err = Open(os.Stat, os.OpenFile, filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), dir) {
		t.Errorf("Open of a missing file: %v, want its cause without the path", err)
	}
}
