package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/replication/feedgen"
	"patchtree/replication/importer"
)

func runCatalog(args []string) error {
	return dispatchSub("catalog", `Usage: patchtree catalog COMMAND

  import [SOURCE] [--complete]   import a feed file/URL or a CSAF provider (default: --catalog-source)
  import --upload FILE           stream a feed file on this machine to the leader and import it
  imports [ID] [--follow]        the imports, newest first; one import; follow one until it ends
  cancel ID                      cancel a running import; the catalog stays as it was
  show [BULLETIN]                the catalog, a filtered list of bulletins, or one bulletin
  generate [flags]               write a synthetic feed for tests and benchmarks
  severity list|add|order|delete|set   custom severity levels and their assignment
  disable|enable BULLETIN        take a bulletin out of (or back into) use

Run 'patchtree catalog COMMAND --help' for flags.`, args, []subcommand{
		{"import", runCatalogImport},
		{"imports", runCatalogImports},
		{"cancel", runCatalogCancel},
		{"show", runCatalogShow},
		{"generate", runCatalogGenerate},
		{"severity", runCatalogSeverity},
		{"disable", func(a []string) error { return runCatalogDisable("disable", a) }},
		{"enable", func(a []string) error { return runCatalogDisable("enable", a) }},
	})
}

func runCatalogImport(args []string) error {
	fs := newFlags("catalog import", "[SOURCE] [flags]",
		"Import the catalog at the parent from SOURCE (a feed file or URL, plain, gzip or zstd; or a\nCSAF 2.0 provider directory or URL ending in /), or from the server's --catalog-source.\nSOURCE is read by the leader; with --upload, SOURCE is a feed file on this machine, streamed to\nthe leader. Shows progress and exits non-zero if the import fails.")
	complete := fs.Bool("complete", false, "ignore the last import's validators and re-read everything; for CSAF also remove advisories the provider no longer has")
	kind := fs.String("kind", "", "source kind: native or csaf (default: detected)")
	include := fs.StringSlice("include-vendor", nil, "import only these vendors (repeatable)")
	exclude := fs.StringSlice("exclude-vendor", nil, "skip these vendors (repeatable)")
	deleteExcluded := fs.Bool("delete-excluded", false, "delete stored data of now-excluded vendors or languages")
	disableSuperseded := fs.Bool("disable-superseded", false, "mark updates that a newer update supersedes")
	noWait := fs.Bool("no-wait", false, "print the run id and return at once")
	upload := fs.Bool("upload", false, "SOURCE is a feed file on this machine: stream it to the leader and import it there (it need not be on the server's disk nor in --import-allow)")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{fmt.Errorf("catalog import takes at most one SOURCE")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	req := importer.Request{Kind: *kind, IncludeVendors: *include, ExcludeVendors: *exclude,
		DeleteExcluded: *deleteExcluded, DisableSuperseded: *disableSuperseded}
	if *complete {
		req.Mode = "complete"
	}
	if fs.NArg() == 1 {
		req.Source = localSource(fs.Arg(0))
	}
	var p importer.Progress
	var raw []byte
	if *upload {
		if fs.NArg() != 1 {
			return usageError{fmt.Errorf("catalog import --upload needs the feed FILE to upload")}
		}
		raw, err = uploadFeed(c, fs.Arg(0), req, &p)
	} else {
		raw, err = c.do(http.MethodPost, "/v1/catalog/import", req, &p)
	}
	if err != nil {
		return err
	}
	if *noWait {
		if cf.output == "json" {
			printJSON(raw)
		} else {
			fmt.Println(p.ID)
		}
		return nil
	}
	// Ctrl-C stops waiting, not the import: say how to cancel it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintf(os.Stderr, "\nimport %s continues at the server; follow it with: patchtree catalog imports %s --follow\n"+
				"  or cancel it with: patchtree catalog cancel %s\n", p.ID, p.ID, p.ID)
			os.Exit(130)
		}
	}()
	final, raw, err := waitImport(c, p.ID, isTerminal(os.Stderr) && cf.output != "json")
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else {
		printImport(final)
	}
	if final.State == "failed" || final.State == "cancelled" {
		return fmt.Errorf("import %s %s: %s", final.ID, final.State, final.Error)
	}
	return nil
}

func runCatalogCancel(args []string) error {
	fs := newFlags("catalog cancel", "ID [flags]",
		"Cancel a running import at the parent: it stops reading its source, drops what it staged and\nends \"cancelled\"; the catalog stays as it was. An import that already finished cannot be cancelled.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("catalog cancel needs exactly one import id")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var p importer.Progress
	raw, err := c.do(http.MethodDelete, "/v1/catalog/imports/"+url.PathEscape(fs.Arg(0)), nil, &p)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else {
		fmt.Printf("import %s: %s\n", p.ID, p.State)
	}
	return nil
}

// localSource makes a relative file path absolute, since the server resolves paths itself.
func localSource(src string) string {
	if strings.Contains(src, "://") || filepath.IsAbs(src) {
		return src
	}
	if abs, err := filepath.Abs(src); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs
		}
	}
	return src
}

// waitImport polls a run until it ends, drawing a progress bar on a terminal and printing one
// line per phase otherwise.
func waitImport(c *apiClient, id string, bar bool) (*importer.Progress, []byte, error) {
	lastPhase := ""
	for {
		var p importer.Progress
		raw, err := c.do(http.MethodGet, "/v1/catalog/imports/"+url.PathEscape(id), nil, &p)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case bar:
			fmt.Fprintf(os.Stderr, "\r%s", progressLine(&p))
		case p.Phase != lastPhase:
			fmt.Fprintf(os.Stderr, "import %s: %s (%d records, %s read)\n", p.ID, p.Phase, p.RecordsRead, mib(p.BytesRead))
		}
		lastPhase = p.Phase
		if p.State != "running" {
			if bar {
				fmt.Fprintln(os.Stderr)
			}
			return &p, raw, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// progressLine renders one line of the progress bar.
func progressLine(p *importer.Progress) string {
	const width = 30
	frac := 0.0
	if p.BytesTotal > 0 {
		frac = float64(p.BytesRead) / float64(p.BytesTotal)
	}
	if p.Phase != importer.PhaseFetching && p.Phase != importer.PhaseParsing {
		frac = 1
	}
	if frac > 1 {
		frac = 1
	}
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%% %-10s %8d records %s/%s   ", strings.Repeat("#", n), strings.Repeat(" ", width-n),
		frac*100, p.Phase, p.RecordsRead, mib(p.BytesRead), mib(p.BytesTotal))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func printImport(p *importer.Progress) {
	fmt.Printf("import %s: %s  (feed %s, %s source %s)\n", p.ID, p.State, p.Feed, p.Kind, p.Source)
	if p.Error != "" {
		fmt.Printf("  error: %s\n", p.Error)
		return
	}
	r := p.Result
	fmt.Printf("  bulletins  added %d, changed %d, removed %d, unchanged %d\n", r.Bulletins.Added, r.Bulletins.Changed, r.Bulletins.Removed, r.Bulletins.Unchanged)
	fmt.Printf("  updates    added %d, changed %d, removed %d, unchanged %d\n", r.Updates.Added, r.Updates.Changed, r.Updates.Removed, r.Updates.Unchanged)
	fmt.Printf("  skipped    %d updates and %d bulletins outside this site's languages or vendors\n", r.SkippedUpdates, r.SkippedBulletins)
	fmt.Printf("  catalog version %d, %s\n", p.CatalogVersion, p.FinishedAt.Sub(p.StartedAt).Round(time.Millisecond))
	for _, w := range r.Warnings {
		fmt.Printf("  warning: %s\n", w)
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runCatalogShow(args []string) error {
	fs := newFlags("catalog show", "[BULLETIN] [flags]", "Show the catalog and its bulletins (filtered and paged), or one bulletin with its updates.")
	lang := fs.String("language", "", "only bulletins with an update in this language range")
	sev := fs.String("severity", "", "only bulletins with this vendor or custom severity")
	vendor := fs.String("vendor", "", "only this vendor's bulletins")
	q := fs.String("q", "", "only bulletins whose id, title or CVEs contain this text")
	page := fs.Int("page", 1, "page number")
	perPage := fs.Int("per-page", 50, "bulletins per page")
	wide := fs.Bool("wide", false, wideUsage+" (titles are cut at 100 columns otherwise)")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() == 1 {
		return showBulletin(c, cf, fs.Arg(0), *wide)
	}
	if fs.NArg() > 1 {
		return usageError{fmt.Errorf("catalog show takes at most one bulletin id")}
	}
	v := url.Values{}
	for k, val := range map[string]string{"language": *lang, "severity": *sev, "vendor": *vendor, "q": *q} {
		if val != "" {
			v.Set(k, val)
		}
	}
	v.Set("page", fmt.Sprint(*page))
	v.Set("per_page", fmt.Sprint(*perPage))
	var list struct {
		Version   uint64 `json:"version"`
		Total     int    `json:"total"`
		Bulletins []struct {
			ID, Vendor, Title, Severity, Released string
			CustomSeverity                        string `json:"custom_severity"`
			Updates                               int
			Disabled                              bool
		} `json:"bulletins"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/catalog/bulletins?"+v.Encode(), nil, &list); printed || err != nil {
		return err
	}
	var info struct {
		Version   uint64 `json:"version"`
		Bulletins int    `json:"bulletins"`
		Updates   int    `json:"updates"`
	}
	if _, err := c.do(http.MethodGet, "/v1/catalog", nil, &info); err != nil {
		return err
	}
	fmt.Printf("catalog version %d: %d bulletins, %d updates; %d match, page %d\n\n", info.Version, info.Bulletins, info.Updates, list.Total, *page)
	tw := newTable(os.Stdout, *wide)
	fmt.Fprintln(tw, "ID\tRELEASED\tSEVERITY\tUPDATES\tTITLE")
	for _, b := range list.Bulletins {
		sev := b.Severity
		if b.CustomSeverity != "" {
			sev += " [" + b.CustomSeverity + "]"
		}
		title := b.Title
		if b.Disabled {
			title = "(disabled) " + title
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", b.ID, b.Released, sev, b.Updates, title)
	}
	return tw.Flush()
}

func showBulletin(c *apiClient, cf *clientFlags, id string, wide bool) error {
	var resp struct {
		Bulletin struct {
			ID, Vendor, Title, Severity, Released, Revised, Description, Feed string
			CustomSeverity                                                    string `json:"custom_severity"`
			CVEs                                                              []string
			Disabled                                                          bool
		} `json:"bulletin"`
		Updates []struct {
			ID, Title, Language string
			FileName            string `json:"file_name"`
			Superseded          bool
		} `json:"updates"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/catalog/bulletins/"+url.PathEscape(id), nil, &resp); printed || err != nil {
		return err
	}
	b := resp.Bulletin
	fmt.Printf("%s  %s\n  vendor %s, severity %s, custom severity %q, released %s, revised %s, feed %s, disabled %t\n  CVEs %s\n\n%s\n\n",
		b.ID, b.Title, b.Vendor, b.Severity, b.CustomSeverity, b.Released, b.Revised, b.Feed, b.Disabled, strings.Join(b.CVEs, ", "), b.Description)
	tw := newTable(os.Stdout, wide)
	fmt.Fprintln(tw, "UPDATE\tLANGUAGE\tFILE\tTITLE")
	for _, u := range resp.Updates {
		lang := u.Language
		if lang == "" {
			lang = "(neutral)"
		}
		title := u.Title
		if u.Superseded {
			title += " (superseded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, lang, u.FileName, title)
	}
	return tw.Flush()
}

func runCatalogGenerate(args []string) error {
	fs := newFlags("catalog generate", "[flags]",
		"Write a deterministic synthetic patchtree.catalog/v1 feed shaped like the Mozilla catalog\n(record sizes, sharing, supersedence, severities), for tests and benchmarks.")
	var o feedgen.Options
	fs.IntVar(&o.Bulletins, "bulletins", 0, "bulletins (default 1118, or derived from --updates)")
	fs.IntVar(&o.Languages, "languages", 0, fmt.Sprintf("distinct languages, at most %d (default 100)", feedgen.MaxLanguages))
	fs.IntVar(&o.Updates, "updates", 0, "total updates (default: derived from --bulletins)")
	fs.Int64Var(&o.Seed, "seed", 1, "random seed; the same flags give the same bytes")
	fs.StringVar(&o.Feed, "feed", "synthetic", "feed name")
	out := fs.StringP("out", "o", "-", "output file (- for stdout)")
	compress := fs.String("compress", "", "compress the output: gzip or zstd (default: by the file's extension .gz/.zst)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("catalog generate takes no arguments")}
	}
	if *compress == "" {
		switch {
		case strings.HasSuffix(*out, ".gz"):
			*compress = "gzip"
		case strings.HasSuffix(*out, ".zst"):
			*compress = "zstd"
		}
	}
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	var closer io.Closer
	switch *compress {
	case "":
	case "gzip":
		gz := gzip.NewWriter(w)
		w, closer = gz, gz
	case "zstd":
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		w, closer = zw, zw
	default:
		return usageError{fmt.Errorf("--compress must be gzip or zstd, not %q", *compress)}
	}
	stats, err := feedgen.Generate(w, o)
	if err != nil {
		return err
	}
	if closer != nil {
		if err := closer.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "generated %d bulletins, %d updates in %d languages (%s)\n", stats.Bulletins, stats.Updates, stats.Languages, mib(stats.Bytes))
	return nil
}

func runCatalogSeverity(args []string) error {
	fs := newFlags("catalog severity", "list | add NAME [--position N] | order NAME... | delete NAME | set BULLETIN LEVEL",
		"Custom severity levels (most severe first) and their assignment to bulletins; 'set BULLETIN \"\"' clears one.")
	position := fs.Int("position", -1, "for add: 0 puts the level first (most severe); default last")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	a := fs.Args()
	var raw []byte
	switch {
	case len(a) == 0 || a[0] == "list":
		var resp struct {
			Levels []struct{ Name string } `json:"levels"`
		}
		if raw, err = c.do(http.MethodGet, "/v1/catalog/severities", nil, &resp); err == nil && cf.output != "json" {
			for i, l := range resp.Levels {
				fmt.Printf("%d  %s\n", i, l.Name)
			}
			return nil
		}
	case a[0] == "add" && len(a) == 2:
		body := map[string]any{"name": a[1]}
		if *position >= 0 {
			body["position"] = *position
		}
		raw, err = c.do(http.MethodPost, "/v1/catalog/severities", body, nil)
	case a[0] == "order":
		raw, err = c.do(http.MethodPut, "/v1/catalog/severities", map[string]any{"levels": a[1:]}, nil)
	case a[0] == "delete" && len(a) == 2:
		raw, err = c.do(http.MethodDelete, "/v1/catalog/severities/"+url.PathEscape(a[1]), nil, nil)
	case a[0] == "set" && len(a) == 3:
		raw, err = c.do(http.MethodPut, "/v1/catalog/bulletins/"+url.PathEscape(a[1])+"/custom-severity", map[string]string{"severity": a[2]}, nil)
	default:
		return usageError{fmt.Errorf("catalog severity: want list, add NAME, order NAME..., delete NAME or set BULLETIN LEVEL")}
	}
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else {
		fmt.Println("ok")
	}
	return nil
}

func runCatalogDisable(verb string, args []string) error {
	fs := newFlags("catalog "+verb, "BULLETIN [flags]", "Disable a bulletin (it stays in the catalog, marked) or enable it again.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("catalog %s needs exactly one bulletin id", verb)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.do(http.MethodPatch, "/v1/catalog/bulletins/"+url.PathEscape(fs.Arg(0)), map[string]bool{"disabled": verb == "disable"}, nil)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else {
		fmt.Printf("%sd %s\n", verb, fs.Arg(0))
	}
	return nil
}
