package node

import (
	"errors"
	"fmt"
	"os"
)

// ErrUnknownEntryType means a Raft entry has a type this version does not know and must not
// skip: the server is older than the leader that wrote it.
var ErrUnknownEntryType = errors.New("raft entry of a type this version of patchtree does not know")

// unknownType handles an entry whose type this binary does not know. With IgnoreUnknownTypeFlag
// it is skipped (logged and counted; the caller still records its index as applied). Without,
// skipping could leave existing state wrong, so the process stops with a message saying what to
// do instead of a panic trace.
func (f *FSM) unknownType(raw MessageType, idx uint64) any {
	t := uint8(raw &^ IgnoreUnknownTypeFlag)
	if raw&IgnoreUnknownTypeFlag != 0 {
		n := f.skipped.Add(1)
		f.logger.Error("skipped a raft entry of an ignorable type this version does not know; upgrade this server",
			"index", idx, "type", t, "skipped_total", n)
		return nil
	}
	err := fmt.Errorf("raft log %d: entry type %d: %w and may not skip; "+
		"this server is older than the leader that wrote it: upgrade it to the leader's version and start it again",
		idx, t, ErrUnknownEntryType)
	f.logger.Error("stopping: cannot apply the site's log", "err", err)
	f.stop(err)
	panic(err) // stop does not return; this only guards a replacement that does
}

// exitTooOld is FSM.stop in production. Raft applies entries on its own goroutine, and returning
// or panicking there would either diverge this replica or print a trace instead of the reason.
func exitTooOld(err error) {
	fmt.Fprintf(os.Stderr, "patchtree: %v\n", err)
	os.Exit(1)
}
