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
	// Path, Parent and Depth place the site in the tree (servers before relays send none);
	// Subtree adds up the site and every site below it.
	Path    string        `json:"path"`
	Parent  string        `json:"parent"`
	Depth   int           `json:"depth"`
	Subtree *subtreeTotal `json:"subtree"`
}

// subtreeTotal is a site's subtree totals in GET /v1/compliance.
type subtreeTotal struct {
	Sites      int        `json:"sites"`
	StaleSites int        `json:"stale_sites"`
	Computers  int64      `json:"computers"`
	Compliant  int64      `json:"compliant"`
	Compliance *float64   `json:"compliance"`
	Cells      cellCounts `json:"cells"`
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
	depth  int        // --by site: the deepest sites listed (-1: all)
	wide   bool       // tables: every column with its full header, however wide
	filter url.Values // the bulletin report's filters
	cf     *clientFlags
}

// path is the request path of the report; csv asks the server for CSV (bulletins only).
func (q *complianceQuery) path() string {
	if q.by == "site" {
		if q.depth >= 0 {
			return "/v1/compliance?depth=" + strconv.Itoa(q.depth)
		}
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
	fs := newFlags("compliance", "[--by site|bulletin] [--site NAME|PATH] [--depth N] [--subtree] [--severity S] [--vendor V] [--released-from D] [--released-to D] [flags]",
		"Compliance rolled up across the sites (at a parent: its children's newest summaries, those of\nthe sites below them, and its own computers; at a child: its own site). --by site (default)\nprints one line per site, by path below this site, and a TOTAL line; with relays, SUBTREE\ncolumns add up each site and the sites below it, and --depth N lists only the sites at most N\nbelow this one (totals still count every site). --by bulletin prints one line per bulletin\nacross the selected sites (--site, with --subtree also the sites below it), newest release\nfirst, filtered by severity (vendor's or custom), vendor and release date. COMPLIANCE % is\ncompliant / computers for sites, installed / (installed + required) for bulletins; REQUIRED and\nUNKNOWN count (computer, update) cells.")
	by := fs.String("by", "site", "site or bulletin")
	site := fs.String("site", "", "only this site: its name below this site (emea, emea/emea-de) or its path (hq/emea/emea-de)")
	depth := fs.Int("depth", -1, "list only the sites at most this many levels below this one (--by site)")
	subtree := fs.Bool("subtree", false, "with --site, also every site below it (--by bulletin)")
	severity := fs.String("severity", "", "bulletins of this severity, vendor's or custom (--by bulletin)")
	vendor := fs.String("vendor", "", "bulletins of this vendor (--by bulletin)")
	from := fs.String("released-from", "", "bulletins released on or after this day, YYYY-MM-DD (--by bulletin)")
	to := fs.String("released-to", "", "bulletins released on or before this day, YYYY-MM-DD (--by bulletin)")
	bulletin := fs.String("bulletin", "", "only this bulletin (--by bulletin)")
	wide := fs.Bool("wide", false, wideUsage+" (tables within 100 columns use short headers and leave some columns out)")
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
	q := &complianceQuery{by: *by, site: strings.TrimSpace(*site), depth: *depth, filter: url.Values{}, cf: cf, wide: *wide}
	if fs.Changed("site") && q.site == "" {
		return nil, usageError{errors.New("compliance: --site needs a site name")}
	}
	if fs.Changed("depth") && (q.by != "site" || q.depth < 0) {
		return nil, usageError{errors.New("compliance: --depth takes a number from 0, with --by site")}
	}
	if *subtree {
		if q.by != "bulletin" || q.site == "" {
			return nil, usageError{errors.New("compliance: --subtree goes with --by bulletin and --site")}
		}
		q.filter.Set("subtree", "true")
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
			if s.Site == q.site || s.Path == q.site {
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
	return printSites(w, &o, q.site == "", q.wide)
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
			Path string `json:"path"`
		}
		if json.Unmarshal(s, &name) == nil && (name.Site == site || name.Path == site) {
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

// hasRelays reports whether a listed site other than the reporting one has sites below it: the
// table and CSV then show subtree totals.
func hasRelays(sites []siteCompliance) bool {
	for i := range sites {
		if s := &sites[i]; !s.Local && s.Subtree != nil && s.Subtree.Sites > 1 {
			return true
		}
	}
	return false
}

// printSiteTable prints one line per site and, with total, a TOTAL line; with relays, each
// line also shows its subtree's computers and compliance.
func printSiteTable(w io.Writer, o *complianceOverview, total bool) error {
	return printSites(w, o, total, true)
}

// printSites prints the site table: with every column and its full header when wide, else
// within tableWidth columns (short headers, the time without seconds; with relays, the cell
// counts and time are left out for the SUBTREE columns).
func printSites(w io.Writer, o *complianceOverview, total, wide bool) error {
	tree := hasRelays(o.Sites)
	if !wide {
		return printSitesNarrow(w, o, total, tree)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "SITE\tCOMPUTERS\tCOMPLIANT\tCOMPLIANCE %\tREQUIRED CELLS\tUNKNOWN CELLS\tAS OF\tSTALE"
	if tree {
		head += "\tSUBTREE SITES\tSUBTREE COMPUTERS\tSUBTREE COMPLIANCE %"
	}
	fmt.Fprintln(tw, head)
	for i := range o.Sites {
		s := &o.Sites[i]
		stale := "no"
		if s.Stale {
			stale = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s", siteLabel(s), s.Computers, s.Compliant, percent(s.Compliance),
			s.Cells.Required, s.Cells.Unknown, asOf(s.AsOf), stale)
		if tree {
			sub := s.Subtree
			if sub == nil {
				sub = &subtreeTotal{}
			}
			fmt.Fprintf(tw, "\t%d\t%d\t%s", sub.Sites, sub.Computers, percent(sub.Compliance))
		}
		fmt.Fprintln(tw)
	}
	if total {
		t := &o.Totals
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%s\t%d\t%d\t%s\t%d of %d", t.Computers, t.Compliant, percent(t.Compliance),
			t.Cells.Required, t.Cells.Unknown, asOf(o.AsOf), t.StaleSites, t.Sites)
		if tree {
			fmt.Fprintf(tw, "\t%d\t%d\t%s", t.Sites, t.Computers, percent(t.Compliance))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printSitesNarrow is printSites within tableWidth columns.
func printSitesNarrow(w io.Writer, o *complianceOverview, total, tree bool) error {
	tw := newTable(w, false)
	if tree {
		fmt.Fprintln(tw, "SITE\tCOMPUTERS\tCOMPLIANT\tCOMPLIANCE %\tSTALE\tSUB SITES\tSUB COMPUTERS\tSUB %")
	} else {
		fmt.Fprintln(tw, "SITE\tCOMPUTERS\tCOMPLIANT\tCOMPLIANCE %\tREQUIRED\tUNKNOWN\tAS OF (UTC)\tSTALE")
	}
	for i := range o.Sites {
		s := &o.Sites[i]
		stale := "no"
		if s.Stale {
			stale = "yes"
		}
		label := truncate(siteLabel(s), 32)
		if tree {
			sub := s.Subtree
			if sub == nil {
				sub = &subtreeTotal{}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", label, s.Computers, s.Compliant, percent(s.Compliance), stale,
				sub.Sites, sub.Computers, percent(sub.Compliance))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", label, s.Computers, s.Compliant, percent(s.Compliance),
			s.Cells.Required, s.Cells.Unknown, shortAsOf(s.AsOf), stale)
	}
	if total {
		t := &o.Totals
		stale := fmt.Sprintf("%d of %d", t.StaleSites, t.Sites)
		if tree {
			fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", t.Computers, t.Compliant, percent(t.Compliance), stale,
				t.Sites, t.Computers, percent(t.Compliance))
		} else {
			fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", t.Computers, t.Compliant, percent(t.Compliance),
				t.Cells.Required, t.Cells.Unknown, shortAsOf(o.AsOf), stale)
		}
	}
	return tw.Flush()
}

// shortAsOf is asOf without the year and seconds.
func shortAsOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("01-02 15:04")
}

func asOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeSiteCSV writes one line per site with a header line (no total: sum the lines). A server
// that places sites in a tree (path) adds the columns path, parent, depth and the subtree
// totals: sum only the lines of one depth, or those of depth 0 or 1 with a subtree.
func writeSiteCSV(w io.Writer, sites []siteCompliance) error {
	cw := csv.NewWriter(w)
	tree := false
	for i := range sites {
		tree = tree || sites[i].Path != ""
	}
	head := []string{"site", "local", "computers", "compliant", "compliance", "installed", "required", "not_required", "unknown",
		"as_of", "last_contact", "interval", "stale", "seq"}
	if tree {
		head = append(head, "path", "parent", "depth", "subtree_sites", "subtree_stale_sites", "subtree_computers", "subtree_compliant", "subtree_compliance")
	}
	cw.Write(head)
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
		rec := []string{s.Site, strconv.FormatBool(s.Local), strconv.FormatInt(s.Computers, 10), strconv.FormatInt(s.Compliant, 10),
			ratioCSV(s.Compliance), strconv.FormatInt(s.Cells.Installed, 10), strconv.FormatInt(s.Cells.Required, 10),
			strconv.FormatInt(s.Cells.NotRequired, 10), strconv.FormatInt(s.Cells.Unknown, 10), as, last, s.Interval,
			strconv.FormatBool(s.Stale), seq}
		if tree {
			sub := s.Subtree
			if sub == nil {
				sub = &subtreeTotal{}
			}
			rec = append(rec, s.Path, s.Parent, strconv.Itoa(s.Depth), strconv.Itoa(sub.Sites), strconv.Itoa(sub.StaleSites),
				strconv.FormatInt(sub.Computers, 10), strconv.FormatInt(sub.Compliant, 10), ratioCSV(sub.Compliance))
		}
		cw.Write(rec)
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
	return printBulletins(w, ans.Bulletins, q.wide)
}

// severityCell shows the custom severity when one is set, else the vendor's; long ones (a vendor
// may qualify its severity in a sentence) are cut.
func severityCell(b *bulletinCompliance) string {
	if b.CustomSeverity != "" {
		return truncate(cell(b.CustomSeverity), 20) + " (custom)"
	}
	return orDash(truncate(cell(b.Severity), 24))
}

// printBulletins prints one line per bulletin; within tableWidth columns unless wide (short
// headers, the severity cut).
func printBulletins(w io.Writer, rows []bulletinCompliance, wide bool) error {
	tw := newTable(w, wide)
	if wide {
		fmt.Fprintln(tw, "BULLETIN\tSEVERITY\tRELEASED\tSITES\tINSTALLED\tREQUIRED\tNOT REQUIRED\tUNKNOWN\tCOMPLIANCE %")
	} else {
		fmt.Fprintln(tw, "BULLETIN\tSEVERITY\tRELEASED\tSITES\tINSTALLED\tREQUIRED\tNOT REQ\tUNKNOWN\tCOMPL %")
	}
	for i := range rows {
		b := &rows[i]
		released := b.Released
		if len(released) > 10 {
			released = released[:10]
		}
		sev := severityCell(b)
		if !wide {
			sev = truncate(sev, 20)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", b.Bulletin, sev, orDash(released), b.Sites,
			b.Installed, b.Required, b.NotRequired, b.Unknown, percent(b.Compliance))
	}
	return tw.Flush()
}
