package hierarchy

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// relayParentBackend is a parent backend that also keeps forwarded summaries.
type relayParentBackend struct{ fakeParentBackend }

func (f relayParentBackend) PutSubtreeSummaries(child string, rows []*store.SubtreeSummary, keep []string) (*store.SubtreeOutcome, error) {
	return f.s.PutSubtreeSummaries(f.next(), child, rows, keep, true)
}

// tierParent is secParent's site (child "emea" manages ["de"]) served by a parent that keeps
// forwarded summaries.
func tierParent(t *testing.T) (*Parent, *memSite) {
	t.Helper()
	_, site := secParent(t)
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(relayParentBackend{fakeParentBackend{site}})
	return p, site
}

// siteSummary is goodSummary of another site, with computers scaled by k (so each site's
// numbers differ).
func siteSummary(name string, k int64) *compliance.Summary {
	s := goodSummary()
	s.Site, s.Computers, s.Compliant = name, 10*k, 6*k
	for _, c := range []*[4]int64{&s.Cells, &s.Bulletins[0].C, &s.Bulletins[1].C, &s.Severities[0].C, &s.Severities[1].C} {
		for i := range c {
			c[i] *= k
		}
	}
	return s
}

func forwarded(t *testing.T, path string, seq uint64, sum *compliance.Summary, withSummary bool) ForwardedSummary {
	t.Helper()
	f := ForwardedSummary{Path: path, Seq: seq, Digest: sum.Digest(), AsOf: sum.AsOf, LastContact: time.Now().UTC().Truncate(time.Second), Interval: "1h0m0s"}
	if withSummary {
		raw, err := json.Marshal(sum)
		if err != nil {
			t.Fatal(err)
		}
		f.Summary = raw
	}
	return f
}

func storedPaths(t *testing.T, s *store.Store) map[string]uint64 {
	t.Helper()
	rows, err := s.SubtreeSummaries(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, r := range rows {
		out[r.Path] = r.Seq
	}
	return out
}

// TestSubtreeReportsPerPath: the parent asks for the summaries it lacks, stores them per path
// by their own sequences (an older one is ignored), drops the paths the relay stops listing, and
// stores nothing of a report it does not accept.
func TestSubtreeReportsPerPath(t *testing.T) {
	p, site := tierParent(t)
	de, berlin := siteSummary("emea-de", 2), siteSummary("emea-de-berlin", 3)
	rep := report(t, 1, goodSummary())
	rep.Subtree = []ForwardedSummary{forwarded(t, "emea/emea-de", 5, de, false), forwarded(t, "emea/emea-de/emea-de-berlin", 9, berlin, false)}
	ans, err := p.ReceiveSummary("emea", rep, 1, 1)
	if err != nil || !ans.Accepted || !slices.Equal(ans.Want, []string{"emea/emea-de", "emea/emea-de/emea-de-berlin"}) {
		t.Fatalf("list without summaries: %+v, %v; want both paths wanted", ans, err)
	}
	if got := storedPaths(t, site.s); len(got) != 0 {
		t.Fatalf("stored %v before any summary arrived", got)
	}
	unchanged := SummaryReport{Child: "emea", Seq: 1, Digest: goodSummary().Digest(), Interval: "1h", Unchanged: true,
		Subtree: []ForwardedSummary{forwarded(t, "emea/emea-de", 5, de, true), forwarded(t, "emea/emea-de/emea-de-berlin", 9, berlin, true)}}
	if ans, err := p.ReceiveSummary("emea", unchanged, 1, 1); err != nil || !ans.Accepted || len(ans.Want)+len(ans.Refused) != 0 {
		t.Fatalf("the wanted summaries: %+v, %v", ans, err)
	}
	if got := storedPaths(t, site.s); got["emea/emea-de"] != 5 || got["emea/emea-de/emea-de-berlin"] != 9 || len(got) != 2 {
		t.Fatalf("stored %v", got)
	}
	// An older sequence is ignored (not wanted, not stored); a newer one replaces.
	older := siteSummary("emea-de", 7)
	unchanged.Subtree[0] = forwarded(t, "emea/emea-de", 4, older, true)
	newer := siteSummary("emea-de-berlin", 4)
	unchanged.Subtree[1] = forwarded(t, "emea/emea-de/emea-de-berlin", 10, newer, true)
	if ans, err := p.ReceiveSummary("emea", unchanged, 1, 1); err != nil || !ans.Accepted || len(ans.Want) != 0 {
		t.Fatalf("older and newer: %+v, %v", ans, err)
	}
	rows, _ := site.s.SubtreeSummaries(nil, "emea")
	if rows[0].Seq != 5 || rows[0].Digest != de.Digest() || rows[1].Seq != 10 || rows[1].Digest != newer.Digest() {
		t.Fatalf("after older and newer: %+v %+v", rows[0], rows[1])
	}
	// A report the parent does not accept (a replay of another sequence) speaks for nothing.
	stale := report(t, 0, goodSummary())
	stale.Seq, stale.Subtree = 1, nil
	stale.Summary, _ = json.Marshal(siteSummary("emea", 1))
	stale.Digest = siteSummary("emea", 1).Digest()
	if ans, err := p.ReceiveSummary("emea", stale, 1, 1); err != nil || ans.Accepted {
		t.Fatalf("replay: %+v, %v", ans, err)
	}
	if got := storedPaths(t, site.s); len(got) != 2 {
		t.Fatalf("a refused report dropped the subtree: %v", got)
	}
	// Berlin's relay removed below: only emea/emea-de is listed, berlin goes.
	unchanged.Subtree = unchanged.Subtree[:1]
	if _, err := p.ReceiveSummary("emea", unchanged, 1, 1); err != nil {
		t.Fatal(err)
	}
	if got := storedPaths(t, site.s); len(got) != 1 || got["emea/emea-de"] != 5 {
		t.Fatalf("after berlin left the list: %v", got)
	}
}

// TestSubtreeMalformedRefusedWhole: a subtree that is malformed as a whole refuses the report
// (ErrInvalid) before anything is stored, the child's own summary included.
func TestSubtreeMalformedRefusedWhole(t *testing.T) {
	de := siteSummary("emea-de", 2)
	good := func(t *testing.T) ForwardedSummary { return forwarded(t, "emea/emea-de", 1, de, true) }
	cases := []struct {
		name, want string
		edit       func(t *testing.T) []ForwardedSummary
	}{
		{"another child's path", "does not start with child", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Path = "apac/jp"
			return []ForwardedSummary{f}
		}},
		{"the child itself", "does not start with child", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Path = "emea"
			return []ForwardedSummary{f}
		}},
		{"twice", "twice", func(t *testing.T) []ForwardedSummary { return []ForwardedSummary{good(t), good(t)} }},
		{"digest", "does not match", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Digest = siteSummary("emea-de", 3).Digest()
			return []ForwardedSummary{f}
		}},
		{"not a summary", "must be a JSON object", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Summary = json.RawMessage(`[1]`)
			return []ForwardedSummary{f}
		}},
		{"sequence 0", "sequence 0", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Seq = 0
			return []ForwardedSummary{f}
		}},
		{"interval", "interval", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Interval = "hourly"
			return []ForwardedSummary{f}
		}},
		{"long path", "limit", func(t *testing.T) []ForwardedSummary {
			f := good(t)
			f.Path = "emea/" + strings.Repeat("x/", 200) + "y"
			return []ForwardedSummary{f}
		}},
		{"too many", "at most", func(t *testing.T) []ForwardedSummary {
			return make([]ForwardedSummary, MaxSubtreeSummaries+1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, site := tierParent(t)
			rep := report(t, 1, goodSummary())
			rep.Subtree = c.edit(t)
			_, err := p.ReceiveSummary("emea", rep, 1, 1)
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v; want ErrInvalid mentioning %q", err, c.want)
			}
			if cs, _ := site.s.ChildSummary(nil, "emea"); cs != nil || len(storedPaths(t, site.s)) != 0 {
				t.Fatalf("a refused report stored %+v and %v", cs, storedPaths(t, site.s))
			}
			if a := alertsOf(t, p, AlertSummaryRefused); len(a) != 1 {
				t.Fatalf("alerts: %+v", a)
			}
		})
	}
}

// TestSubtreeImpossibleRefusedAlone: a forwarded summary whose numbers cannot add up (here a
// bulletin outside the relay's view) is refused on its own and raised; the rest is stored.
func TestSubtreeImpossibleRefusedAlone(t *testing.T) {
	p, site := tierParent(t)
	bad := siteSummary("emea-fr", 1)
	bad.Bulletins[1].ID = "B-fr"
	wrongSite := siteSummary("emea-xx", 1)
	rep := report(t, 1, goodSummary())
	rep.Subtree = []ForwardedSummary{forwarded(t, "emea/emea-de", 1, siteSummary("emea-de", 2), true),
		forwarded(t, "emea/emea-fr", 1, bad, true), forwarded(t, "emea/emea-it", 1, wrongSite, true)}
	ans, err := p.ReceiveSummary("emea", rep, 1, 1)
	if err != nil || !ans.Accepted || len(ans.Refused) != 2 || ans.Refused[0].Path != "emea/emea-fr" ||
		!strings.Contains(ans.Refused[0].Reason, "not in this child's view") || !strings.Contains(ans.Refused[1].Reason, "not of child") {
		t.Fatalf("%+v, %v; want emea-fr and emea-it refused", ans, err)
	}
	if got := storedPaths(t, site.s); len(got) != 1 || got["emea/emea-de"] != 1 {
		t.Fatalf("stored %v, want only emea/emea-de", got)
	}
	if a := alertsOf(t, p, AlertSummaryRefused); len(a) != 1 || !strings.Contains(a[0].Message, "emea/emea-") {
		t.Fatalf("alerts: %+v", a)
	}
	// Listed again without summary, a refused one is not wanted: the relay holds no newer one.
	rep = SummaryReport{Child: "emea", Seq: 1, Digest: goodSummary().Digest(), Interval: "1h", Unchanged: true,
		Subtree: []ForwardedSummary{forwarded(t, "emea/emea-de", 1, siteSummary("emea-de", 2), false), forwarded(t, "emea/emea-fr", 2, bad, false)}}
	if ans, err := p.ReceiveSummary("emea", rep, 1, 1); err != nil || !slices.Equal(ans.Want, []string{"emea/emea-fr"}) {
		t.Fatalf("a newer sequence of the refused site: %+v, %v; want it wanted", ans, err)
	}
}
