package csaf

import (
	"slices"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics and that whatever it accepts is a consistent
// bulletin: an id, at least one update, every UpdateID naming one of the updates, unique ids,
// and normalized dates. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"document":{"csaf_version":"2.0","title":"t","tracking":{"id":"A-1","initial_release_date":"2024-01-01T00:00:00Z","current_release_date":"2024-01-01"}}}`))
	f.Add(docWith(f, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			if a != nil {
				t.Fatal("Parse returned an advisory with an error")
			}
			return
		}
		b := a.Bulletin
		if b.ID == "" || b.Title == "" {
			t.Fatalf("bulletin without id or title: %+v", b)
		}
		if len(a.Updates) == 0 || len(b.UpdateIDs) != len(a.Updates) {
			t.Fatalf("%d updates, %d update ids", len(a.Updates), len(b.UpdateIDs))
		}
		seen := map[string]bool{}
		for _, u := range a.Updates {
			if u.ID == "" || u.Title == "" || seen[u.ID] {
				t.Fatalf("bad or duplicate update %+v", u)
			}
			seen[u.ID] = true
		}
		for _, id := range b.UpdateIDs {
			if !seen[id] {
				t.Fatalf("UpdateID %q is not among the updates", id)
			}
		}
		if !slices.IsSorted(b.CVEs) || len(slices.Compact(slices.Clone(b.CVEs))) != len(b.CVEs) {
			t.Fatalf("CVEs not sorted and unique: %q", b.CVEs)
		}
		for _, d := range []string{b.Released, b.Revised} {
			if _, err := time.Parse("2006-01-02T15:04:05Z", d); err != nil {
				if _, err := time.Parse(time.DateOnly, d); err != nil {
					t.Fatalf("date %q is not normalized", d)
				}
			}
		}
	})
}
