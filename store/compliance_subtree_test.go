package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func subtreeRow(path string, seq uint64, digest string) *SubtreeSummary {
	child := path
	for i := range path {
		if path[i] == '/' {
			child = path[:i]
			break
		}
	}
	return &SubtreeSummary{Path: path, Child: child, Seq: seq, Digest: digest, Interval: time.Hour,
		LastContact: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Summary: []byte("sum-" + digest)}
}

func subtreePaths(t *testing.T, s *Store, child string) []string {
	t.Helper()
	rows, err := s.SubtreeSummaries(nil, child)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Path)
	}
	return out
}

// TestSubtreeSummariesBySequence: a path's summary is replaced only by a newer sequence; an
// older one or a replay under the stored sequence is ignored; a row without summary refreshes
// the contact and staleness only when its sequence and digest are the stored ones.
func TestSubtreeSummariesBySequence(t *testing.T) {
	s := newStore(t)
	keep := []string{"emea/de", "emea/de/berlin"}
	out, err := s.PutSubtreeSummaries(1, "emea", []*SubtreeSummary{subtreeRow("emea/de", 3, "a"), subtreeRow("emea/de/berlin", 7, "b")}, keep, true)
	if err != nil || out.Stored != 2 {
		t.Fatalf("first rows: %+v, %v", out, err)
	}
	steps := []struct {
		name      string
		row       *SubtreeSummary
		stored    int
		refreshed int
		ignored   int
		seq       uint64
		digest    string
		stale     bool
	}{
		{"older", subtreeRow("emea/de", 2, "old"), 0, 0, 1, 3, "a", false},
		{"replay under the stored sequence", subtreeRow("emea/de", 3, "other"), 0, 0, 1, 3, "a", false},
		{"same sequence and digest: nothing changed", subtreeRow("emea/de", 3, "a"), 0, 0, 0, 3, "a", false},
		{"refresh without summary", func() *SubtreeSummary {
			r := subtreeRow("emea/de", 3, "a")
			r.Summary, r.Stale = nil, true
			return r
		}(), 0, 1, 0, 3, "a", true},
		{"newer sequence without summary", func() *SubtreeSummary {
			r := subtreeRow("emea/de", 4, "c")
			r.Summary = nil
			return r
		}(), 0, 0, 1, 3, "a", true},
		{"newer", subtreeRow("emea/de", 4, "c"), 1, 0, 0, 4, "c", false},
	}
	for i, st := range steps {
		out, err := s.PutSubtreeSummaries(uint64(2+i), "emea", []*SubtreeSummary{st.row}, nil, false)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if out.Stored != st.stored || out.Refreshed != st.refreshed || len(out.Ignored) != st.ignored {
			t.Errorf("%s: %+v; want stored %d refreshed %d ignored %d", st.name, out, st.stored, st.refreshed, st.ignored)
		}
		rows, _ := s.SubtreeSummaries(nil, "emea")
		if r := rows[0]; r.Path != "emea/de" || r.Seq != st.seq || r.Digest != st.digest || r.Stale != st.stale {
			t.Errorf("%s: stored %s seq %d digest %s stale %t; want seq %d digest %s stale %t", st.name, r.Path, r.Seq, r.Digest, r.Stale, st.seq, st.digest, st.stale)
		}
	}
	if got := subtreePaths(t, s, ""); !slices.Equal(got, keep) {
		t.Fatalf("paths %v, want %v", got, keep)
	}
}

// TestSubtreeSummariesPrune: with prune, the paths a child no longer lists are dropped, and
// only under that child; a write that changes nothing wakes no watcher.
func TestSubtreeSummariesPrune(t *testing.T) {
	s := newStore(t)
	must := func(idx uint64, child string, rows []*SubtreeSummary, keep []string, prune bool) *SubtreeOutcome {
		t.Helper()
		out, err := s.PutSubtreeSummaries(idx, child, rows, keep, prune)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	must(1, "emea", []*SubtreeSummary{subtreeRow("emea/de", 1, "a"), subtreeRow("emea/fr", 1, "b"), subtreeRow("emea/de/berlin", 1, "c")}, nil, false)
	must(2, "apac", []*SubtreeSummary{subtreeRow("apac/jp", 1, "d")}, nil, false)

	ws := memdb.NewWatchSet()
	if _, err := s.SummaryTree(ws); err != nil {
		t.Fatal(err)
	}
	if out := must(3, "emea", nil, []string{"emea/de", "emea/fr", "emea/de/berlin"}, true); out.Dropped != 0 {
		t.Fatalf("nothing to drop: %+v", out)
	}
	if !ws.Watch(time.After(20 * time.Millisecond)) {
		t.Fatalf("a write that changed nothing woke the summary tree's watchers")
	}
	if out := must(4, "emea", nil, []string{"emea/fr"}, true); out.Dropped != 2 {
		t.Fatalf("berlin's relay removed: %+v, want 2 dropped", out)
	}
	if ws.Watch(time.After(time.Second)) {
		t.Fatalf("dropping rows did not wake the summary tree's watchers")
	}
	if got := subtreePaths(t, s, ""); !slices.Equal(got, []string{"apac/jp", "emea/fr"}) {
		t.Fatalf("after pruning emea: %v", got)
	}
	if out := must(5, "emea", nil, nil, true); out.Dropped != 1 || len(subtreePaths(t, s, "emea")) != 0 || len(subtreePaths(t, s, "apac")) != 1 {
		t.Fatalf("emea forwards nothing: %+v; apac's rows must stay", out)
	}
}

// TestSubtreeSummariesRefused: rows of another child, paths outside the child and sequence 0
// are refused whole (ErrInvalid), and nothing is written.
func TestSubtreeSummariesRefused(t *testing.T) {
	s := newStore(t)
	for name, row := range map[string]*SubtreeSummary{
		"another child":  {Path: "apac/jp", Child: "apac", Seq: 1, Summary: []byte("x")},
		"not below":      {Path: "emea", Child: "emea", Seq: 1, Summary: []byte("x")},
		"bad name":       {Path: "emea/a\x01b", Child: "emea", Seq: 1, Summary: []byte("x")},
		"empty part":     {Path: "emea//de", Child: "emea", Seq: 1, Summary: []byte("x")},
		"dot dot":        {Path: "emea/../apac", Child: "emea", Seq: 1, Summary: []byte("x")},
		"sequence 0":     {Path: "emea/de", Child: "emea", Seq: 0, Summary: []byte("x")},
		"path of others": {Path: "apac/jp", Child: "emea", Seq: 1, Summary: []byte("x")},
	} {
		good := subtreeRow("emea/fr", 1, "a")
		if _, err := s.PutSubtreeSummaries(1, "emea", []*SubtreeSummary{good, row}, nil, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if got := subtreePaths(t, s, ""); len(got) != 0 {
		t.Fatalf("a refused write stored %v", got)
	}
}

// TestSubtreeSummariesSnapshot: the rows survive a snapshot and restore, digest for digest.
func TestSubtreeSummariesSnapshot(t *testing.T) {
	s := newStore(t)
	if _, err := s.PutSubtreeSummaries(1, "emea", []*SubtreeSummary{subtreeRow("emea/de", 2, "a"), subtreeRow("emea/de/berlin", 5, "b")}, nil, false); err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(bytes.NewReader(snapshotBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Digest()
	b, _ := restored.Digest()
	if a.Digest != b.Digest || b.Tables[tableSubtreeSummaries].Rows != 2 {
		t.Fatalf("digest %s vs %s; restored rows %+v", a.Digest, b.Digest, b.Tables[tableSubtreeSummaries])
	}
	rows, err := restored.SubtreeSummaries(nil, "emea")
	if err != nil || len(rows) != 2 || rows[1].Seq != 5 || string(rows[1].Summary) != "sum-b" {
		t.Fatalf("restored rows %+v, %v", rows, err)
	}
}
