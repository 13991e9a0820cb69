package csaf

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
	"unicode"
)

// Entry is one line of changes.csv: a document's path relative to the provider root and the
// time it last changed.
type Entry struct {
	Path      string
	Timestamp time.Time
}

// ParseChanges reads a provider's changes.csv.
//
// Each line holds two CSV fields, the document path and an RFC 3339 timestamp; fields may be
// quoted (`"2017/a.json","2017-01-10T00:00:00Z"`, as the CSAF standard shows) or not (as CISA
// publishes), lines may end in CRLF, a UTF-8 byte order mark and blank lines are ignored, and
// the order of lines does not matter. Paths are cleaned ("./a//b.json" becomes "a/b.json").
//
// A malformed line, a bad timestamp, or a path that is empty, absolute, contains a ".."
// element, a backslash, a colon or a control character is an error naming the line number.
//
// Duplicates are not an error: a path listed more than once keeps its newest timestamp (the
// latest change wins), at the position of its first line. Entries are returned in file order.
func ParseChanges(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	var entries []Entry
	index := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("csaf: changes.csv line %d: %v", pe.StartLine, pe.Err)
			}
			return nil, fmt.Errorf("csaf: changes.csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 2 {
			return nil, fmt.Errorf("csaf: changes.csv line %d: want 2 fields (path,timestamp), got %d", line, len(rec))
		}
		p, err := cleanPath(rec[0])
		if err != nil {
			return nil, fmt.Errorf("csaf: changes.csv line %d: path: %v", line, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[1]))
		if err != nil {
			return nil, fmt.Errorf("csaf: changes.csv line %d: %s: invalid timestamp (want RFC 3339)", line, p)
		}
		if i, dup := index[p]; dup {
			if ts.After(entries[i].Timestamp) {
				entries[i].Timestamp = ts
			}
			continue
		}
		index[p] = len(entries)
		entries = append(entries, Entry{Path: p, Timestamp: ts})
	}
}

// cleanPath validates a provider-relative document path and returns its clean form.
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	switch {
	case p == "":
		return "", errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return "", errors.New("absolute path")
	case strings.HasSuffix(p, "/"):
		return "", errors.New("names a directory")
	case strings.ContainsRune(p, '\\'):
		return "", errors.New("contains a backslash")
	case strings.ContainsRune(p, ':'):
		return "", errors.New("contains a colon (URL or drive letter)")
	case strings.ContainsFunc(p, unicode.IsControl):
		return "", errors.New("contains a control character")
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", errors.New("contains a \"..\" element (escapes the provider)")
		}
	}
	c := path.Clean(p)
	if c == "." || !fs.ValidPath(c) {
		return "", errors.New("does not name a file inside the provider")
	}
	return c, nil
}
