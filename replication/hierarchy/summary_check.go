package hierarchy

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// ErrImpossibleSummary means a child's compliance summary holds numbers that compliance.Build
// cannot produce at that child (docs/compliance.md, "Counting"): negative counts, more compliant
// computers than computers, rows that do not add up, or bulletins outside the child's view. It
// wraps store.ErrInvalid (400); the refusal is also raised as an alert.
var ErrImpossibleSummary = fmt.Errorf("impossible compliance summary: %w", store.ErrInvalid)

// ErrSummarySequence means a summary's sequence is not the next one the parent expects; it
// wraps store.ErrConflict (409), and the message names the expected sequence.
var ErrSummarySequence = fmt.Errorf("compliance summary out of sequence: %w", store.ErrConflict)

// maxSummaryCount bounds every count of a summary (computers, cells, bulletin and severity
// counts): about a trillion, far above any real site, low enough that no sum overflows.
const maxSummaryCount = 1 << 40

// maxSummaryFuture is how far in the future a summary's as_of may be (clock skew).
const maxSummaryFuture = time.Hour

// impossible builds an ErrImpossibleSummary with its reason.
func impossible(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrImpossibleSummary, fmt.Sprintf(format, args...))
}

// checkCounts refuses a row of four state counts with a negative or too large count.
func checkCounts(what string, c [4]int64) error {
	for i, n := range c {
		if n < 0 || n > maxSummaryCount {
			return impossible("%s: %s count %d is not between 0 and %d", what, store.StateNames[i], n, int64(maxSummaryCount))
		}
	}
	return nil
}

// checkRow refuses a bulletin or severity row whose key was seen before, or whose counts
// checkCounts refuses; it marks key seen.
func checkRow(what string, seen map[string]bool, key string, c [4]int64) error {
	if seen[key] {
		return impossible("%s is listed twice", what)
	}
	seen[key] = true
	return checkCounts(what, c)
}

func sum4(c [4]int64) int64 { return c[0] + c[1] + c[2] + c[3] }

// checkSummary refuses a summary whose numbers cannot add up under the counting of
// docs/compliance.md: every count between 0 and maxSummaryCount; compliant ≤ computers; the
// cells are computers × view_updates; each bulletin row sums to computers; the severity rows sum,
// state by state, to the bulletin rows and each stands for a whole number of bulletins; a
// computer required for a bulletin is not compliant. known says whether a bulletin id can be in
// the child's view; maxUpdates bounds view_updates.
func checkSummary(child string, sum *compliance.Summary, known func(id string) bool, maxUpdates int64, now time.Time) error {
	if sum.Site != "" && sum.Site != child {
		return impossible("the summary is of site %q, not of child %q", sum.Site, child)
	}
	if sum.AsOf.After(now.Add(maxSummaryFuture)) {
		return impossible("as_of %s is more than %s in the future", sum.AsOf.Format(time.RFC3339), maxSummaryFuture)
	}
	for _, f := range []struct {
		name string
		n    int64
	}{{"computers", sum.Computers}, {"compliant", sum.Compliant}, {"view_updates", sum.ViewUpdates}} {
		if f.n < 0 || f.n > maxSummaryCount {
			return impossible("%s %d is not between 0 and %d", f.name, f.n, int64(maxSummaryCount))
		}
	}
	if sum.Compliant > sum.Computers {
		return impossible("compliant %d is more than computers %d", sum.Compliant, sum.Computers)
	}
	if sum.ViewUpdates > maxUpdates {
		return impossible("view_updates %d is more than the %d updates this child's view can hold", sum.ViewUpdates, maxUpdates)
	}
	if err := checkCounts("cells", sum.Cells); err != nil {
		return err
	}
	hi, lo := bits.Mul64(uint64(sum.Computers), uint64(sum.ViewUpdates))
	if hi != 0 || lo != uint64(sum4(sum.Cells)) {
		return impossible("cells add up to %d, not computers × view_updates = %d × %d", sum4(sum.Cells), sum.Computers, sum.ViewUpdates)
	}
	var byState [4]int64
	var maxRequired int64
	seen := make(map[string]bool, len(sum.Bulletins))
	for _, b := range sum.Bulletins {
		what := fmt.Sprintf("bulletin %q", b.ID)
		if err := checkRow(what, seen, b.ID, b.C); err != nil {
			return err
		}
		if s := sum4(b.C); s != sum.Computers {
			return impossible("%s: counts add up to %d, not computers %d", what, s, sum.Computers)
		}
		if !known(b.ID) {
			return impossible("%s is not in this child's view of the catalog", what)
		}
		for i := range byState {
			byState[i] += b.C[i]
		}
		maxRequired = max(maxRequired, b.C[store.StateRequired])
	}
	if sum.Compliant+maxRequired > sum.Computers {
		return impossible("%d computers are required for one bulletin, yet %d of %d are compliant", maxRequired, sum.Compliant, sum.Computers)
	}
	if sum.Computers-sum.Compliant > sum.Cells[store.StateRequired] {
		return impossible("%d computers are not compliant, yet only %d (computer, update) cells are required",
			sum.Computers-sum.Compliant, sum.Cells[store.StateRequired])
	}
	var sevState [4]int64
	var sevBulletins int64
	sevSeen := make(map[string]bool, len(sum.Severities))
	for _, s := range sum.Severities {
		what := fmt.Sprintf("severity %q", s.Severity)
		if err := checkRow(what, sevSeen, s.Severity, s.C); err != nil {
			return err
		}
		total := sum4(s.C)
		switch {
		case sum.Computers == 0 && total != 0:
			return impossible("%s: counts add up to %d with no computers", what, total)
		case sum.Computers > 0 && (total == 0 || total%sum.Computers != 0):
			return impossible("%s: counts add up to %d, not a whole number of bulletins × computers %d", what, total, sum.Computers)
		case sum.Computers > 0:
			sevBulletins += total / sum.Computers
		}
		for i := range sevState {
			sevState[i] += s.C[i]
		}
	}
	if sevState != byState {
		return impossible("severity rows add up to %v, the bulletin rows to %v", sevState, byState)
	}
	if sum.Computers > 0 && sevBulletins != int64(len(sum.Bulletins)) {
		return impossible("severity rows stand for %d bulletins, the summary lists %d", sevBulletins, len(sum.Bulletins))
	}
	if len(sum.Severities) > len(sum.Bulletins) {
		return impossible("%d severity rows for %d bulletins", len(sum.Severities), len(sum.Bulletins))
	}
	return nil
}

// childView says which bulletins can be in a child's replica, and how many updates it can hold:
// those of its view under its reported ranges or the ranges of its cursor, those changed since
// its cursor (it may hold an older version), and those deleted since its cursor (it may not have
// applied the deletion yet). A child with no cursor holds only what its reported ranges allow.
func childView(state *store.Store, c *store.Child) (known func(string) bool, maxUpdates int64, err error) {
	v, err := state.CatalogView(nil)
	if err != nil {
		return nil, 0, err
	}
	gone := map[string]bool{}
	var goneUpdates int64
	if c.Cursor > 0 {
		err = v.TombstonesSince(c.Cursor, func(t *store.Tombstone) bool {
			switch t.Kind {
			case "bulletin":
				gone[t.ID] = true
			case "update":
				goneUpdates++
			}
			return true
		})
		if err != nil {
			return nil, 0, err
		}
	}
	known = func(id string) bool {
		if gone[id] {
			return true
		}
		b := v.Bulletin(id)
		if b == nil {
			return false
		}
		if c.Cursor > 0 && b.ModifyIndex > c.Cursor {
			return true
		}
		for _, ranges := range [][]string{c.Ranges, c.CursorRanges} {
			if keepsAny(v, b, ranges) {
				return true
			}
		}
		return false
	}
	return known, int64(v.Info.Updates) + goneUpdates, nil
}

// isSummaryRefusal reports whether err refuses a summary for what it says (recorded as an alert),
// rather than for a failure of the parent.
func isSummaryRefusal(err error) bool {
	return errors.Is(err, ErrImpossibleSummary) || errors.Is(err, ErrSummarySequence) || errors.Is(err, store.ErrInvalid)
}
