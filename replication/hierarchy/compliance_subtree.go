package hierarchy

// Compliance across tiers, the parent's side: a relay's summary report also lists every site
// below it whose summary it holds (docs/compliance.md, "Across tiers"). The parent keeps the
// truth about its direct child (the sequence it owns, as before) and, per path below it, the
// newest summary the child forwarded.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// MaxSubtreeSummaries bounds the sites below a child that one summary report may list.
const MaxSubtreeSummaries = 2000

// MaxSubtreePathBytes bounds the path of a site below a child ("emea/emea-de/emea-de-berlin").
const MaxSubtreePathBytes = 256

// maxStoredSubtreeSummary bounds one forwarded summary as the parent stores it (compressed), so
// that it fits a Raft entry with room to spare; a larger one is refused on its own.
const maxStoredSubtreeSummary = 512 << 10

// ForwardedSummary is one site below a relay in the relay's summary report: its path, starting
// with the relay's name ("emea/emea-de"), the sequence its own parent holds, its digest, when it
// built the summary, its last report to its parent and its summary interval as that parent saw
// them, and whether it (or a site between it and the relay) is stale. Summary is the summary
// itself, sent only when the relay does not know that its parent holds this sequence.
type ForwardedSummary struct {
	Path        string    `json:"path"`
	Seq         uint64    `json:"seq"`
	Digest      string    `json:"digest"`
	AsOf        time.Time `json:"as_of"`
	LastContact time.Time `json:"last_contact"`
	Interval    string    `json:"interval"`
	Stale       bool      `json:"stale"`
	// Summary is the site's compliance.Summary.
	Summary json.RawMessage `json:"summary,omitempty"`
}

// RefusedPath is a forwarded summary the parent did not store because its numbers cannot add
// up (or it is too large to store), with the reason. The relay does not send it again until the
// site's sequence changes.
type RefusedPath struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// SubtreeBackend is what the parent side needs to keep the summaries a relay forwards
// (node.Node implements it).
type SubtreeBackend interface {
	PutSubtreeSummaries(child string, rows []*store.SubtreeSummary, keep []string) (*store.SubtreeOutcome, error)
}

// subtreePlan is what a report's subtree changes at this parent: rows to store or refresh, the
// paths it lists (every other stored path under the child is dropped), the paths whose summary
// the parent lacks (Want) and those it refused.
type subtreePlan struct {
	rows    []*store.SubtreeSummary
	keep    []string
	drops   int
	want    []string
	refused []RefusedPath
}

// changes reports whether storing the plan writes anything.
func (pl *subtreePlan) changes() bool { return len(pl.rows) > 0 || pl.drops > 0 }

// planSubtree checks a report's subtree against what the parent holds below child c. A report
// that is malformed as a whole (too many sites, a path outside the child or listed twice, a
// summary that does not decode or does not match its digest) is refused with store.ErrInvalid
// before anything is stored. A summary whose numbers cannot add up under the counting rules
// (checkSummary, against the child's view: every site below a relay holds a part of the
// relay's view) is refused on its own and listed in refused; the rest is stored.
func (p *Parent) planSubtree(state *store.Store, c *store.Child, entries []ForwardedSummary, now time.Time) (*subtreePlan, error) {
	if len(entries) > MaxSubtreeSummaries {
		return nil, fmt.Errorf("%w: a report lists at most %d sites below its child, not %d", store.ErrInvalid, MaxSubtreeSummaries, len(entries))
	}
	stored, err := state.SubtreeSummaries(nil, c.Name)
	if err != nil {
		return nil, err
	}
	held := make(map[string]*store.SubtreeSummary, len(stored))
	for _, r := range stored {
		held[r.Path] = r
	}
	pl := &subtreePlan{keep: make([]string, 0, len(entries))}
	listed := make(map[string]bool, len(entries))
	var known func(string) bool
	var maxUpdates int64
	for i := range entries {
		e := &entries[i]
		if len(e.Path) > MaxSubtreePathBytes {
			return nil, fmt.Errorf("%w: subtree path of %d bytes, limit %d", store.ErrInvalid, len(e.Path), MaxSubtreePathBytes)
		}
		if err := store.CheckSubtreePath(c.Name, e.Path); err != nil {
			return nil, fmt.Errorf("subtree: %w", err)
		}
		if listed[e.Path] {
			return nil, fmt.Errorf("%w: subtree lists %q twice", store.ErrInvalid, e.Path)
		}
		if e.Seq == 0 {
			return nil, fmt.Errorf("%w: subtree %q has sequence 0; the first is 1", store.ErrInvalid, e.Path)
		}
		interval, err := time.ParseDuration(e.Interval)
		if err != nil || interval < 0 {
			return nil, fmt.Errorf("%w: subtree %q: interval %q is not a duration", store.ErrInvalid, e.Path, e.Interval)
		}
		listed[e.Path] = true
		pl.keep = append(pl.keep, e.Path)
		cur := held[e.Path]
		same := cur != nil && e.Seq == cur.Seq && e.Digest == cur.Digest
		row := &store.SubtreeSummary{Path: e.Path, Child: c.Name, Seq: e.Seq, Digest: e.Digest, AsOf: e.AsOf,
			LastContact: e.LastContact.UTC(), Interval: interval, Stale: e.Stale, ReceivedAt: now}
		var sum *compliance.Summary
		if len(e.Summary) > 0 {
			if sum, err = compliance.Decode(e.Summary); err != nil {
				return nil, fmt.Errorf("%w: subtree %q: %w", store.ErrInvalid, e.Path, err)
			}
			if got := sum.Digest(); got != e.Digest {
				return nil, fmt.Errorf("%w: subtree %q: summary digest %s does not match its content (%s)", store.ErrInvalid, e.Path, abbrev(e.Digest), abbrev(got))
			}
		}
		switch {
		case same:
			if !cur.LastContact.Equal(row.LastContact) || cur.Interval != row.Interval || cur.Stale != row.Stale {
				pl.rows = append(pl.rows, row) // a refresh: contact, interval, staleness
			}
		case cur != nil && e.Seq <= cur.Seq:
			// Older than what is stored, or another summary under its sequence: ignored.
		case sum == nil:
			pl.want = append(pl.want, e.Path)
		default:
			if known == nil {
				if known, maxUpdates, err = childView(state, c); err != nil {
					return nil, err
				}
			}
			name := e.Path[strings.LastIndexByte(e.Path, '/')+1:]
			if err := checkSummary(name, sum, known, maxUpdates, now); err != nil {
				pl.refuse(p, c.Name, e, err)
				continue
			}
			if row.Summary, err = sum.Encode(); err != nil {
				return nil, err
			}
			if len(row.Summary) > maxStoredSubtreeSummary {
				pl.refuse(p, c.Name, e, fmt.Errorf("%w: the summary is %d bytes compressed, over the %d a parent stores", store.ErrInvalid, len(row.Summary), maxStoredSubtreeSummary))
				continue
			}
			row.AsOf = sum.AsOf
			pl.rows = append(pl.rows, row)
		}
	}
	for _, r := range stored {
		if !listed[r.Path] {
			pl.drops++
		}
	}
	return pl, nil
}

// refuse records a forwarded summary refused for its numbers, and raises the refusal alert of
// the child that forwarded it.
func (pl *subtreePlan) refuse(p *Parent, child string, e *ForwardedSummary, err error) {
	pl.refused = append(pl.refused, RefusedPath{Path: e.Path, Reason: err.Error()})
	p.summaryRefused(child, e.Seq, fmt.Errorf("forwarded summary of %s: %w", e.Path, err))
}

// storeSubtree writes a plan (nothing when nothing changes) and puts what the child must know
// into the answer: the paths the parent still wants and those it refused.
func (p *Parent) storeSubtree(child string, pl *subtreePlan, ans *SummaryAnswer) error {
	ans.Want, ans.Refused = pl.want, pl.refused
	if !pl.changes() {
		return nil
	}
	sb, ok := p.backend.(SubtreeBackend)
	if !ok {
		return fmt.Errorf("child %q forwarded summaries of the sites below it, and this parent cannot store them", child)
	}
	out, err := sb.PutSubtreeSummaries(child, pl.rows, pl.keep)
	if err != nil {
		return fmt.Errorf("store the summaries child %q forwarded: %w", child, err)
	}
	if out.Stored+out.Dropped > 0 {
		p.logger.Info("compliance summaries forwarded", "child", child, "stored", out.Stored, "refreshed", out.Refreshed,
			"dropped", out.Dropped, "listed", len(pl.keep))
	}
	return nil
}
