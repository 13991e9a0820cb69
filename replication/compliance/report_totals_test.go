package compliance

import (
	"reflect"
	"testing"

	"patchtree/store"
)

// TestBulletinTotalsFollowChanges: a long-lived reporter's report across every site, kept from
// pre-aggregated totals as summaries change, a child is removed and re-added, equals a new
// reporter's and the sum of the sites' rows taken one site at a time.
func TestBulletinTotalsFollowChanges(t *testing.T) {
	s := reportSite(t)
	long := NewReporter()
	check := func(step string) {
		t.Helper()
		got, err := long.Bulletins(s, "hq", BulletinFilter{}, now)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := NewReporter().Bulletins(s, "hq", BulletinFilter{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, fresh) {
			t.Fatalf("%s: long-lived reporter %+v, new reporter %+v", step, got, fresh)
		}
		sum := map[string][4]int64{}
		o, err := NewReporter().Overview(s, "hq", now)
		if err != nil {
			t.Fatal(err)
		}
		for _, site := range o.Sites {
			rows, err := NewReporter().Bulletins(s, "hq", BulletinFilter{Site: site.Site}, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				c := sum[r.Bulletin]
				c[store.StateInstalled] += r.Installed
				c[store.StateRequired] += r.Required
				c[store.StateNotRequired] += r.NotRequired
				c[store.StateUnknown] += r.Unknown
				sum[r.Bulletin] = c
			}
		}
		for _, r := range got {
			var want [4]int64
			want[store.StateInstalled], want[store.StateRequired], want[store.StateNotRequired], want[store.StateUnknown] = r.Installed, r.Required, r.NotRequired, r.Unknown
			if c := sum[r.Bulletin]; c != want {
				t.Fatalf("%s: bulletin %s totals %+v, the sites' rows add up to %v", step, r.Bulletin, r, c)
			}
		}
	}
	check("first read")
	put := func(idx uint64, child string, seq uint64, sum Summary) {
		body, err := sum.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutChildSummary(idx, &store.ChildSummary{Child: child, Seq: seq, Digest: sum.Digest(), LastContact: now,
			Interval: 60e9, Summary: body}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(20, "emea", 2, Summary{Site: "emea", Computers: 3, Compliant: 1, Cells: [4]int64{3, 2, 1, 3},
		Bulletins:  []BulletinCounts{{ID: "B2", C: [4]int64{1, 1, 1, 0}}},
		Severities: []SeverityCounts{{Severity: "Low", C: [4]int64{1, 1, 1, 0}}}})
	check("emea's new summary drops B1")
	if err := s.RemoveChild(21, "apac"); err != nil {
		t.Fatal(err)
	}
	check("apac removed")
	if err := s.AddChild(22, &store.Child{Name: "apac", JoinTokenHash: "y"}); err != nil {
		t.Fatal(err)
	}
	put(23, "apac", 1, Summary{Site: "apac", Computers: 2, Compliant: 2, Cells: [4]int64{2, 0, 0, 2},
		Bulletins:  []BulletinCounts{{ID: "B1", C: [4]int64{2, 0, 0, 0}}, {ID: "B2", C: [4]int64{0, 0, 2, 0}}},
		Severities: []SeverityCounts{{Severity: "High", C: [4]int64{2, 0, 0, 0}}, {Severity: "Low", C: [4]int64{0, 0, 2, 0}}}})
	check("apac back")
}
