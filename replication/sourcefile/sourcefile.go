// Package sourcefile opens files named by an outside party (catalog feeds, CSAF provider
// documents) for reading without letting them block or stand in for something else: only a
// regular file is opened, checked before the open and again on the open file, and the open does
// not block, so a FIFO cannot stall it. Errors keep the cause, never the path an open used.
package sourcefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// NotRegularError means a name is a FIFO, device, socket or directory where a file is
// expected. Mode is what it is.
type NotRegularError struct {
	Mode fs.FileMode
}

// Kind names what the file is, for messages: "a directory", "a FIFO", "a device", "a socket".
func (e *NotRegularError) Kind() string {
	switch m := e.Mode; {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

func (e *NotRegularError) Error() string { return fmt.Sprintf("not a regular file (%s)", e.Kind()) }

// Open opens name for reading through stat and open (os.Stat and os.OpenFile, or an os.Root's
// Stat and OpenFile): stat refuses anything but a regular file before it is opened, the open
// does not block, and the open file is checked again (a FIFO swapped in between). A refusal is
// a *NotRegularError; other errors are PathCause of the failure. fi describes the open file.
func Open(stat func(string) (fs.FileInfo, error), open func(name string, flag int, perm fs.FileMode) (*os.File, error), name string) (f *os.File, fi fs.FileInfo, err error) {
	if fi, err = stat(name); err != nil {
		return nil, nil, PathCause(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &NotRegularError{Mode: fi.Mode()}
	}
	if f, err = open(name, os.O_RDONLY|openNonblock, 0); err != nil {
		return nil, nil, PathCause(err)
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat the open file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Mode: fi.Mode()}
	}
	return f, fi, nil
}

// PathCause is the cause of an *fs.PathError ("no such file or directory") without the path
// the open used, which may be relative to an allowed directory or name a file the caller must
// not reveal; other errors are returned as they are.
func PathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
