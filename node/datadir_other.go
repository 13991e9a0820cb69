//go:build !unix

package node

import (
	"errors"
	"os"
)

// errLocked means another process holds the lock.
var errLocked = errors.New("locked by another process")

// lockFile does nothing where flock does not exist: the Raft store's own file lock remains.
func lockFile(f *os.File) error { return nil }
