package store

import (
	"fmt"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// SubtreeSummary is the newest compliance summary of a site below one of this site's children
// (a relay's child, that child's children, and so on), as the child forwarded it. This site
// keeps one per path; its direct children's own summaries stay ChildSummary rows.
type SubtreeSummary struct {
	// Path is the site's path below this site, starting with the child it came through:
	// "emea/emea-de/emea-de-berlin". Child is that first part.
	Path  string `json:"path"`
	Child string `json:"child"`
	// Seq is the site's own summary sequence (the one its parent owns), Digest its summary's
	// digest and AsOf when the site built it.
	Seq    uint64    `json:"seq"`
	Digest string    `json:"digest"`
	AsOf   time.Time `json:"as_of"`
	// LastContact is the site's last report to its own parent and Interval its summary rule's
	// interval, as that parent saw them; Stale says whether the site, or a site between it and
	// Child, was stale when Child last forwarded it. ReceivedAt is when this site stored the
	// summary.
	LastContact time.Time     `json:"last_contact"`
	Interval    time.Duration `json:"interval"`
	Stale       bool          `json:"stale"`
	ReceivedAt  time.Time     `json:"received_at"`
	// Summary is the summary as compliance.Summary.Encode made it (zstd over JSON).
	Summary []byte `json:"summary,omitempty"`
	RaftIndex
}

// SubtreeOutcome is what PutSubtreeSummaries did.
type SubtreeOutcome struct {
	// Stored counts new summaries, Refreshed rows whose contact or staleness changed, Dropped
	// paths the child no longer forwards.
	Stored    int `json:"stored"`
	Refreshed int `json:"refreshed"`
	Dropped   int `json:"dropped"`
	// Ignored lists the paths whose summary was older than the stored one, or another summary
	// under the stored sequence (a replay), and the rows without summary that did not match
	// what is stored.
	Ignored []string `json:"ignored,omitempty"`
}

// subtreeChildIndex indexes subtree summaries by the child they came through.
var subtreeChildIndex = &memdb.IndexSchema{Name: "child", Indexer: &memdb.StringFieldIndex{Field: "Child"}}

// CheckSubtreePath checks that path names a site below child: "child/name[/name...]", each part
// a site name other than "." and "..".
func CheckSubtreePath(child, path string) error {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[0] != child {
		return fmt.Errorf("path %q does not start with child %q and a site below it: %w", path, child, ErrInvalid)
	}
	for _, p := range parts[1:] {
		if p == "." || p == ".." {
			return fmt.Errorf("path %q: %q is not a site name: %w", path, p, ErrInvalid)
		}
		if err := CheckName("site", p); err != nil {
			return fmt.Errorf("path %q: %w", path, err)
		}
	}
	return nil
}

// PutSubtreeSummaries stores what child forwarded of the sites below it, path by path. A row
// with a summary replaces the stored one when its sequence is newer (a first one is always
// new); an older sequence, or the stored sequence with another digest, is ignored. A row with
// the stored sequence and digest, with or without its summary, refreshes the stored row's
// contact, interval and staleness. With prune, every stored path under child that keep does not
// list is dropped: the child no longer forwards it (the site was removed below, or its relay was).
func (s *Store) PutSubtreeSummaries(idx uint64, child string, rows []*SubtreeSummary, keep []string, prune bool) (*SubtreeOutcome, error) {
	out := &SubtreeOutcome{}
	err := s.write(func(txn *memdb.Txn) error {
		*out = SubtreeOutcome{}
		changed := false
		for _, in := range rows {
			if in.Child != child {
				return fmt.Errorf("subtree summary %q came through %q, not %q: %w", in.Path, in.Child, child, ErrInvalid)
			}
			if err := CheckSubtreePath(child, in.Path); err != nil {
				return err
			}
			if in.Seq == 0 {
				return fmt.Errorf("subtree summary %q has sequence 0; the first is 1: %w", in.Path, ErrInvalid)
			}
			raw, err := txn.First(tableSubtreeSummaries, "id", in.Path)
			if err != nil {
				return err
			}
			var cur *SubtreeSummary
			if raw != nil {
				cur = raw.(*SubtreeSummary)
			}
			switch {
			case cur != nil && in.Seq == cur.Seq && in.Digest == cur.Digest:
				if cur.LastContact.Equal(in.LastContact) && cur.Interval == in.Interval && cur.Stale == in.Stale {
					continue
				}
				row := *cur
				row.LastContact, row.Interval, row.Stale = in.LastContact, in.Interval, in.Stale
				if err := putRow(txn, tableSubtreeSummaries, idx, row.Path, &row); err != nil {
					return err
				}
				out.Refreshed++
			case len(in.Summary) == 0 || (cur != nil && in.Seq <= cur.Seq):
				out.Ignored = append(out.Ignored, in.Path)
				continue
			default:
				row := *in
				if err := putRow(txn, tableSubtreeSummaries, idx, row.Path, &row); err != nil {
					return err
				}
				out.Stored++
			}
			changed = true
		}
		if prune {
			listed := make(map[string]bool, len(keep))
			for _, p := range keep {
				listed[p] = true
			}
			it, err := txn.Get(tableSubtreeSummaries, "child", child)
			if err != nil {
				return err
			}
			var gone []*SubtreeSummary
			for raw := it.Next(); raw != nil; raw = it.Next() {
				if r := raw.(*SubtreeSummary); !listed[r.Path] {
					gone = append(gone, r)
				}
			}
			for _, r := range gone {
				if err := txn.Delete(tableSubtreeSummaries, r); err != nil {
					return fmt.Errorf("drop subtree summary %q: %w", r.Path, err)
				}
				out.Dropped++
				changed = true
			}
		}
		if !changed {
			return nil // nothing moved: watchers of the table are not woken
		}
		return bumpIndex(txn, tableSubtreeSummaries, idx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SubtreeSummaries lists the stored summaries of the sites below child (every child's when
// child is ""), by path.
func (s *Store) SubtreeSummaries(ws memdb.WatchSet, child string) ([]*SubtreeSummary, error) {
	txn := s.db.Txn(false)
	if child == "" {
		return all[*SubtreeSummary](txn, ws, tableSubtreeSummaries)
	}
	it, err := txn.Get(tableSubtreeSummaries, "child", child)
	if err != nil {
		return nil, fmt.Errorf("%s list: %w", tableSubtreeSummaries, err)
	}
	ws.Add(it.WatchCh())
	var out []*SubtreeSummary
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*SubtreeSummary))
	}
	slices.SortFunc(out, func(a, b *SubtreeSummary) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// SummaryTree is one consistent read of what this site holds of the sites below it: its
// enrolled children, their newest summaries, and the summaries they forwarded of theirs.
type SummaryTree struct {
	Children  []*Child
	Summaries []*ChildSummary
	Subtree   []*SubtreeSummary
}

// SummaryTree reads the children, their summaries and the subtree summaries in one read
// transaction, adding the three tables to ws.
func (s *Store) SummaryTree(ws memdb.WatchSet) (*SummaryTree, error) {
	txn := s.db.Txn(false)
	var t SummaryTree
	var err error
	if t.Children, err = all[*Child](txn, ws, tableChildren); err != nil {
		return nil, err
	}
	if t.Summaries, err = all[*ChildSummary](txn, ws, tableChildSummaries); err != nil {
		return nil, err
	}
	if t.Subtree, err = all[*SubtreeSummary](txn, ws, tableSubtreeSummaries); err != nil {
		return nil, err
	}
	return &t, nil
}
