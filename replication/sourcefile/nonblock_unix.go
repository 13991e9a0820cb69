//go:build unix

package sourcefile

import "syscall"

// openNonblock opens a source without blocking, so that opening a FIFO returns at once (and is
// then refused as not a regular file) instead of waiting for a writer.
const openNonblock = syscall.O_NONBLOCK
