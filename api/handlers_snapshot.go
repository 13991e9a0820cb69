package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"patchtree/backup"
	"patchtree/node"
)

// snapshotTransferDeadline bounds writing a backup (GET) or reading one (PUT): a 4 GiB backup
// at about 7 MB/s.
const snapshotTransferDeadline = 10 * time.Minute

// snapshotRestorer is what PUT /v1/snapshot needs of the backend beyond Backend (node.Node
// implements it; a backend without it cannot restore).
type snapshotRestorer interface {
	RestoreSnapshot(body io.Reader, force bool) (*node.SnapshotRestored, error)
	MaxSnapshotBytes() int64
}

// snapshotSaved is the audit detail of a backup download.
type snapshotSaved struct {
	Index uint64 `json:"raft_index"`
	Bytes int64  `json:"bytes"`
	Rows  int    `json:"rows"`
}

// getSnapshot streams a backup of the site's state: one consistent read of the store, taken
// before the first byte is written. A failure after that cuts the stream before its checksum
// trailer, so the client's file is detectably incomplete. The download is audited: the backup
// holds every token's hash.
func (s *Server) getSnapshot(r *http.Request) (int, any, error) {
	snap := s.backend.State().Snapshot()
	markAudited(r)
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(snapshotTransferDeadline)); err != nil {
			s.logger.Warn("snapshot download keeps the server's write timeout", "error", err)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="patchtree.snap"`)
		w.WriteHeader(http.StatusOK)
		hdr, size, err := backup.Write(w, snap, time.Now())
		if err != nil {
			s.logger.Warn("snapshot download failed; the client has no trailer", "bytes", size, "error", err)
			return
		}
		detail := snapshotSaved{Index: hdr.Index, Bytes: size, Rows: hdr.Rows()}
		if err := s.backend.Audit(actor(r), "snapshot.save", "", detail); err != nil {
			s.logger.Warn("audit log write failed", "action", "snapshot.save", "error", err)
		}
	}), nil
}

// putSnapshot replaces the whole state of the site with an uploaded backup (?force=true to take
// another site's identity too). The restore runs while the body is read, so it writes its answer
// itself; the audit entry is written after the restore, into the restored state.
func (s *Server) putSnapshot(r *http.Request) (int, any, error) {
	restorer, ok := s.backend.(snapshotRestorer)
	if !ok {
		return 0, nil, fmt.Errorf("%w: this server cannot restore snapshots", ErrBadRequest)
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			return 0, nil, fmt.Errorf("%w: force must be true or false, not %q", ErrBadRequest, v)
		}
	}
	limit := restorer.MaxSnapshotBytes()
	if r.ContentLength > limit {
		return 0, nil, fmt.Errorf("%w: %d bytes, the snapshot limit is %d (--max-snapshot-bytes)", ErrTooLarge, r.ContentLength, limit)
	}
	markAudited(r)
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(snapshotTransferDeadline)); err != nil {
			s.logger.Warn("snapshot upload keeps the server's read timeout", "error", err)
		}
		body := http.MaxBytesReader(w, r.Body, limit)
		out, err := restorer.RestoreSnapshot(body, force)
		if err != nil {
			writeError(w, restoreError(err, limit))
			return
		}
		h := out.Backup.Header
		detail := map[string]any{"site": h.SiteName, "site_id": h.SiteID, "snapshot_index": h.Index,
			"created_at": h.CreatedAt, "rows": h.Rows(), "sha256": out.Backup.SHA256, "forced": out.Forced}
		if err := s.backend.Audit(actor(r), "snapshot.restore", "", detail); err != nil {
			s.logger.Warn("audit log write failed", "action", "snapshot.restore", "error", err)
		}
		writeJSON(w, http.StatusOK, out)
	}), nil
}

// restoreError maps a restore failure: bad bytes are the client's (400), an upload over the
// limit is 413, the rest keeps its own mapping.
func restoreError(err error, limit int64) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: the snapshot limit is %d bytes (--max-snapshot-bytes)", ErrTooLarge, limit)
	case errors.Is(err, backup.ErrInvalid):
		return fmt.Errorf("%w: %w; nothing was changed", ErrBadRequest, err)
	}
	return err
}
