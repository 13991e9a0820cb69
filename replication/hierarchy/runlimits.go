package hierarchy

import (
	"fmt"
	"io"
)

// Limits on what a child decompresses from its parent. A run is zstd-compressed JSON lines (a
// header, then chunks of at most maxChunkBytes of records), so the child needs neither a large
// window nor a long line: a parent, or whoever answers at its URL, cannot make it allocate more.
const (
	// maxRunWindow bounds the zstd window a run may declare. The parent's encoder uses 8 MiB.
	maxRunWindow = 16 << 20
	// maxRunLineBytes bounds one line of a run (the header or one chunk) decompressed: a chunk
	// holds at most maxChunkBytes of records, one record may pass it alone.
	maxRunLineBytes = 16 << 20
)

// lineCap passes JSON lines through and fails as soon as one passes its limit, so that the JSON
// decoder behind it never buffers more than one line of that size. Encoded JSON holds no raw
// newline, so each line is exactly one value.
type lineCap struct {
	r     io.Reader
	line  int64 // bytes of the current line so far
	limit int64
}

func (c *lineCap) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.line = 0
			continue
		}
		if c.line++; c.line > c.limit {
			return i, fmt.Errorf("a line of the run exceeds %d bytes", c.limit)
		}
	}
	return n, err
}
