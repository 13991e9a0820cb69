package hierarchy

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// sameRanges compares two range lists as sets, case-insensitively.
func sameRanges(a, b []string) bool {
	norm := func(in []string) string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = strings.ToLower(s)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	return norm(a) == norm(b)
}

// newRunID names a run: its start time (ids sort by it), then random hex against collisions.
func newRunID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102T150405.000") + "-" + hex.EncodeToString(b)
}
