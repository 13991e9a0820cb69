// Package compliance is the upward flow of compliance: agents' scans validated at a site, the
// site's summary (counted incrementally by the store), the summary a child sends up, and the
// rolled-up reports at a parent (and the same reports at a child for its own site).
package compliance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"patchtree/store"
)

// ScanInput is one computer's scan as an agent posts it: per update id one of "installed",
// "required", "not_required", "unknown".
type ScanInput struct {
	ComputerID string            `json:"computer_id"`
	ScannedAt  string            `json:"scanned_at"`
	Results    map[string]string `json:"results"`
}

// RecordError is one rejected record of a submission: a line (ndjson, 1-based), a computer, an
// update, or the whole scan of a computer.
type RecordError struct {
	Line       int    `json:"line,omitempty"`
	ComputerID string `json:"computer_id,omitempty"`
	UpdateID   string `json:"update_id,omitempty"`
	Error      string `json:"error"`
}

// maxErrors bounds the errors a response lists (the count is always exact).
const maxErrors = 1000

// Parsed is a validated submission: the scans to store and what was rejected.
type Parsed struct {
	// Received counts the scans read (valid or not).
	Received   int
	Scans      []store.Scan
	Cells      int
	Errors     []RecordError
	ErrorCount int

	ids map[string]string // the update ids of kept cells, each string once
}

func (p *Parsed) reject(e RecordError) {
	p.ErrorCount++
	if len(p.Errors) < maxErrors {
		p.Errors = append(p.Errors, e)
	}
}

// ErrMalformed means the submission as a whole could not be read.
var ErrMalformed = errors.New("malformed scan submission")

// ErrTooLarge means one scan of the submission is over MaxScanBytes: the submission is refused.
var ErrTooLarge = errors.New("scan too large")

// MaxScanBytes bounds one scan object: the whole body of a single scan, or one line of NDJSON.
// A computer's scan names each update of the catalog at most once, about 40 bytes a result, so
// this is room for some 400,000 results; the decoder holds at most one scan this size.
const MaxScanBytes = 16 << 20

// MaxScanResults bounds the results of one scan (one per update of the site's catalog).
const MaxScanResults = 200_000

// UpdateExists tells whether an update is in the site's view.
type UpdateExists func(id string) bool

// Parse reads one scan (a JSON object) or, with ndjson, one scan per line, and validates every
// record against the site's catalog: an unknown update or a bad state rejects that result, a
// scan without computer id or time rejects that scan; the rest is kept. The body is read as a
// stream, one scan at a time: a scan over MaxScanBytes refuses the submission (ErrTooLarge),
// and one over MaxScanResults refuses it too (ErrMalformed), before anything is stored.
func Parse(r io.Reader, ndjson bool, exists UpdateExists, now time.Time) (*Parsed, error) {
	p := &Parsed{ids: map[string]string{}}
	if !ndjson {
		br := bufio.NewReaderSize(&scanCap{r: r, left: MaxScanBytes}, 64<<10)
		if err := startsObject(br); err != nil {
			return nil, err
		}
		dec := json.NewDecoder(br)
		dec.DisallowUnknownFields()
		var in ScanInput
		if err := dec.Decode(&in); err != nil {
			return nil, malformed(err, "")
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			if err != nil && !isSyntax(err) {
				return nil, malformed(err, "")
			}
			return nil, fmt.Errorf("%w: data after the JSON object (use ?format=ndjson for several scans)", ErrMalformed)
		}
		p.Received++
		if err := p.add(0, &in, exists, now); err != nil {
			return nil, err
		}
		return p, nil
	}
	br := bufio.NewReaderSize(r, 64<<10)
	line, objects := 0, 0
	var firstErr string
	for {
		raw, err := readLine(br)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return nil, malformed(err, fmt.Sprintf("line %d: ", line))
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		p.Received++
		var in ScanInput
		if raw[0] != '{' {
			err = errors.New("must be a JSON object")
		} else {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			err = dec.Decode(&in)
		}
		if err != nil {
			if firstErr == "" {
				firstErr = fmt.Sprintf("line %d: %v", line, err)
			}
			p.reject(RecordError{Line: line, Error: "not a scan object: " + err.Error()})
			continue
		}
		objects++
		if err := p.add(line, &in, exists, now); err != nil {
			return nil, err
		}
	}
	switch {
	case p.Received == 0:
		return nil, fmt.Errorf("%w: the body holds no scan (want one JSON object per line)", ErrMalformed)
	case objects == 0:
		// Not one line is a scan object: the body is not NDJSON at all.
		return nil, fmt.Errorf("%w: no line is a JSON scan object (%s)", ErrMalformed, firstErr)
	}
	return p, nil
}

// malformed explains why a submission could not be read; where says which line.
func malformed(err error, where string) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s%w", where, err)
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err // the route's own limit: the caller answers 413
	}
	return fmt.Errorf("%w: %s%v", ErrMalformed, where, err)
}

func isSyntax(err error) bool {
	var syn *json.SyntaxError
	return errors.As(err, &syn)
}

// startsObject checks that the first byte after white space opens a JSON object: encoding/json
// would decode a bare null as an empty scan.
func startsObject(br *bufio.Reader) error {
	for {
		c, err := br.ReadByte()
		switch {
		case err == io.EOF:
			return fmt.Errorf("%w: the body is empty; want a JSON scan object", ErrMalformed)
		case err != nil:
			return malformed(err, "")
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c != '{':
			return fmt.Errorf("%w: request body must be a JSON object", ErrMalformed)
		}
		return br.UnreadByte()
	}
}

// readLine reads one line of at most MaxScanBytes (without its newline); io.EOF after the last.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > MaxScanBytes+1 { // +1: the newline
			return nil, fmt.Errorf("%w: a scan exceeds %d bytes", ErrTooLarge, MaxScanBytes)
		}
		line = append(line, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return line, nil
		case err != nil:
			return nil, err
		}
		return line[:len(line)-1], nil
	}
}

// scanCap reads at most MaxScanBytes of a single scan and fails with ErrTooLarge after.
type scanCap struct {
	r    io.Reader
	left int64
}

func (c *scanCap) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		return 0, fmt.Errorf("%w: the scan exceeds %d bytes", ErrTooLarge, MaxScanBytes)
	}
	c.left -= int64(n)
	return n, err
}

// add validates one scan and keeps what is valid. A scan over MaxScanResults refuses the
// submission.
func (p *Parsed) add(line int, in *ScanInput, exists UpdateExists, now time.Time) error {
	if n := len(in.Results); n > MaxScanResults {
		where := ""
		if line > 0 {
			where = fmt.Sprintf("line %d: ", line)
		}
		return fmt.Errorf("%w: %sa scan has %d results, limit is %d", ErrMalformed, where, n, MaxScanResults)
	}
	id := strings.TrimSpace(in.ComputerID)
	if id == "" || len(id) > 256 {
		p.reject(RecordError{Line: line, Error: "computer_id is required (at most 256 characters)"})
		return nil
	}
	at, err := time.Parse(time.RFC3339, in.ScannedAt)
	if err != nil {
		p.reject(RecordError{Line: line, ComputerID: id, Error: fmt.Sprintf("scanned_at %q is not an RFC 3339 time", in.ScannedAt)})
		return nil
	}
	if at.After(now.Add(time.Hour)) {
		p.reject(RecordError{Line: line, ComputerID: id, Error: fmt.Sprintf("scanned_at %s is in the future", in.ScannedAt)})
		return nil
	}
	scan := store.Scan{ComputerID: id, ScannedAt: at.UTC()}
	for uid, st := range in.Results {
		state, ok := store.ParseState(st)
		switch {
		case !ok:
			p.reject(RecordError{Line: line, ComputerID: id, UpdateID: uid,
				Error: fmt.Sprintf("state %q: want installed, required, not_required or unknown", st)})
		case !exists(uid):
			p.reject(RecordError{Line: line, ComputerID: id, UpdateID: uid, Error: "unknown update (not in this site's catalog)"})
		default:
			// One copy of each update id for the whole submission, not one per computer.
			if c, ok := p.ids[uid]; ok {
				uid = c
			} else {
				p.ids[uid] = uid
			}
			scan.Cells = append(scan.Cells, store.ScanCell{Update: uid, State: uint8(state)})
		}
	}
	p.Cells += len(scan.Cells)
	p.Scans = append(p.Scans, scan)
	return nil
}
