package compliance

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"patchtree/store"
)

// SiteReport is one site's line of the rolled-up compliance.
type SiteReport struct {
	Site       string       `json:"site"`
	Local      bool         `json:"local"` // this site's own computers
	Computers  int64        `json:"computers"`
	Compliant  int64        `json:"compliant"`
	Compliance *float64     `json:"compliance"` // compliant / computers
	Cells      store.Counts `json:"cells"`
	// Severities are the (computer, bulletin) pairs per state by bulletin severity.
	Severities map[string]store.Counts `json:"severities"`
	AsOf       time.Time               `json:"as_of"`
	// LastContact is the child's last report (changed or not); Stale is true when it has not
	// reported within its expected interval (Interval, plus a grace of half of it, at least 5s).
	LastContact *time.Time `json:"last_contact,omitempty"`
	Interval    string     `json:"interval,omitempty"`
	Stale       bool       `json:"stale"`
	Seq         uint64     `json:"seq,omitempty"`
	// Path is the site's path from the reporting site, whose name comes first ("hq",
	// "hq/emea", "hq/emea/emea-de"); Name its last part, Parent the path of the site above it
	// ("" for the reporting site), Depth its distance from the reporting site (0, 1, 2, ...).
	// Site is the path without the reporting site's name (its own name for itself): the key
	// the bulletin report's site filter takes.
	Path   string `json:"path"`
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
	Depth  int    `json:"depth"`
	// Subtree adds up the site and every site below it that reported, each once.
	Subtree *Totals `json:"subtree"`
}

// Overview is GET /v1/compliance: totals and one line per site.
type Overview struct {
	AsOf   time.Time    `json:"as_of"`
	Totals Totals       `json:"totals"`
	Sites  []SiteReport `json:"sites"`
}

// Totals add up every site.
type Totals struct {
	Sites      int                     `json:"sites"`
	StaleSites int                     `json:"stale_sites"`
	Computers  int64                   `json:"computers"`
	Compliant  int64                   `json:"compliant"`
	Compliance *float64                `json:"compliance"`
	Cells      store.Counts            `json:"cells"`
	Severities map[string]store.Counts `json:"severities"`
}

// Reporter answers the compliance reports of a site: its own summary (from its store) and, at
// a parent, its children's newest summaries. Decoded summaries are cached by (child, seq), and
// their bulletin rows kept summed (report_totals.go).
type Reporter struct {
	mu     sync.Mutex
	cache  map[string]*cachedSummary
	totals bulletinTotals
}

type cachedSummary struct {
	seq    uint64
	digest string
	sum    *Summary
}

// NewReporter returns a reporter.
func NewReporter() *Reporter {
	return &Reporter{cache: map[string]*cachedSummary{}, totals: bulletinTotals{}}
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b)
	return &v
}

// stale reports whether a child missed its expected report.
func stale(row *store.ChildSummary, now time.Time) bool {
	if row == nil {
		return false
	}
	return Stale(row.LastContact, row.Interval, now)
}

// Stale reports whether a site whose summary rule fires every interval, and which last
// reported at lastContact, missed its expected report: nothing within the interval plus a grace
// of half of it (at least 5 s). A site without interval is never stale.
func Stale(lastContact time.Time, interval time.Duration, now time.Time) bool {
	if interval <= 0 {
		return false
	}
	grace := max(interval/2, 5*time.Second)
	return now.Sub(lastContact) > interval+grace
}

// BulletinFilter selects the rows of the per-bulletin report.
type BulletinFilter struct {
	// Site selects one site by its key (SiteReport.Site: "emea", "emea/emea-de") or its path
	// ("hq/emea/emea-de"); with Subtree, also every site below it.
	Site     string
	Subtree  bool
	Severity string // the vendor's severity or the custom one, case-insensitive
	Vendor   string // case-insensitive
	// ReleasedFrom and ReleasedTo bound the release date ("YYYY-MM-DD", inclusive).
	ReleasedFrom, ReleasedTo string
	Bulletin                 string
}

// BulletinRow is one bulletin across the selected sites.
type BulletinRow struct {
	Bulletin       string   `json:"bulletin"`
	Title          string   `json:"title"`
	Vendor         string   `json:"vendor"`
	Severity       string   `json:"severity"`
	CustomSeverity string   `json:"custom_severity,omitempty"`
	Released       string   `json:"released"`
	Sites          int      `json:"sites"`
	Installed      int64    `json:"installed"`
	Required       int64    `json:"required"`
	NotRequired    int64    `json:"not_required"`
	Unknown        int64    `json:"unknown"`
	Applicable     int64    `json:"applicable"` // installed + required
	Compliance     *float64 `json:"compliance"` // installed / applicable
}

// Bulletins is the per-bulletin report across sites, sorted by release date (newest first),
// then id. Bulletin metadata comes from this site's catalog.
//
// Across every site (no site filter) the rows come from the pre-aggregated totals of the
// children's summaries, plus this site's own; a site filter sums the selected sites' rows.
func (r *Reporter) Bulletins(s *store.Store, self string, f BulletinFilter, now time.Time) ([]BulletinRow, error) {
	sites, totals, err := r.sitesWithTotals(s, self, now, f.Site == "")
	if err != nil {
		return nil, err
	}
	view, err := s.CatalogView(nil)
	if err != nil {
		return nil, err
	}
	rows := map[string]*BulletinRow{}
	skip := map[string]bool{}
	count := func(id string, c [4]int64, sites int) {
		if skip[id] || (f.Bulletin != "" && id != f.Bulletin) {
			return
		}
		row := rows[id]
		if row == nil {
			row = &BulletinRow{Bulletin: id}
			if b := view.Bulletin(id); b != nil {
				row.Title, row.Vendor, row.Severity, row.CustomSeverity, row.Released = b.Title, b.Vendor, b.Severity, b.CustomSeverity, b.Released
			}
			if !f.match(row) {
				skip[id] = true
				return
			}
			rows[id] = row
		}
		row.Sites += sites
		row.Installed += c[store.StateInstalled]
		row.Required += c[store.StateRequired]
		row.NotRequired += c[store.StateNotRequired]
		row.Unknown += c[store.StateUnknown]
	}
	found := f.Site == ""
	for id, bt := range totals {
		count(id, bt.c, bt.sites)
	}
	for _, ss := range sites {
		switch {
		case totals != nil && !ss.local:
			continue // counted in the totals
		case f.Site != "" && !ss.selected(self, f.Site, f.Subtree):
			continue
		}
		found = true
		for _, bc := range ss.sum.Bulletins {
			count(bc.ID, bc.C, 1)
		}
	}
	if !found {
		return nil, fmt.Errorf("site %q has no compliance summary here: %w", f.Site, store.ErrNotFound)
	}
	out := []BulletinRow{}
	for _, row := range rows {
		row.Applicable = row.Installed + row.Required
		row.Compliance = ratio(row.Installed, row.Applicable)
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Released != out[j].Released {
			return out[i].Released > out[j].Released
		}
		return out[i].Bulletin < out[j].Bulletin
	})
	return out, nil
}

func (f BulletinFilter) match(r *BulletinRow) bool {
	if f.Severity != "" && !strings.EqualFold(f.Severity, r.Severity) && !strings.EqualFold(f.Severity, r.CustomSeverity) {
		return false
	}
	if f.Vendor != "" && !strings.EqualFold(f.Vendor, r.Vendor) {
		return false
	}
	day := r.Released
	if len(day) > 10 {
		day = day[:10]
	}
	if f.ReleasedFrom != "" && (day == "" || day < f.ReleasedFrom) {
		return false
	}
	if f.ReleasedTo != "" && (day == "" || day > f.ReleasedTo) {
		return false
	}
	return true
}

// CSV writes bulletin rows as CSV with a header line.
func CSV(rows []BulletinRow) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"bulletin", "title", "vendor", "severity", "custom_severity", "released", "sites",
		"installed", "required", "not_required", "unknown", "applicable", "compliance"})
	for _, r := range rows {
		comp := ""
		if r.Compliance != nil {
			comp = strconv.FormatFloat(*r.Compliance, 'f', 4, 64)
		}
		w.Write([]string{r.Bulletin, r.Title, r.Vendor, r.Severity, r.CustomSeverity, r.Released, strconv.Itoa(r.Sites),
			strconv.FormatInt(r.Installed, 10), strconv.FormatInt(r.Required, 10), strconv.FormatInt(r.NotRequired, 10),
			strconv.FormatInt(r.Unknown, 10), strconv.FormatInt(r.Applicable, 10), comp})
	}
	w.Flush()
	return buf.Bytes()
}
