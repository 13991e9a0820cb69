package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cellCounts are the (computer, update) cells of a site in each state.
type cellCounts struct {
	Installed   int64 `json:"installed"`
	Required    int64 `json:"required"`
	NotRequired int64 `json:"not_required"`
	Unknown     int64 `json:"unknown"`
}

// siteCompliance is one site's line of GET /v1/compliance.
type siteCompliance struct {
	Site        string     `json:"site"`
	Local       bool       `json:"local"`
	Computers   int64      `json:"computers"`
	Compliant   int64      `json:"compliant"`
	Compliance  *float64   `json:"compliance"`
	Cells       cellCounts `json:"cells"`
	AsOf        time.Time  `json:"as_of"`
	LastContact *time.Time `json:"last_contact"`
	Interval    string     `json:"interval"`
	Stale       bool       `json:"stale"`
	Seq         uint64     `json:"seq"`
}

// complianceOverview is GET /v1/compliance.
type complianceOverview struct {
	AsOf   time.Time `json:"as_of"`
	Totals struct {
		Sites      int        `json:"sites"`
		StaleSites int        `json:"stale_sites"`
		Computers  int64      `json:"computers"`
		Compliant  int64      `json:"compliant"`
		Compliance *float64   `json:"compliance"`
		Cells      cellCounts `json:"cells"`
	} `json:"totals"`
	Sites []siteCompliance `json:"sites"`
}

// bulletinCompliance is one row of GET /v1/compliance/bulletins.
type bulletinCompliance struct {
	Bulletin       string   `json:"bulletin"`
	Title          string   `json:"title"`
	Vendor         string   `json:"vendor"`
	Severity       string   `json:"severity"`
	CustomSeverity string   `json:"custom_severity"`
	Released       string   `json:"released"`
	Sites          int      `json:"sites"`
	Installed      int64    `json:"installed"`
	Required       int64    `json:"required"`
	NotRequired    int64    `json:"not_required"`
	Unknown        int64    `json:"unknown"`
	Applicable     int64    `json:"applicable"`
	Compliance     *float64 `json:"compliance"`
}

// complianceQuery is a parsed compliance command.
type complianceQuery struct {
	by     string // site or bulletin
	site   string
	filter url.Values // the bulletin report's filters
	cf     *clientFlags
}

// path is the request path of the report; csv asks the server for CSV (bulletins only).
func (q *complianceQuery) path() string {
	if q.by == "site" {
		return "/v1/compliance"
	}
	v := url.Values{}
	for k, vs := range q.filter {
		v[k] = vs
	}
	if q.site != "" {
		v.Set("site", q.site)
	}
	if q.cf.output == "csv" {
		v.Set("format", "csv")
	}
	if len(v) == 0 {
		return "/v1/compliance/bulletins"
	}
	return "/v1/compliance/bulletins?" + v.Encode()
}

// parseCompliance parses the flags of the compliance command.
func parseCompliance(args []string) (*complianceQuery, error) {
	fs := newFlags("compliance", "[--by site|bulletin] [--site NAME] [--severity S] [--vendor V] [--released-from D] [--released-to D] [flags]",
		"Compliance rolled up across the sites (at a parent: its children's newest summaries and its\nown computers; at a child: its own site). --by site (default) prints one line per site and a\nTOTAL line; --by bulletin one line per bulletin across the selected sites, newest release\nfirst, filtered by severity (vendor's or custom), vendor and release date. COMPLIANCE % is\ncompliant / computers for sites, installed / (installed + required) for bulletins; REQUIRED and\nUNKNOWN count (computer, update) cells.")
	by := fs.String("by", "site", "site or bulletin")
	site := fs.String("site", "", "only this site")
	severity := fs.String("severity", "", "bulletins of this severity, vendor's or custom (--by bulletin)")
	vendor := fs.String("vendor", "", "bulletins of this vendor (--by bulletin)")
	from := fs.String("released-from", "", "bulletins released on or after this day, YYYY-MM-DD (--by bulletin)")
	to := fs.String("released-to", "", "bulletins released on or before this day, YYYY-MM-DD (--by bulletin)")
	bulletin := fs.String("bulletin", "", "only this bulletin (--by bulletin)")
	cf := addClientFlags(fs)
	fs.Lookup("output").Usage = "output format: table, json or csv"
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("compliance takes no arguments, got %q", fs.Arg(0))}
	}
	switch cf.output {
	case "table", "json", "csv":
	default:
		return nil, usageError{fmt.Errorf("--output must be table, json or csv, not %q", cf.output)}
	}
	q := &complianceQuery{by: *by, site: strings.TrimSpace(*site), filter: url.Values{}, cf: cf}
	if fs.Changed("site") && q.site == "" {
		return nil, usageError{errors.New("compliance: --site needs a site name")}
	}
	for _, f := range []struct{ flag, param, value string }{
		{"severity", "severity", *severity}, {"vendor", "vendor", *vendor},
		{"released-from", "released_from", *from}, {"released-to", "released_to", *to},
		{"bulletin", "bulletin", *bulletin},
	} {
		if !fs.Changed(f.flag) {
			continue
		}
		v := strings.TrimSpace(f.value)
		if v == "" {
			return nil, usageError{fmt.Errorf("compliance: --%s needs a value", f.flag)}
		}
		if strings.HasPrefix(f.flag, "released-") {
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				return nil, usageError{fmt.Errorf("compliance: --%s must be a day YYYY-MM-DD, not %q", f.flag, v)}
			}
		}
		q.filter.Set(f.param, v)
	}
	switch q.by {
	case "site":
		if len(q.filter) > 0 {
			return nil, usageError{errors.New("compliance: --severity, --vendor, --released-from, --released-to and --bulletin filter bulletins; use them with --by bulletin")}
		}
	case "bulletin":
		if f, t := q.filter.Get("released_from"), q.filter.Get("released_to"); f != "" && t != "" && f > t {
			return nil, usageError{fmt.Errorf("compliance: --released-from %s is after --released-to %s", f, t)}
		}
	default:
		return nil, usageError{fmt.Errorf("compliance: --by must be site or bulletin, not %q", q.by)}
	}
	return q, nil
}

func runCompliance(args []string) error {
	q, err := parseCompliance(args)
	if err != nil {
		return err
	}
	c := q.cf.newClient()
	if q.by == "bulletin" {
		return complianceByBulletin(c, q, os.Stdout)
	}
	return complianceBySite(c, q, os.Stdout)
}

func complianceBySite(c *apiClient, q *complianceQuery, w io.Writer) error {
	var o complianceOverview
	raw, err := c.do(http.MethodGet, q.path(), nil, &o)
	if err != nil {
		return err
	}
	if q.site != "" {
		var sel []siteCompliance
		for _, s := range o.Sites {
			if s.Site == q.site {
				sel = append(sel, s)
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("site %q has no compliance summary at %s", q.site, c.base)
		}
		o.Sites = sel
	}
	switch q.cf.output {
	case "json":
		if q.site == "" {
			printJSON(raw)
			return nil
		}
		// The server has no site filter: print the selected site's line as the server wrote it.
		return printSelectedSite(w, raw, q.site)
	case "csv":
		return writeSiteCSV(w, o.Sites)
	}
	return printSiteTable(w, &o, q.site == "")
}

// printSelectedSite prints the server's JSON line of one site.
func printSelectedSite(w io.Writer, raw []byte, site string) error {
	var o struct {
		Sites []json.RawMessage `json:"sites"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return err
	}
	for _, s := range o.Sites {
		var name struct {
			Site string `json:"site"`
		}
		if json.Unmarshal(s, &name) == nil && name.Site == site {
			var buf bytes.Buffer
			if err := json.Indent(&buf, s, "", "  "); err != nil {
				return err
			}
			buf.WriteByte('\n')
			_, err := w.Write(buf.Bytes())
			return err
		}
	}
	return fmt.Errorf("site %q has no compliance summary", site)
}

// percent formats a ratio as a percentage ("-" when there is none).
func percent(r *float64) string {
	if r == nil {
		return "-"
	}
	return strconv.FormatFloat(*r*100, 'f', 1, 64)
}

// ratioCSV formats a ratio for CSV as the server does (4 decimals, empty when there is none).
func ratioCSV(r *float64) string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(*r, 'f', 4, 64)
}

// siteLabel names a site in the table; the reporting site's own computers are marked.
func siteLabel(s *siteCompliance) string {
	if s.Local {
		return s.Site + " (local)"
	}
	return s.Site
}

// printSiteTable prints one line per site and, with total, a TOTAL line.
func printSiteTable(w io.Writer, o *complianceOverview, total bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCOMPUTERS\tCOMPLIANT\tCOMPLIANCE %\tREQUIRED CELLS\tUNKNOWN CELLS\tAS OF\tSTALE")
	for i := range o.Sites {
		s := &o.Sites[i]
		stale := "no"
		if s.Stale {
			stale = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", siteLabel(s), s.Computers, s.Compliant, percent(s.Compliance),
			s.Cells.Required, s.Cells.Unknown, asOf(s.AsOf), stale)
	}
	if total {
		t := &o.Totals
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%s\t%d\t%d\t%s\t%d of %d\n", t.Computers, t.Compliant, percent(t.Compliance),
			t.Cells.Required, t.Cells.Unknown, asOf(o.AsOf), t.StaleSites, t.Sites)
	}
	return tw.Flush()
}

func asOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeSiteCSV writes one line per site with a header line (no total: sum the lines).
func writeSiteCSV(w io.Writer, sites []siteCompliance) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"site", "local", "computers", "compliant", "compliance", "installed", "required", "not_required", "unknown",
		"as_of", "last_contact", "interval", "stale", "seq"})
	for _, s := range sites {
		last := ""
		if s.LastContact != nil {
			last = s.LastContact.UTC().Format(time.RFC3339)
		}
		as := ""
		if !s.AsOf.IsZero() {
			as = s.AsOf.UTC().Format(time.RFC3339)
		}
		seq := ""
		if s.Seq > 0 {
			seq = strconv.FormatUint(s.Seq, 10)
		}
		cw.Write([]string{s.Site, strconv.FormatBool(s.Local), strconv.FormatInt(s.Computers, 10), strconv.FormatInt(s.Compliant, 10),
			ratioCSV(s.Compliance), strconv.FormatInt(s.Cells.Installed, 10), strconv.FormatInt(s.Cells.Required, 10),
			strconv.FormatInt(s.Cells.NotRequired, 10), strconv.FormatInt(s.Cells.Unknown, 10), as, last, s.Interval,
			strconv.FormatBool(s.Stale), seq})
	}
	cw.Flush()
	return cw.Error()
}

func complianceByBulletin(c *apiClient, q *complianceQuery, w io.Writer) error {
	if q.cf.output == "csv" {
		raw, err := c.do(http.MethodGet, q.path(), nil, nil)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	var ans struct {
		AsOf      time.Time            `json:"as_of"`
		Bulletins []bulletinCompliance `json:"bulletins"`
	}
	raw, err := c.do(http.MethodGet, q.path(), nil, &ans)
	if err != nil {
		return err
	}
	if q.cf.output == "json" {
		printJSON(raw)
		return nil
	}
	return printBulletinTable(w, ans.Bulletins)
}

// severityCell shows the custom severity when one is set, else the vendor's; long ones (a vendor
// may qualify its severity in a sentence) are cut.
func severityCell(b *bulletinCompliance) string {
	if b.CustomSeverity != "" {
		return truncate(cell(b.CustomSeverity), 20) + " (custom)"
	}
	return orDash(truncate(cell(b.Severity), 24))
}

// printBulletinTable prints one line per bulletin.
func printBulletinTable(w io.Writer, rows []bulletinCompliance) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BULLETIN\tSEVERITY\tRELEASED\tSITES\tINSTALLED\tREQUIRED\tNOT REQUIRED\tUNKNOWN\tCOMPLIANCE %")
	for i := range rows {
		b := &rows[i]
		released := b.Released
		if len(released) > 10 {
			released = released[:10]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", b.Bulletin, severityCell(b), orDash(released), b.Sites,
			b.Installed, b.Required, b.NotRequired, b.Unknown, percent(b.Compliance))
	}
	return tw.Flush()
}
