package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"patchtree/replication/csaf"
	"patchtree/replication/sourcefile"
)

// Source kinds.
const (
	KindNative = "native"
	KindCSAF   = "csaf"
)

// maxZstdWindow bounds the window a zstd frame may declare: a frame asking for more is refused
// rather than allowed to allocate it.
const maxZstdWindow = 64 << 20

// isURL reports whether a source is an http(s) URL.
func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// detectKind decides whether a source is a native feed or a CSAF provider: a directory or a
// URL ending in "/" (or naming changes.csv) is a CSAF provider, anything else a native feed.
func detectKind(src string) (string, error) {
	if isURL(src) {
		if strings.HasSuffix(src, "/") || strings.HasSuffix(src, "/changes.csv") {
			return KindCSAF, nil
		}
		return KindNative, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("source %q: %w", src, sourcefile.PathCause(err))
	}
	if fi.IsDir() {
		return KindCSAF, nil
	}
	return KindNative, nil
}

// feedName names the feed a CSAF provider's records belong to.
func csafFeedName(src string) string {
	src = strings.TrimSuffix(strings.TrimSuffix(src, "/changes.csv"), "/")
	if isURL(src) {
		return "csaf:" + path.Base(src)
	}
	return "csaf:" + filepath.Base(filepath.Clean(src))
}

// opened is a native feed source ready to read.
type opened struct {
	body         io.ReadCloser
	size         int64 // raw size if known, else 0
	etag         string
	lastModified string
	notModified  bool
}

// openNative opens a file (a regular file inside the allow-list) or fetches a URL. For URLs,
// validators from the last import make the request conditional; a 304 is reported as
// notModified with no body. A file is closed when ctx ends, so a cancelled or stalled run does
// not stay blocked in a read.
func openNative(ctx context.Context, client *http.Client, allow *AllowList, src, etag, lastModified string) (*opened, error) {
	if !isURL(src) {
		f, err := allow.openAllowed(src)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("source %q: %w", src, sourcefile.PathCause(err))
		}
		context.AfterFunc(ctx, func() { f.Close() })
		return &opened{body: f, size: fi.Size()}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("feed URL %q: %w", src, err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	// Ask for the encoded bytes as they are; decompression is ours, so that it is capped.
	req.Header.Set("Accept-Encoding", "zstd, gzip")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		resp.Body.Close()
		return &opened{notModified: true, etag: etag, lastModified: lastModified}, nil
	case resp.StatusCode/100 != 2:
		// The body is not read: whatever the server says is not repeated to API readers.
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %w", src, httpStatusError(resp.StatusCode))
	}
	size := resp.ContentLength
	if size < 0 {
		size = 0
	}
	return &opened{body: resp.Body, size: size, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// ctxReader stops a read (and so a parse) once the import is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// countingReader counts bytes read from the source (before decompression) for progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ErrTooLarge is wrapped when a feed decompresses to more than the configured limit.
var ErrTooLarge = errors.New("feed exceeds the size limit")

// capReader fails, rather than truncating, once more than limit bytes have been read.
type capReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte proves the stream is longer than allowed.
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes after decompression", ErrTooLarge, c.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// decoderErrors names the compression in a decoder's read errors ("zstd feed: window size
// exceeded" rather than a bare "window size exceeded").
type decoderErrors struct {
	r    io.Reader
	name string
}

func (d decoderErrors) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s feed: %w", d.name, err)
	}
	return n, err
}

// decompress sniffs gzip and zstd by their magic bytes and returns a reader of the plain feed,
// capped at limit bytes. The closer releases decoder resources.
func decompress(r io.Reader, limit int64) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	var (
		plain io.Reader = br
		close           = func() {}
	)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip feed: %w", err)
		}
		plain, close = decoderErrors{zr, "gzip"}, func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd feed: %w", err)
		}
		plain, close = decoderErrors{zr, fmt.Sprintf("zstd (window limit %d MiB)", maxZstdWindow>>20)}, zr.Close
	}
	return &capReader{r: plain, left: limit, limit: limit}, close, nil
}

// ErrHTTPStatus is wrapped when a URL source answers with a status other than 2xx or 304.
var ErrHTTPStatus = errors.New("unexpected HTTP status")

// httpStatusError names a status by its code and standard text only.
func httpStatusError(code int) error {
	return fmt.Errorf("%w %d %s", ErrHTTPStatus, code, http.StatusText(code))
}

// ErrNotFeed is wrapped when a source is not JSON at all: the error says only that, never what
// the source starts with.
var ErrNotFeed = errors.New("not a patchtree feed or CSAF document")

// requireObject checks that the plain feed starts (after white space) with a JSON object, so
// that a file that is no feed fails with ErrNotFeed before any decoder error could quote it.
func requireObject(r io.Reader, src string) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 4<<10)
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%w: source %q is empty: %w", ErrBadFeed, src, ErrNotFeed)
			}
			return nil, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			br.UnreadByte()
			return br, nil
		}
		return nil, fmt.Errorf("%w: source %q: %w", ErrBadFeed, src, ErrNotFeed)
	}
}

// httpFetch is a csaf.FetchFunc over an HTTP(S) provider base URL. Every URL it builds is
// checked against the allow-list, and every read of a body re-arms the stall watch.
func httpFetch(client *http.Client, allow *AllowList, watch *stallWatch, base string) csaf.FetchFunc {
	base = strings.TrimSuffix(strings.TrimSuffix(base, "changes.csv"), "/")
	return func(ctx context.Context, p string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+p, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: not a valid URL path", p)
		}
		if allow != nil {
			if err := allow.CheckURL(req.URL); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		case resp.StatusCode/100 != 2:
			return nil, fmt.Errorf("%s: %w", p, httpStatusError(resp.StatusCode))
		}
		limit, ok := csaf.SizeLimit(ctx)
		if !ok {
			limit = csaf.DefaultMaxDocBytes
		}
		buf, err := io.ReadAll(io.LimitReader(stallReader{r: resp.Body, w: watch}, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%s: %w (limit %d bytes)", p, csaf.ErrTooLarge, limit)
		}
		return buf, nil
	}
}
