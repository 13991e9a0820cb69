package compliance

import (
	"fmt"
	"testing"
	"time"

	"patchtree/store"
)

// benchSites is a parent with a catalog of nb bulletins and n children, each with a summary over
// every bulletin.
func benchSites(b *testing.B, n, nb int) (*store.Store, func(i int, seq uint64) error) {
	b.Helper()
	s, err := store.New()
	if err != nil {
		b.Fatal(err)
	}
	batch := &store.CatalogBatch{}
	for i := range nb {
		id := fmt.Sprintf("B%04d", i)
		batch.Bulletins = append(batch.Bulletins, &store.Bulletin{BulletinContent: store.BulletinContent{ID: id, Vendor: "Mozilla",
			Severity: "High", Released: "2024-01-23", Title: id, UpdateIDs: []string{"u" + id}}, Hash: id})
		batch.Updates = append(batch.Updates, &store.Update{UpdateContent: store.UpdateContent{ID: "u" + id}, Hash: id})
	}
	raw, _ := store.EncodeBatch(batch)
	if err := s.StageCatalog(1, "r", raw); err != nil {
		b.Fatal(err)
	}
	if err := s.CommitCatalog(2, &store.ImportRun{ID: "r"}, nil); err != nil {
		b.Fatal(err)
	}
	idx := uint64(10)
	put := func(i int, seq uint64) error {
		idx++
		sum := Summary{Site: fmt.Sprintf("site%03d", i), Computers: 5000, Compliant: 2500 - int64(seq), ViewUpdates: int64(nb)}
		row := [4]int64{3500, 500, 750, 250}
		for j := range sum.Cells {
			sum.Cells[j] = row[j] * int64(nb)
		}
		for _, bl := range batch.Bulletins {
			sum.Bulletins = append(sum.Bulletins, BulletinCounts{ID: bl.ID, C: row})
		}
		sum.Severities = []SeverityCounts{{Severity: "High", C: [4]int64{3500 * int64(nb), 500 * int64(nb), 750 * int64(nb), 250 * int64(nb)}}}
		body, err := sum.Encode()
		if err != nil {
			return err
		}
		_, _, err = s.PutChildSummary(idx, &store.ChildSummary{Child: sum.Site, Seq: seq, Digest: sum.Digest(), LastContact: now,
			Interval: time.Minute, Summary: body}, nil)
		return err
	}
	for i := range n {
		idx++
		if err := s.AddChild(idx, &store.Child{Name: fmt.Sprintf("site%03d", i), JoinTokenHash: "x"}); err != nil {
			b.Fatal(err)
		}
		if err := put(i, 1); err != nil {
			b.Fatal(err)
		}
	}
	return s, put
}

// BenchmarkReports200 reads the rollup and the per-bulletin report across 200 sites of 1,000
// bulletins each: "cached" with no summary changed since the last read, "changing" with one new
// summary stored before each read (40 summaries a second against a report every 25 ms).
func BenchmarkReports200(b *testing.B) {
	for _, report := range []string{"rollup", "bulletins"} {
		for _, changing := range []bool{false, true} {
			name := report + "/cached"
			if changing {
				name = report + "/changing"
			}
			b.Run(name, func(b *testing.B) {
				s, put := benchSites(b, 200, 1000)
				r := NewReporter()
				read := func() error {
					if report == "rollup" {
						_, err := r.Overview(s, "hq", now)
						return err
					}
					_, err := r.Bulletins(s, "hq", BulletinFilter{}, now)
					return err
				}
				if err := read(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					if changing {
						b.StopTimer()
						if err := put(i%200, uint64(2+i/200)); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					if err := read(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
