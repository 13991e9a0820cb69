package hierarchy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// secParent is a parent with a small catalog (u-de, u-fr; B-de holds u-de, B-fr u-fr, B-both
// both) and a child "emea" that reported ["de"] and holds the catalog.
func secParent(t *testing.T) (*Parent, *memSite) {
	t.Helper()
	site := newMemSite(t)
	be := fakeParentBackend{site}
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(be)
	model := &parentModel{site: site, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	ude := &store.Update{UpdateContent: store.UpdateContent{ID: "u-de", Language: "de"}, Feed: "f", Hash: "h1"}
	ufr := &store.Update{UpdateContent: store.UpdateContent{ID: "u-fr", Language: "fr"}, Feed: "f", Hash: "h2"}
	b := func(id, sev string, ids, tags []string) *store.Bulletin {
		return &store.Bulletin{BulletinContent: store.BulletinContent{ID: id, Severity: sev, UpdateIDs: ids}, UpdateTags: tags, Feed: "f", Hash: "h" + id}
	}
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{ude, ufr}, Bulletins: []*store.Bulletin{
		b("B-de", "Critical", []string{"u-de"}, []string{"de"}), b("B-fr", "Critical", []string{"u-fr"}, []string{"fr"}),
		b("B-both", "Low", []string{"u-de", "u-fr"}, []string{"de", "fr"})}})
	info, _ := site.s.Catalog(nil)
	if err := site.s.AddChild(site.next(), &store.Child{Name: "emea", JoinTokenHash: "x"}); err != nil {
		t.Fatal(err)
	}
	be.UpdateChild("emea", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &info.Version, CursorRanges: &[]string{"de"}})
	return p, site
}

// goodSummary is a summary emea can send: 10 computers, 6 compliant, one update in its view.
func goodSummary() *compliance.Summary {
	return &compliance.Summary{Site: "emea", AsOf: time.Now().UTC(), Computers: 10, Compliant: 6, Cells: [4]int64{5, 4, 1, 0},
		ViewUpdates: 1, Bulletins: []compliance.BulletinCounts{{ID: "B-both", C: [4]int64{5, 4, 1, 0}}, {ID: "B-de", C: [4]int64{5, 4, 1, 0}}},
		Severities: []compliance.SeverityCounts{{Severity: "Critical", C: [4]int64{5, 4, 1, 0}}, {Severity: "Low", C: [4]int64{5, 4, 1, 0}}}}
}

func report(t *testing.T, seq uint64, sum *compliance.Summary) SummaryReport {
	t.Helper()
	raw, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	return SummaryReport{Child: "emea", Seq: seq, Digest: sum.Digest(), Trigger: "test", Interval: "1h", Summary: raw}
}

func alertsOf(t *testing.T, p *Parent, kind string) []Alert {
	t.Helper()
	all, err := p.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	var out []Alert
	for _, a := range all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// TestSummarySequenceOwnedByParent: a forged sequence 2^64−1 is refused (409 naming the expected
// sequence) and raised; the real child's next summaries are accepted one by one.
func TestSummarySequenceOwnedByParent(t *testing.T) {
	p, site := secParent(t)
	forged := goodSummary()
	forged.Compliant = 0
	forged.Bulletins = nil
	forged.Severities = nil
	_, err := p.ReceiveSummary("emea", report(t, math.MaxUint64, forged), 1, 1)
	if !errors.Is(err, ErrSummarySequence) || !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "must have sequence 1") {
		t.Fatalf("seq 2^64-1: %v; want ErrSummarySequence naming sequence 1", err)
	}
	if cs, _ := site.s.ChildSummary(nil, "emea"); cs != nil {
		t.Fatalf("a refused summary was stored: %+v", cs)
	}
	if a := alertsOf(t, p, AlertSummaryRefused); len(a) != 1 || a[0].Child != "emea" || !strings.Contains(a[0].Message, "rotate") {
		t.Fatalf("alerts after a forged sequence: %+v", a)
	}
	ans, err := p.ReceiveSummary("emea", report(t, 1, goodSummary()), 1, 1)
	if err != nil || !ans.Accepted || ans.NextSeq != 2 {
		t.Fatalf("seq 1: %+v, %v; want accepted, next 2", ans, err)
	}
	other := goodSummary()
	other.Cells = [4]int64{4, 4, 2, 0}
	if ans, err := p.ReceiveSummary("emea", report(t, 1, other), 1, 1); err != nil || ans.Accepted || ans.NextSeq != 2 {
		t.Fatalf("seq 1 again with other numbers (a replay): %+v, %v; want not accepted, next 2", ans, err)
	}
	if _, err := p.ReceiveSummary("emea", report(t, 3, other), 1, 1); !errors.Is(err, ErrSummarySequence) {
		t.Fatalf("seq 3 after 1: %v; want a sequence refusal", err)
	}
	if ans, err := p.ReceiveSummary("emea", report(t, 2, other), 1, 1); err != nil || !ans.Accepted || ans.NextSeq != 3 {
		t.Fatalf("seq 2: %+v, %v; want accepted, next 3", ans, err)
	}
	if cs, _ := site.s.ChildSummary(nil, "emea"); cs == nil || cs.Seq != 2 {
		t.Fatalf("stored summary after seq 2: %+v", cs)
	}
	// An unchanged report of another sequence tells the child which one follows.
	if ans, err := p.ReceiveSummary("emea", SummaryReport{Seq: 9, Digest: "x", Interval: "1h", Unchanged: true}, 1, 1); err != nil || ans.Accepted || ans.NextSeq != 3 {
		t.Fatalf("unchanged report of seq 9: %+v, %v; want not accepted, next 3", ans, err)
	}
}

// TestImpossibleSummaryRefused: numbers that cannot add up are refused with ErrInvalid (400),
// stored state does not change, and the refusal is an alert.
func TestImpossibleSummaryRefused(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(s *compliance.Summary)
	}{
		{"negative compliant", "compliant -5", func(s *compliance.Summary) { s.Compliant = -5 }},
		{"negative cell", "count -1", func(s *compliance.Summary) { s.Cells = [4]int64{-1, 4, 1, 6} }},
		{"compliant over computers", "more than computers", func(s *compliance.Summary) { s.Compliant = 11 }},
		{"cells do not add up", "cells add up", func(s *compliance.Summary) { s.Cells = [4]int64{5, 4, 1, 3} }},
		{"bulletin row", "add up to 9", func(s *compliance.Summary) { s.Bulletins[0].C = [4]int64{5, 3, 1, 0} }},
		{"unknown bulletin", "not in this child's view", func(s *compliance.Summary) { s.Bulletins[1].ID = "B-fr" }},
		{"no such bulletin", "not in this child's view", func(s *compliance.Summary) { s.Bulletins[1].ID = "nope" }},
		{"duplicate bulletin", "twice", func(s *compliance.Summary) { s.Bulletins[1].ID = "B-both" }},
		{"required yet compliant", "compliant", func(s *compliance.Summary) { s.Compliant = 7 }},
		{"severities", "severity rows", func(s *compliance.Summary) { s.Severities[1].C = [4]int64{6, 3, 1, 0} }},
		{"severity fraction", "whole number", func(s *compliance.Summary) {
			s.Severities = []compliance.SeverityCounts{{Severity: "Critical", C: [4]int64{5, 4, 1, 0}}, {Severity: "Low", C: [4]int64{5, 4, 0, 0}}, {Severity: "Mid", C: [4]int64{0, 0, 1, 0}}}
		}},
		{"view updates", "view_updates", func(s *compliance.Summary) { s.ViewUpdates, s.Cells = 100, [4]int64{5, 4, 1, 990} }},
		{"other site", "not of child", func(s *compliance.Summary) { s.Site = "apac" }},
		{"huge", "cells add up", func(s *compliance.Summary) { s.Computers = 1 << 40 }},
		{"too large", "not between", func(s *compliance.Summary) { s.Computers = 1<<40 + 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, site := secParent(t)
			sum := goodSummary()
			c.edit(sum)
			_, err := p.ReceiveSummary("emea", report(t, 1, sum), 1, 1)
			if !errors.Is(err, ErrImpossibleSummary) || !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v; want ErrImpossibleSummary mentioning %q", err, c.want)
			}
			if cs, _ := site.s.ChildSummary(nil, "emea"); cs != nil {
				t.Fatalf("an impossible summary was stored: %+v", cs)
			}
			if a := alertsOf(t, p, AlertSummaryRefused); len(a) != 1 || !strings.Contains(a[0].Message, c.want) {
				t.Fatalf("alerts: %+v", a)
			}
			if ans, err := p.ReceiveSummary("emea", report(t, 1, goodSummary()), 1, 1); err != nil || !ans.Accepted {
				t.Fatalf("the real summary after the refusal: %+v, %v", ans, err)
			}
		})
	}
}

// TestSecondPoller: while one process's pull waits, another with the same credential is refused
// and raised; the first keeps polling; a restarted child waits at most PollerLiveWindow.
func TestSecondPoller(t *testing.T) {
	p, site := secParent(t)
	p.leading.Store(true)
	info, _ := site.s.Catalog(nil)
	c, _ := site.s.Child(nil, "emea")
	req := func(inst string, wait time.Duration) PullRequest {
		return PullRequest{Child: "emea", Cursor: info.Version, CursorRanges: []string{"de"}, Wait: wait, Instance: inst, TokenID: c.NodeTokenID}
	}
	done := make(chan error, 1)
	go func() {
		plan, err := p.Pull(context.Background(), req("real", 600*time.Millisecond))
		if plan != nil {
			err = errors.New("a run was due")
		}
		done <- err
	}()
	waitFor(t, 2*time.Second, "the real poller's pull to be in flight", func() bool {
		p.guard.mu.Lock()
		defer p.guard.mu.Unlock()
		return p.guard.pollers["emea"] != nil && p.guard.pollers["emea"].inflight > 0
	})
	if _, err := p.Pull(context.Background(), req("rogue", time.Second)); !errors.Is(err, ErrSecondPoller) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second poller: %v; want ErrSecondPoller", err)
	}
	if a := alertsOf(t, p, AlertSecondPoller); len(a) != 1 || a[0].Child != "emea" || !strings.Contains(a[0].Message, "emea") {
		t.Fatalf("alerts: %+v", a)
	}
	if err := <-done; err != nil {
		t.Fatalf("the real poller: %v", err)
	}
	// The real process polls on; another process right after its poll ended is refused too.
	if _, err := p.Pull(context.Background(), req("real", 10*time.Millisecond)); err != nil {
		t.Fatalf("the real poller again: %v", err)
	}
	if _, err := p.Pull(context.Background(), req("restarted", 10*time.Millisecond)); !errors.Is(err, ErrSecondPoller) {
		t.Fatalf("another instance within the live window: %v", err)
	}
	// ...and admitted once the window has passed (a child restarted after a crash).
	p.guard.mu.Lock()
	p.guard.pollers["emea"].last = time.Now().Add(-PollerLiveWindow)
	p.guard.mu.Unlock()
	if _, err := p.Pull(context.Background(), req("restarted", 10*time.Millisecond)); err != nil {
		t.Fatalf("a restarted child after the live window: %v", err)
	}
	if a := alertsOf(t, p, AlertSecondPoller); len(a) != 1 || a[0].Count != 1 {
		t.Fatalf("alerts after a restart: %+v; want still the one", a)
	}
}
