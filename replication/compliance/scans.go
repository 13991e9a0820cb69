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
}

func (p *Parsed) reject(e RecordError) {
	p.ErrorCount++
	if len(p.Errors) < maxErrors {
		p.Errors = append(p.Errors, e)
	}
}

// ErrMalformed means the submission as a whole could not be read.
var ErrMalformed = errors.New("malformed scan submission")

// UpdateExists tells whether an update is in the site's view.
type UpdateExists func(id string) bool

// Parse reads one scan (a JSON object) or, with ndjson, one scan per line, and validates every
// record against the site's catalog: an unknown update or a bad state rejects that result, a
// scan without computer id or time rejects that scan; the rest is kept.
func Parse(r io.Reader, ndjson bool, exists UpdateExists, now time.Time) (*Parsed, error) {
	p := &Parsed{}
	if !ndjson {
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		var in ScanInput
		if err := dec.Decode(&in); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: data after the JSON object (use ?format=ndjson for several scans)", ErrMalformed)
		}
		p.Received++
		p.add(0, &in, exists, now)
		return p, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line, objects := 0, 0
	var firstErr string
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		p.Received++
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var in ScanInput
		if err := dec.Decode(&in); err != nil {
			if firstErr == "" {
				firstErr = fmt.Sprintf("line %d: %v", line, err)
			}
			p.reject(RecordError{Line: line, Error: "not a scan object: " + err.Error()})
			continue
		}
		objects++
		p.add(line, &in, exists, now)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, line+1, err)
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

func (p *Parsed) add(line int, in *ScanInput, exists UpdateExists, now time.Time) {
	id := strings.TrimSpace(in.ComputerID)
	if id == "" || len(id) > 256 {
		p.reject(RecordError{Line: line, Error: "computer_id is required (at most 256 characters)"})
		return
	}
	at, err := time.Parse(time.RFC3339, in.ScannedAt)
	if err != nil {
		p.reject(RecordError{Line: line, ComputerID: id, Error: fmt.Sprintf("scanned_at %q is not an RFC 3339 time", in.ScannedAt)})
		return
	}
	if at.After(now.Add(time.Hour)) {
		p.reject(RecordError{Line: line, ComputerID: id, Error: fmt.Sprintf("scanned_at %s is in the future", in.ScannedAt)})
		return
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
			scan.Cells = append(scan.Cells, store.ScanCell{Update: uid, State: uint8(state)})
		}
	}
	p.Cells += len(scan.Cells)
	p.Scans = append(p.Scans, scan)
}
