package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const scanUsage = `Usage: patchtree scan submit FILE|- [--ndjson] [flags]

Post system assessment scans to a site (roles agent and admin): FILE holds one computer's scan
as a JSON object, or one scan per line (NDJSON) when its name ends in .ndjson or with --ndjson;
- reads standard input. See docs/compliance.md for the format.`

// scanStdin is what "scan submit -" reads.
var scanStdin io.Reader = os.Stdin

// scanTimeout bounds one submission: a batch may be large (the server takes up to 256 MiB).
const scanTimeout = 10 * time.Minute

// scanErrorsShown is how many of the server's listed errors the table shows.
const scanErrorsShown = 20

// scanError is one rejected record of a submission.
type scanError struct {
	Line       int    `json:"line"`
	ComputerID string `json:"computer_id"`
	UpdateID   string `json:"update_id"`
	Error      string `json:"error"`
}

// scanResult answers POST /v1/scans.
type scanResult struct {
	Received      int         `json:"received"`
	Stored        int         `json:"stored"`
	ResultsStored int         `json:"results_stored"`
	Rejected      int         `json:"rejected"`
	Errors        []scanError `json:"errors"`
}

func runScan(args []string) error {
	return dispatchSub("scan", scanUsage, args, []subcommand{{"submit", runScanSubmit}})
}

// scanSubmit is a parsed "scan submit".
type scanSubmit struct {
	file   string // "-" for standard input
	ndjson bool
	cf     *clientFlags
}

// parseScanSubmit parses the flags and the FILE argument of scan submit.
func parseScanSubmit(args []string) (*scanSubmit, error) {
	fs := newFlags("scan submit", "FILE|- [--ndjson] [flags]",
		"Post scans to the site: one JSON scan, or NDJSON (one scan per line) when FILE ends in\n.ndjson or with --ndjson; - reads standard input. Prints what the site stored and the first\nrejected records; rejected records do not fail the command (their count goes to stderr).")
	ndjson := fs.Bool("ndjson", false, "the body is NDJSON (one scan per line)")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
		return nil, usageError{fmt.Errorf("scan submit needs exactly one FILE (or - for standard input)")}
	}
	if _, err := cf.client(); err != nil { // checks --output
		return nil, err
	}
	file := fs.Arg(0)
	return &scanSubmit{file: file, ndjson: *ndjson || strings.HasSuffix(strings.ToLower(file), ".ndjson"), cf: cf}, nil
}

// path is the request path of the submission.
func (s *scanSubmit) path() string {
	if s.ndjson {
		return "/v1/scans?format=ndjson"
	}
	return "/v1/scans"
}

// request builds the POST: a file is streamed (and re-opened should the request be re-sent),
// standard input is streamed once.
func (s *scanSubmit) request(base string) (*http.Request, func(), error) {
	url := base + s.path()
	if s.file == "-" {
		req, err := http.NewRequest(http.MethodPost, url, io.NopCloser(scanStdin))
		if err != nil {
			return nil, nil, fmt.Errorf("bad server URL %q: %w", base, err)
		}
		return req, func() {}, nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is a directory", s.file)
	}
	req, err := http.NewRequest(http.MethodPost, url, f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("bad server URL %q: %w", base, err)
	}
	req.ContentLength = st.Size()
	req.GetBody = func() (io.ReadCloser, error) { return os.Open(s.file) }
	return req, func() { f.Close() }, nil
}

func runScanSubmit(args []string) error {
	s, err := parseScanSubmit(args)
	if err != nil {
		return err
	}
	c := s.cf.newClient()
	c.http.Timeout = scanTimeout
	req, done, err := s.request(c.base)
	if err != nil {
		return err
	}
	defer done()
	contentType := "application/json"
	if s.ndjson {
		contentType = "application/x-ndjson"
	}
	var res scanResult
	raw, err := c.send(req, contentType, &res)
	if err != nil {
		return err
	}
	if s.cf.output == "json" {
		printJSON(raw)
	} else if err := printScanResult(os.Stdout, &res); err != nil {
		return err
	}
	if res.Rejected > 0 {
		fmt.Fprintf(os.Stderr, "patchtree: scan submit: %d record(s) rejected\n", res.Rejected)
	}
	return nil
}

// printScanResult prints the counts of a submission, then its first errors.
func printScanResult(w io.Writer, r *scanResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Received:\t%d scans\n", r.Received)
	fmt.Fprintf(tw, "Stored:\t%d scans\n", r.Stored)
	fmt.Fprintf(tw, "Results stored:\t%d\n", r.ResultsStored)
	fmt.Fprintf(tw, "Rejected:\t%d\n", r.Rejected)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tCOMPUTER\tUPDATE\tERROR")
	shown := r.Errors[:min(len(r.Errors), scanErrorsShown)]
	for _, e := range shown {
		line := "-"
		if e.Line > 0 {
			line = fmt.Sprint(e.Line)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", line, orDash(cell(e.ComputerID)), orDash(cell(e.UpdateID)), truncate(cell(e.Error), 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more := r.Rejected - len(shown); more > 0 {
		fmt.Fprintf(w, "... and %d more (--output json lists up to 1,000)\n", more)
	}
	return nil
}
