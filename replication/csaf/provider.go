package csaf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"patchtree/replication/sourcefile"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Size limits applied by Read.
const (
	// DefaultMaxDocBytes caps a document when Read is given maxDocBytes <= 0.
	DefaultMaxDocBytes = 32 << 20
	// MaxChangesBytes caps changes.csv.
	MaxChangesBytes = 64 << 20
	// MaxHashFileBytes caps a .sha512 or .sha256 file.
	MaxHashFileBytes = 64 << 10
)

// ErrTooLarge is wrapped by the error for a fetched file larger than its limit.
var ErrTooLarge = errors.New("file exceeds size limit")

// FetchFunc reads one file of the provider by its path relative to the provider root (a clean,
// slash-separated path such as "2017/icsa-17-010-01a.json"). It returns an error wrapping
// fs.ErrNotExist when the file is absent. It should honour SizeLimit(ctx) when set; Read also
// checks the size of what it returns.
type FetchFunc func(ctx context.Context, path string) ([]byte, error)

type sizeLimitKey struct{}

// SizeLimit returns the largest file, in bytes, that the caller of a FetchFunc accepts, so that
// a FetchFunc can stop reading early; ok is false when no limit is set.
func SizeLimit(ctx context.Context) (limit int64, ok bool) {
	limit, ok = ctx.Value(sizeLimitKey{}).(int64)
	return limit, ok
}

// fetchLimited fetches p, telling fetch the limit and enforcing it.
func fetchLimited(ctx context.Context, fetch FetchFunc, p string, limit int64) ([]byte, error) {
	data, err := fetch(context.WithValue(ctx, sizeLimitKey{}, limit), p)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", p, ErrTooLarge, limit)
	}
	return data, nil
}

// DirFetch returns a FetchFunc over a local directory. It refuses paths that are not clean
// relative paths and, through os.Root, any path or symbolic link that escapes root.
func DirFetch(root string) FetchFunc {
	return RootFetch(func() (*os.Root, error) { return os.OpenRoot(root) })
}

// RootFetch returns a FetchFunc over the directory that open returns (called once per fetch),
// with DirFetch's checks. Only regular files are read: a FIFO, device, socket or directory is
// refused before it is opened, the open does not block, and the open file is checked again.
// Errors name the path and the check, never a file's size or content.
func RootFetch(open func() (*os.Root, error)) FetchFunc {
	return func(ctx context.Context, p string) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !fs.ValidPath(p) || p == "." || strings.ContainsRune(p, '\\') {
			return nil, fmt.Errorf("%s: invalid provider path", p)
		}
		r, err := open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		f, st, err := sourcefile.Open(r.Stat, r.OpenFile, p)
		var nr *sourcefile.NotRegularError
		switch {
		case errors.As(err, &nr):
			return nil, fmt.Errorf("%s: not a regular file", p)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		limit, ok := SizeLimit(ctx)
		if !ok {
			limit = DefaultMaxDocBytes
		}
		if st.Size() > limit {
			return nil, fmt.Errorf("%s: %w (limit %d bytes)", p, ErrTooLarge, limit)
		}
		data, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err == nil && int64(len(data)) > limit {
			err = fmt.Errorf("%s: %w (limit %d bytes)", p, ErrTooLarge, limit)
		}
		return data, err
	}
}

// DocError is the error Read returns for one document of the provider.
type DocError struct {
	Path string
	Err  error
}

// Error names the document once: "csaf: document <path>: <cause>".
func (e *DocError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "csaf: ")
	if strings.HasPrefix(msg, "document "+e.Path+": ") {
		return "csaf: " + msg
	}
	msg = strings.TrimPrefix(msg, e.Path+": ")
	return "csaf: document " + e.Path + ": " + msg
}

// Unwrap returns the cause.
func (e *DocError) Unwrap() error { return e.Err }

// Read walks a provider. It fetches changes.csv, selects the entries whose timestamp is
// strictly after since (the zero time selects all), and processes them oldest first (ties by
// path), so that a later revision wins: for each it fetches the document (at most maxDocBytes;
// <= 0 means DefaultMaxDocBytes) and its .sha512 file, else its .sha256 file (neither is an
// error, verification being mandatory), verifies it, parses it and calls fn. A document whose
// file name differs from the one CSAF derives from its tracking id gets a warning.
//
// Read stops at the first error, which is a *DocError naming the document for a per-document
// failure. It returns the watermark to pass as the next since: the newest timestamp up to which
// every selected entry was processed (since itself if none was). After an error this excludes
// the failed entry and any entry sharing its timestamp, so a retry does not skip them.
func Read(ctx context.Context, fetch FetchFunc, since time.Time, maxDocBytes int64, fn func(path string, a *Advisory) error) (newest time.Time, err error) {
	if maxDocBytes <= 0 {
		maxDocBytes = DefaultMaxDocBytes
	}
	raw, err := fetchLimited(ctx, fetch, "changes.csv", MaxChangesBytes)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "changes.csv: ") {
			err = fmt.Errorf("changes.csv: %w", err)
		}
		return since, fmt.Errorf("csaf: %w", err)
	}
	entries, err := ParseChanges(bytes.NewReader(raw))
	if err != nil {
		return since, err
	}
	entries = slices.DeleteFunc(entries, func(e Entry) bool { return !e.Timestamp.After(since) })
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	newest = since
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return newest, err
		}
		a, err := readDoc(ctx, fetch, e.Path, maxDocBytes)
		if err == nil {
			err = fn(e.Path, a)
		}
		if err != nil {
			return newest, &DocError{Path: e.Path, Err: err}
		}
		if i == len(entries)-1 || entries[i+1].Timestamp.After(e.Timestamp) {
			newest = e.Timestamp
		}
	}
	return newest, nil
}

// readDoc fetches, verifies and parses one document.
func readDoc(ctx context.Context, fetch FetchFunc, p string, maxDocBytes int64) (*Advisory, error) {
	data, err := fetchLimited(ctx, fetch, p, maxDocBytes)
	if err != nil {
		return nil, err
	}
	var algo string
	var sum []byte
	for _, algo = range []string{"sha512", "sha256"} {
		sum, err = fetchLimited(ctx, fetch, p+"."+algo, MaxHashFileBytes)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no .sha512 or .sha256 hash file beside it (verification is required)")
	}
	if err != nil {
		return nil, err
	}
	if err := VerifyHash(p, data, sum, algo); err != nil {
		return nil, err
	}
	a, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if want := FileName(a.Bulletin.ID); pathBase(p) != want {
		a.warnf("file name %q differs from %q derived from the tracking id", pathBase(p), want)
	}
	return a, nil
}

func pathBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

var notFileChars = regexp.MustCompile(`[^+\-a-z0-9]+`)

// FileName is the file name CSAF 2.0 (§5.1) derives from a tracking id: the id in lower case,
// each run of characters other than [+\-a-z0-9] replaced by "_", plus ".json".
func FileName(trackingID string) string {
	return notFileChars.ReplaceAllString(strings.ToLower(trackingID), "_") + ".json"
}
