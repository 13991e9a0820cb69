package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Scan states of one (computer, update) cell, in the order of every count array.
const (
	StateInstalled = iota
	StateRequired
	StateNotRequired
	StateUnknown
	numStates
)

// StateNames are the wire names of the scan states, indexed by state.
var StateNames = [numStates]string{"installed", "required", "not_required", "unknown"}

// ParseState maps a wire name to its state.
func ParseState(s string) (int, bool) {
	for i, n := range StateNames {
		if n == s {
			return i, true
		}
	}
	return 0, false
}

// Counts are numbers of computers (or cells) per state.
type Counts [numStates]int64

// Add adds o (or subtracts it, with sign -1).
func (c *Counts) Add(o Counts, sign int64) {
	for i := range c {
		c[i] += sign * o[i]
	}
}

// Sum is the total over every state.
func (c Counts) Sum() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// MarshalJSON writes counts as an object with the state names.
func (c Counts) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int64{StateNames[0]: c[0], StateNames[1]: c[1], StateNames[2]: c[2], StateNames[3]: c[3]})
}

// UnmarshalJSON reads the object MarshalJSON writes.
func (c *Counts) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for i, n := range StateNames {
		c[i] = m[n]
	}
	return nil
}

// ScanCell is one update's state in a computer's scan, as the leader validated it.
type ScanCell struct {
	Update string `json:"u"`
	State  uint8  `json:"s"`
}

// Scan is one computer's latest system assessment scan.
type Scan struct {
	ComputerID string     `json:"computer_id"`
	ScannedAt  time.Time  `json:"scanned_at"`
	Cells      []ScanCell `json:"cells"`
}

// Computer is a stored scan: the cells as update ordinals (ord<<2 | state, sorted), so that ten
// thousand computers of a thousand updates each stay in tens of megabytes.
type Computer struct {
	ID        string    `json:"id"`
	ScannedAt time.Time `json:"scanned_at"`
	Cells     []uint32  `json:"cells"`
	RaftIndex
}

// scanUpdate interns an update id as a small ordinal for Computer cells.
type scanUpdate struct {
	ID  string `json:"id"`
	Ord uint32 `json:"ord"`
}

// UpdateCompliance is one update's explicit counts: computers whose latest scan names it, by
// state. Computers that do not name an update in the site's view are unknown for it.
type UpdateCompliance struct {
	UpdateID string `json:"update_id"`
	Counts   Counts `json:"counts"`
	RaftIndex
}

// BulletinCompliance is one bulletin's explicit counts: computers whose latest scan names at
// least one of its updates, by their bulletin state. The others are unknown for it.
type BulletinCompliance struct {
	BulletinID string `json:"bulletin_id"`
	Counts     Counts `json:"counts"`
	RaftIndex
}

// SiteCompliance is a site's totals: computers, compliant computers (no bulletin required), and
// the explicit cells by state.
type SiteCompliance struct {
	Key       string    `json:"key"`
	Computers int64     `json:"computers"`
	Compliant int64     `json:"compliant"`
	Cells     Counts    `json:"cells"`
	LastScan  time.Time `json:"last_scan"`
	RaftIndex
}

const siteComplianceKey = "site"

// ScanOutcome says what one batch did: scans stored (with their results), and the computers
// whose stored scan is newer than the one sent (ignored).
type ScanOutcome struct {
	Stored  int      `json:"stored"`
	Results int      `json:"results"`
	Older   []string `json:"older,omitempty"`
}

// ApplyScans stores a batch of validated scans, each replacing its computer's previous scan
// unless that one is newer, and moves the site's compliance counts by the difference.
func (s *Store) ApplyScans(idx uint64, scans []Scan) (*ScanOutcome, error) {
	out := &ScanOutcome{}
	err := s.write(func(txn *memdb.Txn) error {
		*out = ScanOutcome{}
		site, err := siteCompliance(txn)
		if err != nil {
			return err
		}
		agg := newComplianceDelta()
		ords := map[string]uint32{}
		for _, sc := range scans {
			if sc.ComputerID == "" {
				return fmt.Errorf("scan without computer id: %w", ErrInvalid)
			}
			raw, err := txn.First(tableComputers, "id", sc.ComputerID)
			if err != nil {
				return err
			}
			var old *Computer
			if raw != nil {
				old = raw.(*Computer)
				if old.ScannedAt.After(sc.ScannedAt) {
					out.Older = append(out.Older, sc.ComputerID)
					continue
				}
				if err := agg.computer(txn, old, -1); err != nil {
					return err
				}
			}
			row := &Computer{ID: sc.ComputerID, ScannedAt: sc.ScannedAt}
			for _, c := range sc.Cells {
				if c.State >= numStates {
					return fmt.Errorf("computer %s update %s: state %d: %w", sc.ComputerID, c.Update, c.State, ErrInvalid)
				}
				ord, ok := ords[c.Update]
				if !ok {
					var err error
					if ord, err = internUpdate(txn, idx, c.Update); err != nil {
						return err
					}
					ords[c.Update] = ord
				}
				row.Cells = append(row.Cells, ord<<2|uint32(c.State))
			}
			sort.Slice(row.Cells, func(i, j int) bool { return row.Cells[i] < row.Cells[j] })
			row.Cells = dedupCells(row.Cells)
			if err := agg.computer(txn, row, +1); err != nil {
				return err
			}
			if err := putRow(txn, tableComputers, idx, row.ID, row); err != nil {
				return err
			}
			if sc.ScannedAt.After(site.LastScan) {
				site.LastScan = sc.ScannedAt
			}
			out.Stored++
			out.Results += len(row.Cells)
		}
		if err := bumpIndex(txn, tableComputers, idx); err != nil {
			return err
		}
		return agg.commit(txn, idx, site)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dedupCells keeps one cell per update (the last one a scan listed wins after sorting by
// ordinal then state: the highest state; a scan naming an update twice is malformed anyway).
func dedupCells(cells []uint32) []uint32 {
	out := cells[:0]
	for i, c := range cells {
		if i+1 < len(cells) && cells[i+1]>>2 == c>>2 {
			continue
		}
		out = append(out, c)
	}
	return out
}

// internUpdate returns the ordinal of an update id, assigning the next one if it is new.
func internUpdate(txn *memdb.Txn, idx uint64, id string) (uint32, error) {
	raw, err := txn.First(tableScanUpdates, "id", id)
	if err != nil {
		return 0, err
	}
	if raw != nil {
		return raw.(*scanUpdate).Ord, nil
	}
	last, err := txn.Last(tableScanUpdates, "ord")
	if err != nil {
		return 0, err
	}
	var ord uint32
	if last != nil {
		ord = last.(*scanUpdate).Ord + 1
	}
	if ord >= 1<<30 {
		return 0, fmt.Errorf("too many distinct updates in scans: %w", ErrInvalid)
	}
	if err := txn.Insert(tableScanUpdates, &scanUpdate{ID: id, Ord: ord}); err != nil {
		return 0, err
	}
	return ord, bumpIndex(txn, tableScanUpdates, idx)
}

func updateOfOrd(txn *memdb.Txn, ord uint32) (string, error) {
	raw, err := txn.First(tableScanUpdates, "ord", ord)
	if err != nil || raw == nil {
		return "", err
	}
	return raw.(*scanUpdate).ID, nil
}

// complianceDelta accumulates count changes of a transaction and writes them once. It caches
// what it looks up per update ordinal and per bulletin: a batch of scans names the same
// updates over and over.
type complianceDelta struct {
	updates   map[string]*Counts
	bulletins map[string]*Counts
	computers int64
	compliant int64
	cells     Counts

	cellInfo map[uint32]*cellInfo
	sizes    map[string]int // bulletin id → its number of updates
	// The catalog's row sets in the delta's transaction, looked up on first use: the catalog
	// does not change while a delta is in use.
	updateRows, bulletinRows *rowSet
}

// cellInfo is what an update ordinal stands for under the current catalog.
type cellInfo struct {
	id        string
	inView    bool
	bulletins []string
}

func newComplianceDelta() *complianceDelta {
	return &complianceDelta{updates: map[string]*Counts{}, bulletins: map[string]*Counts{},
		cellInfo: map[uint32]*cellInfo{}, sizes: map[string]int{}}
}

func bump(m map[string]*Counts, key string, state int, sign int64) {
	c := m[key]
	if c == nil {
		c = &Counts{}
		m[key] = c
	}
	c[state] += sign
}

func (d *complianceDelta) info(txn *memdb.Txn, ord uint32) (*cellInfo, error) {
	if ci, ok := d.cellInfo[ord]; ok {
		return ci, nil
	}
	id, err := updateOfOrd(txn, ord)
	if err != nil {
		return nil, err
	}
	if d.updateRows == nil {
		if d.updateRows, err = readRows(txn, nil, tableUpdates); err != nil {
			return nil, err
		}
		if d.bulletinRows, err = readRows(txn, nil, tableBulletins); err != nil {
			return nil, err
		}
	}
	ci := &cellInfo{id: id}
	if d.updateRows.get(id) != nil {
		ci.inView = true
		for _, b := range d.bulletinRows.bulletinsOf(id) {
			ci.bulletins = append(ci.bulletins, b.ID)
			d.sizes[b.ID] = len(b.UpdateIDs)
		}
	}
	d.cellInfo[ord] = ci
	return ci, nil
}

// computer adds (sign +1) or removes (-1) one computer's contribution under the current
// catalog: its cells of updates in the site's view, its state for every bulletin it names an
// update of, and whether it is compliant.
func (d *complianceDelta) computer(txn *memdb.Txn, c *Computer, sign int64) error {
	type agg struct {
		required, unknown, installed bool
		named                        int
	}
	bulletins := map[string]*agg{}
	for _, cell := range c.Cells {
		ci, err := d.info(txn, cell>>2)
		if err != nil {
			return err
		}
		if !ci.inView {
			continue // not in the site's view (any more): it counts nowhere
		}
		state := int(cell & 3)
		bump(d.updates, ci.id, state, sign)
		d.cells[state] += sign
		for _, bid := range ci.bulletins {
			a := bulletins[bid]
			if a == nil {
				a = &agg{}
				bulletins[bid] = a
			}
			a.named++
			switch state {
			case StateRequired:
				a.required = true
			case StateUnknown:
				a.unknown = true
			case StateInstalled:
				a.installed = true
			}
		}
	}
	compliant := true
	for id, a := range bulletins {
		state := StateNotRequired
		switch {
		case a.required:
			state, compliant = StateRequired, false
		case a.unknown || a.named < d.sizes[id]:
			state = StateUnknown
		case a.installed:
			state = StateInstalled
		}
		bump(d.bulletins, id, state, sign)
	}
	d.computers += sign
	if compliant {
		d.compliant += sign
	}
	return nil
}

// commit writes the accumulated changes.
func (d *complianceDelta) commit(txn *memdb.Txn, idx uint64, site *SiteCompliance) error {
	for id, c := range d.updates {
		row := &UpdateCompliance{UpdateID: id}
		if raw, err := txn.First(tableUpdateCompliance, "id", id); err != nil {
			return err
		} else if raw != nil {
			row.Counts = raw.(*UpdateCompliance).Counts
		}
		row.Counts.Add(*c, 1)
		if err := putOrDrop(txn, tableUpdateCompliance, idx, id, row, row.Counts); err != nil {
			return err
		}
	}
	for id, c := range d.bulletins {
		row := &BulletinCompliance{BulletinID: id}
		if raw, err := txn.First(tableBulletinCompliance, "id", id); err != nil {
			return err
		} else if raw != nil {
			row.Counts = raw.(*BulletinCompliance).Counts
		}
		row.Counts.Add(*c, 1)
		if err := putOrDrop(txn, tableBulletinCompliance, idx, id, row, row.Counts); err != nil {
			return err
		}
	}
	site.Computers += d.computers
	site.Compliant += d.compliant
	site.Cells.Add(d.cells, 1)
	if err := putRow(txn, tableSiteCompliance, idx, siteComplianceKey, site); err != nil {
		return err
	}
	for _, t := range []string{tableUpdateCompliance, tableBulletinCompliance, tableSiteCompliance} {
		if err := bumpIndex(txn, t, idx); err != nil {
			return err
		}
	}
	return nil
}

// putOrDrop writes a counts row, or deletes it once every count is zero.
func putOrDrop(txn *memdb.Txn, table string, idx uint64, id string, row indexed, c Counts) error {
	if c == (Counts{}) {
		_, err := txn.DeleteAll(table, "id", id)
		return err
	}
	return putRow(txn, table, idx, id, row)
}

func siteCompliance(txn *memdb.Txn) (*SiteCompliance, error) {
	raw, err := txn.First(tableSiteCompliance, "id", siteComplianceKey)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return &SiteCompliance{Key: siteComplianceKey}, nil
	}
	c := *raw.(*SiteCompliance)
	return &c, nil
}

// recomputeCompliance rebuilds every count from the stored scans under the current catalog
// (after a catalog change: new updates are unknown for computers that did not scan for them,
// bulletins gain or lose updates). It runs in the transaction that changed the catalog.
func recomputeCompliance(txn *memdb.Txn, idx uint64) error {
	site, err := siteCompliance(txn)
	if err != nil {
		return err
	}
	if site.Computers == 0 {
		return nil
	}
	for _, t := range []string{tableUpdateCompliance, tableBulletinCompliance} {
		if _, err := txn.DeleteAll(t, "id"); err != nil {
			return err
		}
	}
	d := newComplianceDelta()
	it, err := txn.Get(tableComputers, "id")
	if err != nil {
		return err
	}
	var computers []*Computer
	for raw := it.Next(); raw != nil; raw = it.Next() {
		computers = append(computers, raw.(*Computer))
	}
	for _, c := range computers {
		if err := d.computer(txn, c, +1); err != nil {
			return err
		}
	}
	fresh := &SiteCompliance{Key: siteComplianceKey, LastScan: site.LastScan}
	return d.commit(txn, idx, fresh)
}

// ComplianceView is one consistent read of a site's compliance.
type ComplianceView struct {
	txn  *memdb.Txn
	Site SiteCompliance
}

// Compliance opens a consistent read of the site's compliance counts.
func (s *Store) Compliance(ws memdb.WatchSet) (*ComplianceView, error) {
	txn := s.db.Txn(false)
	site, err := siteCompliance(txn)
	if err != nil {
		return nil, err
	}
	if ch, _, err := txn.FirstWatch(tableIndex, "id", tableSiteCompliance); err == nil {
		ws.Add(ch)
	}
	return &ComplianceView{txn: txn, Site: *site}, nil
}

// Catalog is the catalog as of the same read transaction as the counts, so that what is
// counted and the catalog it is counted against are one consistent view.
func (v *ComplianceView) Catalog() (*CatalogView, error) {
	cv, err := catalogView(v.txn, nil)
	if err != nil {
		return nil, fmt.Errorf("read the catalog of a compliance view: %w", err)
	}
	return cv, nil
}

// Bulletin returns a bulletin's full counts: computers not naming any of its updates are unknown.
func (v *ComplianceView) Bulletin(id string) Counts {
	var c Counts
	if raw, err := v.txn.First(tableBulletinCompliance, "id", id); err == nil && raw != nil {
		c = raw.(*BulletinCompliance).Counts
	}
	c[StateUnknown] += v.Site.Computers - c.Sum()
	return c
}

// Update returns an update's full counts.
func (v *ComplianceView) Update(id string) Counts {
	var c Counts
	if raw, err := v.txn.First(tableUpdateCompliance, "id", id); err == nil && raw != nil {
		c = raw.(*UpdateCompliance).Counts
	}
	c[StateUnknown] += v.Site.Computers - c.Sum()
	return c
}

// ChildSummary is the newest compliance summary a child sent up, kept at its parent.
type ChildSummary struct {
	Child string `json:"child"`
	Seq   uint64 `json:"seq"`
	// Digest identifies the summary's content; AsOf is when the child built it, ReceivedAt
	// when it arrived, LastContact the child's last report (changed or not).
	Digest      string        `json:"digest"`
	AsOf        time.Time     `json:"as_of"`
	ReceivedAt  time.Time     `json:"received_at"`
	LastContact time.Time     `json:"last_contact"`
	Interval    time.Duration `json:"interval"`
	// Summary is the summary as compliance.Summary.Encode made it (zstd over JSON).
	Summary []byte `json:"summary,omitempty"`
	RaftIndex
}

// NextSummarySeq is the only sequence a child's next new summary may carry: one more than the
// stored one (1 when none is stored). The parent owns the sequence: a child cannot jump ahead
// and freeze its own reporting.
func NextSummarySeq(cur *ChildSummary) uint64 {
	if cur == nil {
		return 1
	}
	return cur.Seq + 1
}

// PutChildSummary stores a child's summary if its sequence is exactly the next one
// (NextSummarySeq); a report with the stored sequence and digest only records the contact. It
// returns whether the summary was stored, and why not. A sequence past the next one is
// ErrConflict and stores nothing.
func (s *Store) PutChildSummary(idx uint64, in *ChildSummary, run *ReplicationRun) (stored bool, reason string, err error) {
	err = s.write(func(txn *memdb.Txn) error {
		raw, err := txn.First(tableChildSummaries, "id", in.Child)
		if err != nil {
			return err
		}
		var cur *ChildSummary
		if raw != nil {
			cur = raw.(*ChildSummary)
		}
		switch {
		case len(in.Summary) > 0 && in.Seq > NextSummarySeq(cur):
			return fmt.Errorf("summary sequence %d of child %q does not follow the stored one: the next must be %d: %w",
				in.Seq, in.Child, NextSummarySeq(cur), ErrConflict)
		case cur == nil && in.Seq == 0:
			reason = "sequence 0 is older than the first, 1"
			return nil
		case cur != nil && in.Seq < cur.Seq:
			reason = fmt.Sprintf("sequence %d is older than the stored %d", in.Seq, cur.Seq)
			return nil
		case cur != nil && in.Seq == cur.Seq:
			if in.Digest != cur.Digest || len(in.Summary) > 0 {
				reason = fmt.Sprintf("sequence %d was already received (a replay)", in.Seq)
				return nil
			}
			row := *cur
			row.LastContact, row.Interval = in.LastContact, in.Interval
			reason = "unchanged"
			return upsertRow(txn, tableChildSummaries, idx, row.Child, &row)
		case len(in.Summary) == 0:
			reason = fmt.Sprintf("sequence %d carries no summary", in.Seq)
			return nil
		}
		row := *in
		stored = true
		if run != nil {
			r := *run
			if err := upsertRow(txn, tableRuns, idx, r.ID, &r); err != nil {
				return err
			}
		}
		return upsertRow(txn, tableChildSummaries, idx, row.Child, &row)
	})
	return stored, reason, err
}

// ChildSummary returns a child's newest summary, or nil.
func (s *Store) ChildSummary(ws memdb.WatchSet, child string) (*ChildSummary, error) {
	raw, err := first(s.db.Txn(false), ws, tableChildSummaries, child)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*ChildSummary), nil
}

// ChildSummaries lists the newest summary of every child.
func (s *Store) ChildSummaries(ws memdb.WatchSet) ([]*ChildSummary, error) {
	return all[*ChildSummary](s.db.Txn(false), ws, tableChildSummaries)
}

// EncodeScans encodes a batch of scans for one Raft entry (zstd over JSON: update ids repeat
// across computers and compress well).
func EncodeScans(scans []Scan) ([]byte, error) {
	buf, err := json.Marshal(scans)
	if err != nil {
		return nil, fmt.Errorf("encode scans: %w", err)
	}
	return batchEncoder.EncodeAll(buf, nil), nil
}

// DecodeScans decodes what EncodeScans made.
func DecodeScans(raw []byte) ([]Scan, error) {
	buf, err := batchDecoder.DecodeAll(raw, nil)
	if err != nil {
		return nil, err
	}
	var scans []Scan
	if err := json.Unmarshal(buf, &scans); err != nil {
		return nil, err
	}
	return scans, nil
}
