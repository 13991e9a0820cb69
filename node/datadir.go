package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrDataDirInUse means another process holds the data dir's lock. Its text reads as part of
// "data dir DIR in use by pid N".
var ErrDataDirInUse = errors.New("in use")

// ErrSecretFileMode means a secret file can be read or written by group or others.
var ErrSecretFileMode = errors.New("is accessible by group or others")

const (
	// lockFileName is the lock file in the data dir; it holds the owner's pid.
	lockFileName = "LOCK"
	// dataDirMode is the mode of a data dir: the server's user only.
	dataDirMode = 0o700
	// lockPIDWait bounds how long a refused process waits for the owner to write its pid (it
	// writes it right after taking the lock), so the refusal comes well within a second.
	lockPIDWait = 300 * time.Millisecond
	// maxSecretFileBytes bounds a --token-file or --join-token-file.
	maxSecretFileBytes = 4096
)

// DataDirLock is the exclusive lock of one data dir (flock on <data-dir>/LOCK). The lock is
// held per process: LockDataDir of a dir this process already holds returns the same lock with
// one more reference, so `serve` can lock the dir first and node.New lock it again.
type DataDirLock struct {
	dir  string
	f    *os.File
	refs int
}

var (
	heldMu sync.Mutex
	held   = map[string]*DataDirLock{}
)

// LockDataDir creates dir if needed, tightens a dir accessible by group or others to 0700
// (logging it), and takes its exclusive lock, writing this process's pid in the lock file. A dir
// locked by another process fails at once with ErrDataDirInUse and the owner's pid.
func LockDataDir(dir string, logger *slog.Logger) (*DataDirLock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if l := held[abs]; l != nil {
		l.refs++
		return l, nil
	}
	if err := prepareDataDir(dir, logger); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data dir %s %w by pid %s", dir, ErrDataDirInUse, lockOwner(path))
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	l := &DataDirLock{dir: abs, f: f, refs: 1}
	held[abs] = l
	return l, nil
}

// Release drops one reference; the last one unlocks the dir. The pid stays in the file (a
// removed lock file could let two processes lock two different files).
func (l *DataDirLock) Release() error {
	if l == nil {
		return nil
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if l.refs--; l.refs > 0 {
		return nil
	}
	delete(held, l.dir)
	return l.f.Close() // closing the last descriptor releases the flock
}

// prepareDataDir creates dir with mode 0700, or tightens an existing one to it.
func prepareDataDir(dir string, logger *slog.Logger) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, dataDirMode); err != nil {
			return fmt.Errorf("tighten data dir %s from %#o to %#o: %w", dir, perm, dataDirMode, err)
		}
		if logger != nil {
			logger.Warn("data dir was accessible by group or others; tightened", "dir", dir, "from", fmt.Sprintf("%#o", perm), "to", fmt.Sprintf("%#o", dataDirMode))
		}
	}
	return nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// lockOwner reads the pid in a held lock file, waiting briefly for an owner that has just taken
// the lock to write it.
func lockOwner(path string) string {
	deadline := time.Now().Add(lockPIDWait)
	for {
		b, err := os.ReadFile(path)
		if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
			if _, err := strconv.Atoi(pid); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			return "unknown"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadSecretFile reads a secret (a token) from a file: its first line, trimmed. The file must not
// be accessible by group or others (like ssh's private keys), must hold a non-empty secret and be
// at most maxSecretFileBytes.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s (mode %#o) %w; chmod 600 it", path, perm, ErrSecretFileMode)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s is over %d bytes; it should hold one token", path, maxSecretFileBytes)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	secret := strings.TrimSpace(line)
	if secret == "" {
		return "", fmt.Errorf("%s holds no secret on its first line", path)
	}
	return secret, nil
}
