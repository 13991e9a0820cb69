//go:build unix

package node

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockDataDirRefusesASecondOwner: a dir locked elsewhere is refused at once with the
// owner's pid; this process may lock its own dir again (serve, then node.New); the last release
// frees it.
func TestLockDataDirRefusesASecondOwner(t *testing.T) {
	dir := t.TempDir()
	// Another "process": its own open file description of the lock file, flocked.
	other, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	other.WriteString("4242\n")
	start := time.Now()
	_, err = LockDataDir(dir, nil)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "data dir "+dir+" in use by pid 4242") {
		t.Fatalf("LockDataDir of a held dir: %v; want \"data dir %s in use by pid 4242\"", err, dir)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v, want under 1s", d)
	}
	other.Close()

	l, err := LockDataDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LockDataDir(dir, nil)
	if err != nil || again != l {
		t.Fatalf("second lock in the same process: %v, %p vs %p", err, again, l)
	}
	b, _ := os.ReadFile(filepath.Join(dir, lockFileName))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want this pid %d", b, os.Getpid())
	}
	probe := func() error {
		f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	l.Release()
	if probe() == nil {
		t.Fatal("the lock was free while a reference was still held")
	}
	again.Release()
	if err := probe(); err != nil {
		t.Fatalf("the lock is still held after the last release: %v", err)
	}
}

// TestLockDataDirTightensMode: an existing dir open to group and others becomes 0700; a new one
// is created 0700.
func TestLockDataDirTightensMode(t *testing.T) {
	base := t.TempDir()
	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o755)
	fresh := filepath.Join(base, "fresh", "data")
	for _, dir := range []string{loose, fresh} {
		l, err := LockDataDir(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s has mode %#o, want 0700", dir, perm)
		}
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := LockDataDir(file, nil); err == nil {
		t.Error("a data dir that is a file was accepted")
	}
}

// TestReadSecretFile: the first line of a private file; files open to group or others, empty
// and oversized ones are refused.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	got, err := ReadSecretFile(write("ok", "  abc.def  \nignored\n", 0o600))
	if err != nil || got != "abc.def" {
		t.Fatalf("ReadSecretFile = %q, %v; want abc.def", got, err)
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"group", "abc.def\n", 0o640, "accessible by group or others"},
		{"world", "abc.def\n", 0o604, "accessible by group or others"},
		{"empty", "\n", 0o600, "holds no secret"},
		{"huge", strings.Repeat("x", maxSecretFileBytes+1), 0o600, "over 4096 bytes"},
	} {
		if _, err := ReadSecretFile(write(tc.name, tc.content, tc.mode)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
