package compliance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"

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
	// Severities are the (computer, bulletin) pairs per state, summed by the bulletins'
	// severity (the vendor's; "" for bulletins without one).
	Severities []SeverityCounts `json:"severities"`
	LastScan   time.Time        `json:"last_scan,omitempty"`
}

// SeverityCounts are the bulletin counts of one severity.
type SeverityCounts struct {
	Severity string   `json:"severity"`
	C        [4]int64 `json:"c"`
}

// BulletinCounts are one bulletin's counts.
type BulletinCounts struct {
	ID string   `json:"id"`
	C  [4]int64 `json:"c"`
}

// Build reads a site's summary from its store in one consistent view.
func Build(s *store.Store, site string, now time.Time) (*Summary, error) {
	cv, err := s.Compliance(nil)
	if err != nil {
		return nil, err
	}
	view, err := cv.Catalog() // the same read transaction as the counts
	if err != nil {
		return nil, err
	}
	sum := &Summary{Site: site, AsOf: now.UTC(), Computers: cv.Site.Computers, Compliant: cv.Site.Compliant,
		ViewUpdates: int64(view.Info.Updates), LastScan: cv.Site.LastScan}
	cells := cv.Site.Cells
	cells[store.StateUnknown] += sum.Computers*sum.ViewUpdates - cells.Sum()
	sum.Cells = cells
	sum.Bulletins = []BulletinCounts{}
	bySeverity := map[string]*store.Counts{}
	err = view.EachBulletin(func(b *store.Bulletin) bool {
		c := cv.Bulletin(b.ID)
		sum.Bulletins = append(sum.Bulletins, BulletinCounts{ID: b.ID, C: c})
		t := bySeverity[b.Severity]
		if t == nil {
			t = &store.Counts{}
			bySeverity[b.Severity] = t
		}
		t.Add(c, 1)
		return true
	})
	sum.Severities = []SeverityCounts{}
	for sev, c := range bySeverity {
		sum.Severities = append(sum.Severities, SeverityCounts{Severity: sev, C: *c})
	}
	sort.Slice(sum.Severities, func(i, j int) bool { return sum.Severities[i].Severity < sum.Severities[j].Severity })
	return sum, err
}

// Encode is the summary as a parent stores it: JSON, zstd-compressed (a catalog of 40,000
// updates makes a summary of ~1,100 bulletins, about 100 KB of JSON and a fifth of that here).
func (s *Summary) Encode() ([]byte, error) {
	buf, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return encoder.EncodeAll(buf, nil), nil
}

// DecodeStored reads what Encode made.
func DecodeStored(raw []byte) (*Summary, error) {
	buf, err := DecompressStored(raw)
	if err != nil {
		return nil, err
	}
	return Decode(buf)
}

// DecompressStored returns the JSON of a summary Encode made (at most MaxSummaryBytes), as a
// relay forwards it without decoding it.
func DecompressStored(raw []byte) ([]byte, error) {
	buf, err := decoder.DecodeAll(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress compliance summary: %w", err)
	}
	return buf, nil
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxSummaryBytes), zstd.WithDecoderConcurrency(1))
)

// MaxSummaryBytes bounds a child's summary report decompressed, as it arrives at the parent and
// when it is read back from the store: a summary of a catalog of 40,000 updates is about 100 KB
// of JSON (1,100 bulletins), so this is room for some 80,000 bulletins. The parent holds a
// report whole while it decodes it, so this, not the compressed size, is what one costs.
const MaxSummaryBytes = 8 << 20

var errSummaryNotObject = errors.New("a summary must be a JSON object")

// Digest identifies a summary's numbers (not its time): equal digests, nothing to send.
func (s *Summary) Digest() string {
	c := *s
	c.AsOf, c.LastScan = time.Time{}, time.Time{}
	buf, _ := json.Marshal(&c)
	h := sha256.Sum256(buf)
	return hex.EncodeToString(h[:])
}

// Decode reads a summary as stored or sent: a JSON object (null, which encoding/json would read
// as an empty summary, is refused).
func Decode(raw []byte) (*Summary, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("decode compliance summary: %w", errSummaryNotObject)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode compliance summary: %w", err)
	}
	return &s, nil
}
