package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"patchtree/store"
)

// Summary is a site's compliance summary: what a child sends up, and what a site reports about
// itself. Counts are in state order: installed, required, not_required, unknown.
type Summary struct {
	Site      string    `json:"site"`
	AsOf      time.Time `json:"as_of"`
	Computers int64     `json:"computers"`
	Compliant int64     `json:"compliant"`
	// Cells are the (computer, update) cells over every update in the site's view: a computer
	// whose latest scan does not name an update is unknown for it.
	Cells       [4]int64 `json:"cells"`
	ViewUpdates int64    `json:"view_updates"`
	// Bulletins are every bulletin of the site's view with its per-state computer counts.
	Bulletins []BulletinCounts `json:"bulletins"`
	// Updates are the updates some scan names, with full counts; every other update of the
	// view has all computers unknown.
	Updates  []UpdateCounts `json:"updates,omitempty"`
	LastScan time.Time      `json:"last_scan,omitempty"`
}

// BulletinCounts are one bulletin's counts.
type BulletinCounts struct {
	ID string   `json:"id"`
	C  [4]int64 `json:"c"`
}

// UpdateCounts are one update's counts.
type UpdateCounts struct {
	ID string   `json:"id"`
	C  [4]int64 `json:"c"`
}

// Build reads a site's summary from its store in one consistent view.
func Build(s *store.Store, site string, now time.Time) (*Summary, error) {
	cv, err := s.Compliance(nil)
	if err != nil {
		return nil, err
	}
	view, err := s.CatalogView(nil)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Site: site, AsOf: now.UTC(), Computers: cv.Site.Computers, Compliant: cv.Site.Compliant,
		ViewUpdates: int64(view.Info.Updates), LastScan: cv.Site.LastScan}
	cells := cv.Site.Cells
	cells[store.StateUnknown] += sum.Computers*sum.ViewUpdates - cells.Sum()
	sum.Cells = cells
	sum.Bulletins = []BulletinCounts{}
	view.EachBulletin(func(b *store.Bulletin) bool {
		sum.Bulletins = append(sum.Bulletins, BulletinCounts{ID: b.ID, C: cv.Bulletin(b.ID)})
		return true
	})
	err = cv.EachExplicitUpdate(func(id string, _ store.Counts) {
		if view.Update(id) != nil {
			sum.Updates = append(sum.Updates, UpdateCounts{ID: id, C: cv.Update(id)})
		}
	})
	sort.Slice(sum.Updates, func(i, j int) bool { return sum.Updates[i].ID < sum.Updates[j].ID })
	return sum, err
}

// Digest identifies a summary's numbers (not its time): equal digests, nothing to send.
func (s *Summary) Digest() string {
	c := *s
	c.AsOf, c.LastScan = time.Time{}, time.Time{}
	buf, _ := json.Marshal(&c)
	h := sha256.Sum256(buf)
	return hex.EncodeToString(h[:])
}

// Decode reads a summary as stored or sent.
func Decode(raw []byte) (*Summary, error) {
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode compliance summary: %w", err)
	}
	return &s, nil
}
