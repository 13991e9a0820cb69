package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"patchtree/replication/importer"
	"patchtree/store"
)

// uploadTransferDeadline bounds reading one uploaded feed (a 250 MB feed at 1 MB/s fits).
const uploadTransferDeadline = 10 * time.Minute

// uploadImport is POST /v1/catalog/import/upload?name=FILE: the body is a native feed (plain,
// gzip or zstd) streamed from the administrator's machine; the leader saves it and imports it
// like a file source (importer.Upload). The options are query parameters, as the body is the
// feed: kind, mode, revise_policies, include_vendors and exclude_vendors (comma separated),
// delete_excluded, disable_superseded. 202 with the run, as POST /v1/catalog/import.
func (s *Server) uploadImport(r *http.Request) (int, any, error) {
	if err := s.requireParent("catalog import"); err != nil {
		return 0, nil, err
	}
	if s.opts.Importer == nil {
		return 0, nil, fmt.Errorf("this server cannot import: %w", store.ErrConflict)
	}
	req, err := uploadRequest(r)
	if err != nil {
		return 0, nil, err
	}
	name := r.URL.Query().Get("name")
	p, err := s.opts.Importer.Upload(req, name, r.ContentLength, r.Body)
	if errors.Is(err, importer.ErrUploadTooLarge) {
		return 0, nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return 0, nil, err
	}
	if err := s.auditImport(r, p, "upload "+name); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, p, nil
}

// auditImport records an import an administrator started, naming its run and source.
func (s *Server) auditImport(r *http.Request, p *importer.Progress, source string) error {
	detail := map[string]any{"source": source, "kind": p.Kind}
	if err := s.backend.Audit(actor(r), "catalog.import", "import "+p.ID, detail); err != nil {
		return fmt.Errorf("import %s started, but its audit entry could not be written: %w", p.ID, err)
	}
	markAudited(r)
	return nil
}

// uploadRequest reads an upload's import options from its query.
func uploadRequest(r *http.Request) (importer.Request, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "name", "kind", "mode", "revise_policies", "include_vendors", "exclude_vendors", "delete_excluded", "disable_superseded":
		default:
			return importer.Request{}, fmt.Errorf("%w: unknown query parameter %q", ErrBadRequest, k)
		}
	}
	req := importer.Request{Kind: q.Get("kind"), Mode: q.Get("mode"), RevisePolicies: q.Get("revise_policies"),
		IncludeVendors: splitList(q.Get("include_vendors")), ExcludeVendors: splitList(q.Get("exclude_vendors"))}
	for k, dst := range map[string]*bool{"delete_excluded": &req.DeleteExcluded, "disable_superseded": &req.DisableSuperseded} {
		if v := q.Get(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return importer.Request{}, fmt.Errorf("%w: %s must be true or false, not %q", ErrBadRequest, k, v)
			}
			*dst = b
		}
	}
	return req, nil
}

// splitList splits a comma-separated query value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
