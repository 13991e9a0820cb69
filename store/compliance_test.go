package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// complianceModel is the test's own copy of a site's catalog and scans, from which it computes
// every count by brute force, following DESIGN.md §6 word for word.
type complianceModel struct {
	bulletins map[string][]string // bulletin → its update ids
	updates   map[string]bool
	scans     map[string]map[string]int // computer → update → state
}

func (m *complianceModel) cell(c, u string) int {
	if st, ok := m.scans[c][u]; ok {
		return st
	}
	return StateUnknown
}

func (m *complianceModel) bulletinState(c, b string) int {
	var required, unknown, installed bool
	for _, u := range m.bulletins[b] {
		switch m.cell(c, u) {
		case StateRequired:
			required = true
		case StateUnknown:
			unknown = true
		case StateInstalled:
			installed = true
		}
	}
	switch {
	case required:
		return StateRequired
	case unknown:
		return StateUnknown
	case installed:
		return StateInstalled
	}
	return StateNotRequired
}

func (m *complianceModel) check(t *testing.T, s *Store) {
	t.Helper()
	cv, err := s.Compliance(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Site.Computers != int64(len(m.scans)) {
		t.Fatalf("computers = %d, want %d", cv.Site.Computers, len(m.scans))
	}
	compliant := int64(0)
	var cells Counts
	for c := range m.scans {
		ok := true
		for b := range m.bulletins {
			if m.bulletinState(c, b) == StateRequired {
				ok = false
			}
		}
		if ok {
			compliant++
		}
		for u := range m.updates {
			cells[m.cell(c, u)]++
		}
	}
	for u := range m.updates {
		var want Counts
		for c := range m.scans {
			want[m.cell(c, u)]++
		}
		if g := cv.Update(u); g != want {
			t.Fatalf("update %s = %v, want %v", u, g, want)
		}
	}
	if cv.Site.Compliant != compliant {
		t.Fatalf("compliant = %d, want %d", cv.Site.Compliant, compliant)
	}
	got := cv.Site.Cells
	got[StateUnknown] += cv.Site.Computers*int64(len(m.updates)) - got.Sum()
	if got != cells {
		t.Fatalf("cells = %v, want %v", got, cells)
	}
	for b := range m.bulletins {
		var want Counts
		for c := range m.scans {
			want[m.bulletinState(c, b)]++
		}
		if g := cv.Bulletin(b); g != want {
			t.Fatalf("bulletin %s = %v, want %v", b, g, want)
		}
	}
}

// TestComplianceCountsMatchBruteForce drives random scans, rescans, stale scans and catalog
// changes (new updates, updates leaving bulletins, deleted bulletins) and compares every count
// the store keeps incrementally with a brute-force computation.
func TestComplianceCountsMatchBruteForce(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			s, _ := New()
			idx := uint64(0)
			next := func() uint64 { idx++; return idx }
			m := &complianceModel{bulletins: map[string][]string{}, updates: map[string]bool{}, scans: map[string]map[string]int{}}
			commitCatalog := func(b *CatalogBatch) {
				run := fmt.Sprint("r", idx)
				importBatch(t, s, next(), next(), &ImportRun{ID: run}, b)
			}
			addUpdates := func(n int) {
				b := &CatalogBatch{}
				for i := 0; i < n; i++ {
					id := fmt.Sprintf("u%d", len(m.updates))
					m.updates[id] = true
					b.Updates = append(b.Updates, &Update{UpdateContent: UpdateContent{ID: id, Title: id}, Hash: id})
					bid := fmt.Sprintf("B%d", rng.IntN(6))
					m.bulletins[bid] = append(m.bulletins[bid], id)
				}
				for bid, ids := range m.bulletins {
					b.Bulletins = append(b.Bulletins, &Bulletin{BulletinContent: BulletinContent{ID: bid, UpdateIDs: append([]string{}, ids...)}, Hash: fmt.Sprint(ids)})
				}
				commitCatalog(b)
			}
			addUpdates(12)
			at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			older := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for round := 0; round < 12; round++ {
				var batch []Scan
				for i := 0; i < 1+rng.IntN(8); i++ {
					c := fmt.Sprintf("pc%d", rng.IntN(15))
					at = at.Add(time.Minute)
					sc := Scan{ComputerID: c, ScannedAt: at}
					states := map[string]int{}
					for u := range m.updates {
						if rng.IntN(3) > 0 {
							st := rng.IntN(numStates)
							states[u] = st
							sc.Cells = append(sc.Cells, ScanCell{Update: u, State: uint8(st)})
						}
					}
					if rng.IntN(10) == 0 {
						// an older scan than the stored one is ignored
						older = older.Add(-time.Minute)
						sc.ScannedAt = older
						if _, ok := m.scans[c]; !ok {
							m.scans[c] = states
						}
					} else {
						m.scans[c] = states
					}
					batch = append(batch, sc)
				}
				// Within a batch the last scan of a computer is the newest one.
				if _, err := s.ApplyScans(next(), batch); err != nil {
					t.Fatal(err)
				}
				m.check(t, s)
				switch rng.IntN(4) {
				case 0: // new updates: unknown for every computer that did not scan them
					addUpdates(1 + rng.IntN(3))
					m.check(t, s)
				case 1: // a bulletin loses an update, another bulletin goes
					b := &CatalogBatch{}
					for bid, us := range m.bulletins {
						if len(us) > 1 {
							m.bulletins[bid] = us[1:]
							b.Bulletins = append(b.Bulletins, &Bulletin{BulletinContent: BulletinContent{ID: bid, UpdateIDs: append([]string{}, us[1:]...)}, Hash: fmt.Sprint(us[1:])})
							break
						}
					}
					for bid := range m.bulletins {
						if rng.IntN(3) == 0 {
							delete(m.bulletins, bid)
							b.DeleteBulletins = append(b.DeleteBulletins, bid)
							break
						}
					}
					commitCatalog(b)
					m.check(t, s)
				}
			}
		})
	}
}

// TestComplianceViewCatalogIsTheSameRead: the catalog a compliance view hands out is read in
// the view's own transaction, so a catalog committed after the view opened is not in it.
func TestComplianceViewCatalogIsTheSameRead(t *testing.T) {
	s := newStore(t)
	idx := uint64(0)
	next := func() uint64 { idx++; return idx }
	commit := func(b *CatalogBatch) {
		run := fmt.Sprint("r", idx)
		importBatch(t, s, next(), next(), &ImportRun{ID: run}, b)
	}
	commit(&CatalogBatch{Updates: []*Update{{UpdateContent: UpdateContent{ID: "u1"}, Hash: "1"}}})
	cv, err := s.Compliance(nil)
	if err != nil {
		t.Fatal(err)
	}
	commit(&CatalogBatch{Updates: []*Update{{UpdateContent: UpdateContent{ID: "u2"}, Hash: "2"}}})
	view, err := cv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := view.EachUpdate(func(*Update) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if view.Info.Updates != 1 || n != 1 {
		t.Fatalf("catalog of the compliance view: %d updates (info %d), want the 1 committed before it opened", n, view.Info.Updates)
	}
	if now, _ := s.CatalogView(nil); now.Info.Updates != 2 {
		t.Fatalf("store now has %d updates, want 2", now.Info.Updates)
	}
}
