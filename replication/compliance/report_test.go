package compliance

import (
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// reportSite is a parent with its own catalog and two children's summaries.
func reportSite(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	b := &store.CatalogBatch{
		Bulletins: []*store.Bulletin{
			{BulletinContent: store.BulletinContent{ID: "B1", Vendor: "Mozilla", Severity: "High", Released: "2024-01-23", Title: "one", UpdateIDs: []string{"u1", "u2"}}, Hash: "1"},
			{BulletinContent: store.BulletinContent{ID: "B2", Vendor: "Other", Severity: "Low", Released: "2023-05-01", Title: "two", UpdateIDs: []string{"u3"}}, Hash: "2"},
		},
		Updates: []*store.Update{
			{UpdateContent: store.UpdateContent{ID: "u1"}, Hash: "a"}, {UpdateContent: store.UpdateContent{ID: "u2"}, Hash: "b"},
			{UpdateContent: store.UpdateContent{ID: "u3"}, Hash: "c"},
		},
	}
	raw, _ := store.EncodeBatch(b)
	if err := s.StageCatalog(1, "r", raw); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitCatalog(2, &store.ImportRun{ID: "r"}, nil); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"emea", "apac"} {
		if err := s.AddChild(uint64(10+i), &store.Child{Name: name, JoinTokenHash: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(idx uint64, child string, contact time.Time, sum Summary) {
		body, err := sum.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutChildSummary(idx, &store.ChildSummary{Child: child, Seq: 1, Digest: sum.Digest(), LastContact: contact,
			Interval: time.Minute, Summary: body}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(3, "emea", now.Add(-30*time.Second), Summary{Site: "emea", Computers: 10, Compliant: 7, Cells: [4]int64{5, 3, 2, 10},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{4, 3, 1, 2}}, {ID: "B2", C: [4]int64{0, 0, 0, 10}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{4, 3, 1, 2}}, {Severity: "Low", C: [4]int64{0, 0, 0, 10}}}})
	put(4, "apac", now.Add(-2*time.Minute), Summary{Site: "apac", Computers: 5, Compliant: 5, Cells: [4]int64{5, 0, 0, 10},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{5, 0, 0, 0}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{5, 0, 0, 0}}}})
	return s
}

func TestOverviewTotalsAndStale(t *testing.T) {
	s := reportSite(t)
	o, err := NewReporter().Overview(s, "hq", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sites) != 2 || o.Totals.Sites != 2 || o.Totals.Computers != 15 || o.Totals.Compliant != 12 || o.Totals.StaleSites != 1 {
		t.Fatalf("overview %+v", o)
	}
	for _, site := range o.Sites {
		// apac last reported 2m ago with a 1m interval (grace 30s, at least 5s): stale.
		if want := site.Site == "apac"; site.Stale != want {
			t.Fatalf("site %s stale = %t", site.Site, site.Stale)
		}
	}
	if o.Totals.Severities["High"] != (store.Counts{9, 3, 1, 2}) || o.Totals.Severities["Low"] != (store.Counts{0, 0, 0, 10}) {
		t.Fatalf("severity totals %+v", o.Totals.Severities)
	}
	if o.Totals.Cells != (store.Counts{10, 3, 2, 20}) || *o.Totals.Compliance != 0.8 {
		t.Fatalf("totals %+v", o.Totals)
	}
}

func TestBulletinsAcrossSitesAndFilters(t *testing.T) {
	s := reportSite(t)
	r := NewReporter()
	rows, err := r.Bulletins(s, "hq", BulletinFilter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Bulletin != "B1" || rows[0].Sites != 2 || rows[0].Installed != 9 || rows[0].Required != 3 ||
		rows[0].Applicable != 12 || *rows[0].Compliance != 0.75 || rows[1].Compliance != nil {
		t.Fatalf("rows %+v", rows)
	}
	for _, tc := range []struct {
		f    BulletinFilter
		want int
	}{
		{BulletinFilter{Severity: "high"}, 1}, {BulletinFilter{Vendor: "other"}, 1}, {BulletinFilter{ReleasedFrom: "2024-01-01"}, 1},
		{BulletinFilter{ReleasedTo: "2023-12-31"}, 1}, {BulletinFilter{Site: "apac"}, 1}, {BulletinFilter{Bulletin: "B2"}, 1},
		{BulletinFilter{Severity: "critical"}, 0},
	} {
		got, err := r.Bulletins(s, "hq", tc.f, now)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d rows, err %v; want %d", tc.f, len(got), err, tc.want)
		}
	}
	if _, err := r.Bulletins(s, "hq", BulletinFilter{Site: "nowhere"}, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown site: %v", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(CSV(rows)))).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][0] != "bulletin" || recs[1][0] != "B1" || recs[1][12] != "0.7500" || recs[2][12] != "" {
		t.Fatalf("csv %v %v", recs, err)
	}
}
