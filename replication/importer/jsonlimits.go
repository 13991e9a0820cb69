package importer

import (
	"bytes"
	"fmt"
	"io"
)

// Limits on the JSON of a native feed, checked on the bytes as they stream in, before
// encoding/json buffers them: the decoder reads a whole token (Token) or a whole record (Decode)
// into memory, so without them a small compressed feed holding one huge string or record costs
// gigabytes. Each limit is far above what a real feed needs (see docs/security.md).
const (
	// MaxFeedTokenBytes bounds one JSON string or number, quotes included. The longest text of a
	// real feed is a bulletin's description, a few KB.
	MaxFeedTokenBytes = 1 << 20
	// MaxFeedRecordBytes bounds one bulletin or update (one element of the feed's arrays): a
	// bulletin naming 100,000 updates is about 3 MB.
	MaxFeedRecordBytes = 16 << 20
	// MaxFeedDepth bounds the nesting of objects and arrays. A native feed nests four deep
	// (feed, array, record, list of ids).
	MaxFeedDepth = 32
	// MaxFeedObjectKeys bounds the keys of one object, known or not: a record has about fifteen.
	MaxFeedObjectKeys = 1024
	// MaxFeedUnknownFields bounds the top-level fields the parser does not know; each is skipped
	// token by token, never held whole.
	MaxFeedUnknownFields = 64
)

// feedLimits are the limits one parse applies: feedDefaults in production, smaller ones in
// tests and fuzzing.
type feedLimits struct {
	token, record       int64
	depth, keys, fields int
}

var feedDefaults = feedLimits{token: MaxFeedTokenBytes, record: MaxFeedRecordBytes, depth: MaxFeedDepth,
	keys: MaxFeedObjectKeys, fields: MaxFeedUnknownFields}

// LimitError is a feed over one of the limits above: which, where, and the limit. It never
// carries the feed's content.
type LimitError struct {
	What   string // "a string", "a record", ...
	Offset int64  // byte offset in the decompressed feed where the value starts
	Limit  int64
	Unit   string // "bytes", "levels", "keys"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s at byte %d exceeds the limit of %d %s", e.What, e.Offset, e.Limit, e.Unit)
}

// container is one open object or array of the limiter's stack.
type container struct {
	object  bool
	wantKey bool  // in an object: the next string is a key
	keys    int   // keys seen so far
	start   int64 // offset of the opening delimiter
}

// jsonLimiter passes a JSON stream through unchanged while tracking just enough of its syntax
// (strings, other scalars, nesting, object keys) to stop it, with a LimitError, as soon as a
// token, a record, the depth or an object's key count passes its limit. It does not validate
// the JSON: the decoder behind it does.
type jsonLimiter struct {
	r   io.Reader
	off int64 // bytes passed so far
	err error

	stack []container

	inString bool
	escape   bool
	inScalar bool  // a number or literal
	tokStart int64 // offset where the current string or scalar began

	maxToken, maxRecord int64
	maxDepth, maxKeys   int
}

func newJSONLimiter(r io.Reader, lim feedLimits) *jsonLimiter {
	return &jsonLimiter{r: r, maxToken: lim.token, maxRecord: lim.record, maxDepth: lim.depth, maxKeys: lim.keys}
}

// Read reads from the feed and returns the bytes up to the first one that breaks a limit,
// then the LimitError.
func (l *jsonLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if l.inString && !l.escape {
			// Most of a feed is the inside of strings: skip to the next quote or backslash,
			// the only bytes that change the state there.
			i += stringRun(p[i:n])
			if i == n {
				break
			}
		}
		if lerr := l.step(p[i], l.off+int64(i)); lerr != nil {
			l.err = lerr
			l.off += int64(i)
			return i, lerr
		}
	}
	l.off += int64(n)
	// A token or record still open at the end of this read may already be too long.
	if lerr := l.checkOpen(l.off); lerr != nil {
		l.err = lerr
		return n, lerr
	}
	return n, err
}

// step advances the syntax state by one byte at offset off.
func (l *jsonLimiter) step(c byte, off int64) error {
	if l.inString {
		switch {
		case l.escape:
			l.escape = false
		case c == '\\':
			l.escape = true
		case c == '"':
			l.inString = false
			if off+1-l.tokStart > l.maxToken {
				return &LimitError{"a string", l.tokStart, l.maxToken, "bytes"}
			}
		}
		return nil
	}
	if l.inScalar {
		if isScalarByte(c) {
			return nil
		}
		l.inScalar = false
		if off-l.tokStart > l.maxToken {
			return &LimitError{"a number or literal", l.tokStart, l.maxToken, "bytes"}
		}
	}
	switch c {
	case ' ', '\t', '\r', '\n', ':':
	case ',':
		if top := l.top(); top != nil && top.object {
			top.wantKey = true
		}
	case '"':
		l.inString, l.tokStart = true, off
		if top := l.top(); top != nil && top.object && top.wantKey {
			top.wantKey = false
			if top.keys++; top.keys > l.maxKeys {
				return &LimitError{"an object's keys", top.start, int64(l.maxKeys), "keys"}
			}
		}
	case '{', '[':
		if len(l.stack) >= l.maxDepth {
			return &LimitError{"nesting", off, int64(l.maxDepth), "levels"}
		}
		l.stack = append(l.stack, container{object: c == '{', wantKey: c == '{', start: off})
	case '}', ']':
		if len(l.stack) > 0 {
			if len(l.stack) == recordDepth && off+1-l.stack[recordDepth-1].start > l.maxRecord {
				return &LimitError{"a record", l.stack[recordDepth-1].start, l.maxRecord, "bytes"}
			}
			l.stack = l.stack[:len(l.stack)-1]
		}
	default:
		if isScalarByte(c) {
			l.inScalar, l.tokStart = true, off
		}
	}
	return nil
}

// stringRun is how many bytes at the start of b are inside a string without ending it or
// starting an escape: none is '"' or '\\'.
func stringRun(b []byte) int {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		q = len(b)
	}
	if e := bytes.IndexByte(b[:q], '\\'); e >= 0 {
		return e
	}
	return q
}

// recordDepth is the depth of a record: the feed object, its array, the record.
const recordDepth = 3

// checkOpen checks the string, scalar and record still open at offset end.
func (l *jsonLimiter) checkOpen(end int64) error {
	switch {
	case l.inString && end-l.tokStart > l.maxToken:
		return &LimitError{"a string", l.tokStart, l.maxToken, "bytes"}
	case l.inScalar && end-l.tokStart > l.maxToken:
		return &LimitError{"a number or literal", l.tokStart, l.maxToken, "bytes"}
	case len(l.stack) >= recordDepth && end-l.stack[recordDepth-1].start > l.maxRecord:
		return &LimitError{"a record", l.stack[recordDepth-1].start, l.maxRecord, "bytes"}
	}
	return nil
}

func (l *jsonLimiter) top() *container {
	if len(l.stack) == 0 {
		return nil
	}
	return &l.stack[len(l.stack)-1]
}

// isScalarByte reports the bytes of JSON numbers and literals (and of the garbage the decoder
// will reject, which counts against the token limit all the same).
func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '+' || c == '.'
}
