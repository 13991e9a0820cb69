package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/backup"
	"patchtree/store"
)

// restoreTimeout bounds how long a restore waits to be taken up by Raft and for the followers
// to install it (raft.Restore waits for a no-op entry after the snapshot).
const restoreTimeout = 5 * time.Minute

// restoreIndexGap is how far above the last log index a restored snapshot is installed: more
// than the entries the leader can append between reading its last index and taking up the
// restore (a batch of raft's MaxAppendEntries per loop iteration).
const restoreIndexGap = 1 << 16

// ErrSnapshotOtherSite means a backup holds another site's state and the restore was not forced.
var ErrSnapshotOtherSite = errors.New("the snapshot is of another site")

// SnapshotRestored is the outcome of a restore.
type SnapshotRestored struct {
	Backup *backup.Info `json:"backup"`
	// Index is the Raft index the restored state was installed at (above every index before).
	Index uint64 `json:"index"`
	// Forced is true when the backup named another site and the caller forced the restore.
	Forced bool `json:"forced"`
}

// RestoreSnapshot replaces the whole state of the site with the backup read from body, through
// Raft: the upload is spooled to the data dir, its checksum, format and every row are verified
// and its site identity is checked before anything changes; then raft.Restore installs it as a
// snapshot on this leader and the followers. Rows the backup does not hold are gone (never a
// merge). A backup whose site name or role differs from this site's is refused with
// ErrSnapshotOtherSite unless force is set. Errors about the bytes wrap backup.ErrInvalid.
//
// The caller writes its audit entry after this returns, into the restored state.
func (n *Node) RestoreSnapshot(body io.Reader, force bool) (*SnapshotRestored, error) {
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	spool, err := os.CreateTemp(n.cfg.DataDir, ".snapshot-restore-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("spool snapshot: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	info, err := backup.Verify(io.TeeReader(body, spool))
	if err != nil {
		return nil, err
	}
	if _, err := backup.Decode(spool, info); err != nil {
		return nil, err
	}
	forced, err := n.checkSnapshotSite(&info.Header, force)
	if err != nil {
		return nil, err
	}
	// raft.Restore installs the snapshot at one past the larger of meta.Index and its last log
	// index. Choosing meta.Index well above the last index makes that index known in advance,
	// so the snapshot can carry it as the FSM's applied index (the frame every snapshot of this
	// FSM starts with): the leader, the followers that install it and a server that restarts
	// from it all agree that the state is applied through it.
	target := max(n.raft.LastIndex(), info.Header.Index) + restoreIndexGap
	frame := appliedFrame(target + 1)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: target, Size: int64(len(frame)) + info.PayloadSize}
	payload := io.MultiReader(bytes.NewReader(frame), backup.Payload(spool, info))
	if err := n.raft.Restore(meta, payload, restoreTimeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, fmt.Errorf("restore snapshot: %w (%v)", ErrNotLeader, err)
		}
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	installed := target + 1
	n.logger.Warn("replaced the site's state with a snapshot",
		"site", info.Header.SiteName, "snapshot_index", info.Header.Index, "rows", info.Header.Rows(),
		"sha256", info.SHA256, "forced", forced)
	// The restored servers table is the backup's: record this leader's addresses now and let
	// the followers re-register theirs (registerSelf).
	if err := n.reconcile(); err != nil {
		n.logger.Warn("reconcile servers after restore", "error", err)
	}
	return &SnapshotRestored{Backup: info, Index: installed, Forced: forced}, nil
}

// checkSnapshotSite compares the backup's site with this one. The same name and role is this
// site (its id may differ when the site was rebuilt from an empty data dir); anything else needs
// force. It reports whether force was needed.
func (n *Node) checkSnapshotSite(h *backup.Header, force bool) (bool, error) {
	site, err := n.State().Site(nil)
	if err != nil {
		return false, err
	}
	name, role := n.cfg.Name, n.cfg.Role
	if site != nil {
		name, role = site.Name, site.Role
	}
	if h.SiteName == name && h.SiteRole == role {
		return false, nil
	}
	if !force {
		return false, fmt.Errorf("%w: it holds site %q (role %q, id %q), this is site %q (role %q); restore with force to replace this site's identity too: %w",
			ErrSnapshotOtherSite, h.SiteName, h.SiteRole, h.SiteID, name, role, store.ErrConflict)
	}
	return true, nil
}

// DefaultMaxSnapshotBytes is the default bound of an uploaded backup (Config.MaxSnapshotBytes).
const DefaultMaxSnapshotBytes int64 = 4 << 30

// MaxSnapshotBytes returns the largest backup PUT /v1/snapshot accepts.
func (n *Node) MaxSnapshotBytes() int64 {
	if n.cfg.MaxSnapshotBytes > 0 {
		return n.cfg.MaxSnapshotBytes
	}
	return DefaultMaxSnapshotBytes
}

// applySnapshotConfig sets the configured Raft snapshot settings, leaving the defaults for the
// ones not set.
func (n *Node) applySnapshotConfig(conf *raft.Config) {
	if n.cfg.SnapshotThreshold > 0 {
		conf.SnapshotThreshold = n.cfg.SnapshotThreshold
	}
	if n.cfg.SnapshotInterval > 0 {
		conf.SnapshotInterval = n.cfg.SnapshotInterval
	}
	if n.cfg.TrailingLogs > 0 {
		conf.TrailingLogs = n.cfg.TrailingLogs
	}
}

// appliedFrame is the applied-index frame that leads a snapshot of the FSM (fsm.go).
func appliedFrame(applied uint64) []byte {
	frame := make([]byte, 8+appliedFrameSize)
	binary.LittleEndian.PutUint32(frame, appliedFrameMagic)
	binary.LittleEndian.PutUint32(frame[4:], appliedFrameSize)
	binary.LittleEndian.PutUint64(frame[8:], applied)
	return frame
}
