package importer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"patchtree/store"
)

// ErrUploadTooLarge means an uploaded feed is larger than Config.MaxFeedBytes.
var ErrUploadTooLarge = errors.New("uploaded feed too large")

// uploadMu orders an upload taking its file name against the removal of the previous file of
// that name when its run ends (see Upload).
var uploadMu sync.Mutex

// Upload imports a native feed an administrator streams to the server (`patchtree catalog import
// --upload FILE`), so the file need not be on the leader's disk nor in --import-allow. The body
// is saved, synced, under Config.UploadDir as "upload-NAME" (name is the client's file name), and
// imported like a file source; the file is removed when the run ends. The source keeps its name
// across uploads, so an incremental upload of the same bytes under the same name is unchanged.
// The body may be plain, gzip or zstd, at most Config.MaxFeedBytes bytes; size is its length
// when the client said it (-1 otherwise), so that too large an upload is refused unread.
func (im *Importer) Upload(req Request, name string, size int64, body io.Reader) (*Progress, error) {
	if im.uploadAllow == nil {
		return nil, fmt.Errorf("this server takes no uploaded feeds (no usable upload directory): %w", store.ErrConflict)
	}
	if err := checkUploadName(name); err != nil {
		return nil, err
	}
	if size > im.cfg.MaxFeedBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d (--catalog-max-bytes)", ErrUploadTooLarge, size, im.cfg.MaxFeedBytes)
	}
	switch req.Kind {
	case "", KindNative:
		req.Kind = KindNative
	default:
		return nil, fmt.Errorf("an uploaded feed is a native feed file, not %q (a CSAF provider is a directory or URL): %w", req.Kind, store.ErrInvalid)
	}
	// Refuse before reading the body when the upload could not start.
	im.mu.Lock()
	busy, leader := im.active, im.leaderCtx != nil
	im.mu.Unlock()
	if !leader {
		return nil, ErrNotLeader
	}
	if busy != nil {
		return nil, fmt.Errorf("%w (%s); wait for it to finish: %w", ErrBusy, busy.rec.ID, store.ErrConflict)
	}
	if err := os.MkdirAll(im.cfg.UploadDir, 0o700); err != nil {
		return nil, fmt.Errorf("upload directory: %w", err)
	}
	tmp, err := saveUpload(im.cfg.UploadDir, body, im.cfg.MaxFeedBytes)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(im.cfg.UploadDir, "upload-"+name)
	uploadMu.Lock()
	defer uploadMu.Unlock()
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("keep the uploaded feed: %w", err)
	}
	saved, err := os.Stat(final)
	if err != nil {
		return nil, fmt.Errorf("keep the uploaded feed: %w", err)
	}
	req.Source = final
	p, err := im.Start(req)
	if err != nil {
		os.Remove(final)
		return nil, err
	}
	im.mu.Lock()
	r := im.runs[p.ID]
	im.mu.Unlock()
	if r != nil {
		go func() {
			<-r.done
			uploadMu.Lock()
			defer uploadMu.Unlock()
			// A later upload of the same name has a file of its own: leave that one.
			if now, err := os.Stat(final); err == nil && os.SameFile(now, saved) {
				if err := os.Remove(final); err != nil {
					im.logger.Warn("remove an uploaded feed", "file", final, "error", err)
				}
			}
		}()
	}
	return p, nil
}

// saveUpload writes body to a new file in dir and syncs it, refusing more than limit bytes.
func saveUpload(dir string, body io.Reader, limit int64) (string, error) {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return "", fmt.Errorf("save the uploaded feed: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: more than %d bytes (--catalog-max-bytes)", ErrUploadTooLarge, limit)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, ErrUploadTooLarge) {
			return "", err
		}
		return "", fmt.Errorf("save the uploaded feed: %w", err)
	}
	return f.Name(), nil
}

// checkUploadName accepts a plain file name: 1 to 128 printable characters, no path separator,
// not starting with a dot.
func checkUploadName(name string) error {
	bad := name == "" || len(name) > 128 || strings.HasPrefix(name, ".") ||
		strings.ContainsAny(name, `/\`) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0
	if bad {
		return fmt.Errorf("upload name %q: want the feed's file name (1 to 128 printable characters, no \"/\", not starting with \".\"): %w", name, store.ErrInvalid)
	}
	return nil
}

// allowFor is the allow-list src is read under: a feed Upload saved is read from the upload
// directory alone, whatever --import-allow says; any other source under Config.Allow.
func (im *Importer) allowFor(src string) *AllowList {
	if im.uploadAllow == nil || filepath.Dir(src) != filepath.Clean(im.cfg.UploadDir) || !strings.HasPrefix(filepath.Base(src), "upload-") {
		return im.cfg.Allow
	}
	return im.uploadAllow
}
