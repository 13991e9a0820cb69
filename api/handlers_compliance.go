package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"patchtree/replication/compliance"
	"patchtree/replication/hierarchy"
)

// Uplink is a child site's side of the upward flow (hierarchy.Child implements it).
type Uplink interface {
	SendSummary(ctx context.Context, trigger string) (*hierarchy.SummaryResult, error)
}

// scansResponse answers POST /v1/scans.
type scansResponse struct {
	// Received counts the scans in the request (every object, or every non-blank line).
	Received      int `json:"received"`
	Stored        int `json:"stored"`
	ResultsStored int `json:"results_stored"`
	// Older lists computers whose stored scan is newer than the one sent: ignored.
	Older    []string                 `json:"older"`
	Rejected int                      `json:"rejected"`
	Errors   []compliance.RecordError `json:"errors"`
}

func (s *Server) postScans(r *http.Request) (int, any, error) {
	ndjson := false
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
	case "ndjson":
		ndjson = true
	default:
		return 0, nil, fmt.Errorf("%w: format must be json or ndjson, not %q", ErrBadRequest, f)
	}
	view, err := s.backend.State().CatalogView(nil)
	if err != nil {
		return 0, nil, err
	}
	// A request names the same updates for computer after computer: look each up once.
	known := map[string]bool{}
	exists := func(id string) bool {
		ok, seen := known[id]
		if !seen {
			ok = view.Update(id) != nil
			known[id] = ok
		}
		return ok
	}
	parsed, err := compliance.Parse(r.Body, ndjson, exists, time.Now())
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return 0, nil, fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, tooBig.Limit)
		case errors.Is(err, compliance.ErrTooLarge):
			return 0, nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return 0, nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	resp := scansResponse{Received: parsed.Received, Rejected: parsed.ErrorCount, Errors: parsed.Errors, Older: []string{}}
	if resp.Errors == nil {
		resp.Errors = []compliance.RecordError{}
	}
	out, err := s.backend.ApplyScans(parsed.Scans)
	if out != nil {
		resp.Stored, resp.ResultsStored = out.Stored, out.Results
		resp.Older = append(resp.Older, out.Older...)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("stored %d of %d scans, then: %w", resp.Stored, len(parsed.Scans), err)
	}
	return http.StatusOK, resp, nil
}

// siteName is this site's name.
func (s *Server) siteName() string {
	if site, err := s.backend.State().Site(nil); err == nil && site != nil {
		return site.Name
	}
	return ""
}

// getCompliance answers GET /v1/compliance[?depth=N]: depth lists only the sites at most N
// below this one (0: this site's own line); the totals count every site.
func (s *Server) getCompliance(r *http.Request) (int, any, error) {
	depth := -1
	if v := r.URL.Query().Get("depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxReportDepth {
			return 0, nil, fmt.Errorf("%w: depth must be a whole number from 0 to %d, not %q", ErrBadRequest, maxReportDepth, v)
		}
		depth = n
	}
	o, err := s.reporter.OverviewDepth(s.backend.State(), s.siteName(), time.Now(), depth)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, o, nil
}

// maxReportDepth bounds the depth parameter of GET /v1/compliance (a site's path holds at most
// hierarchy.MaxSubtreePathBytes bytes, so no tree is deeper than this).
const maxReportDepth = hierarchy.MaxSubtreePathBytes

var dayRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

type bulletinsReport struct {
	AsOf      time.Time                `json:"as_of"`
	Bulletins []compliance.BulletinRow `json:"bulletins"`
}

func (s *Server) getComplianceBulletins(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	f := compliance.BulletinFilter{Site: q.Get("site"), Severity: q.Get("severity"), Vendor: q.Get("vendor"),
		ReleasedFrom: q.Get("released_from"), ReleasedTo: q.Get("released_to"), Bulletin: q.Get("bulletin")}
	switch v := q.Get("subtree"); v {
	case "", "false":
	case "true":
		if f.Site == "" {
			return 0, nil, fmt.Errorf("%w: subtree selects the sites below the one site names", ErrBadRequest)
		}
		f.Subtree = true
	default:
		return 0, nil, fmt.Errorf("%w: subtree must be true or false, not %q", ErrBadRequest, v)
	}
	for name, v := range map[string]string{"released_from": f.ReleasedFrom, "released_to": f.ReleasedTo} {
		if v != "" && !dayRE.MatchString(v) {
			return 0, nil, fmt.Errorf("%w: %s must be a date YYYY-MM-DD, not %q", ErrBadRequest, name, v)
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return 0, nil, fmt.Errorf("%w: format must be json or csv, not %q", ErrBadRequest, format)
	}
	now := time.Now()
	rows, err := s.reporter.Bulletins(s.backend.State(), s.siteName(), f, now)
	if err != nil {
		return 0, nil, err
	}
	if format == "csv" {
		body := compliance.CSV(rows)
		return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		}), nil
	}
	return http.StatusOK, bulletinsReport{AsOf: now.UTC(), Bulletins: rows}, nil
}

// hCompliance receives a child's summary report, zstd-compressed: the decompressed report is
// capped at compliance.MaxSummaryBytes while it streams.
func (s *Server) hCompliance(r *http.Request) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	var rep hierarchy.SummaryReport
	size, err := s.decodeEncodedBody(r, &rep, compliance.MaxSummaryBytes)
	if err != nil {
		return 0, nil, err
	}
	ans, err := h.ReceiveSummary(nodeChild(r), rep, size.wire, size.raw)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ans, nil
}

// complianceNow fires a child's compliance summary rule (replicate now, scope compliance).
func (s *Server) complianceNow(r *http.Request) (int, any, error) {
	if s.opts.Uplink == nil {
		return 0, nil, fmt.Errorf("%w: scope compliance sends this site's summary to its parent, and this site has no parent", ErrBadRequest)
	}
	res, err := s.opts.Uplink.SendSummary(r.Context(), "replicate-now")
	if err != nil {
		return 0, nil, err
	}
	if err := s.backend.Audit(actor(r), "replicate-now", "parent", map[string]any{"scope": "compliance", "seq": res.Seq, "sent": res.Sent}); err != nil {
		return 0, nil, err
	}
	markAudited(r)
	return http.StatusOK, map[string]any{"scope": "compliance", "summary": res}, nil
}
