package api

import (
	"net/http"

	"patchtree/langalert"
	"patchtree/replication/hierarchy"
)

// viewDigestResponse is the digest of a filtered view of this site's catalog.
type viewDigestResponse struct {
	Version uint64   `json:"version"`
	Ranges  []string `json:"ranges"`
	Digest  string   `json:"digest"`
}

// catalogDigest answers GET /v1/catalog/digest?ranges=a,b: the digest of the catalog's view
// filtered to the ranges (all of it without ranges), the one the hierarchy verifies runs with.
// A leaf's whole-catalog digest equals its root's digest for the leaf's ranges, at any depth.
func (s *Server) catalogDigest(r *http.Request) (int, any, error) {
	ranges := []string{"*"}
	if raw := r.URL.Query().Get("ranges"); raw != "" {
		parsed, err := langalert.ParseRanges([]string{raw})
		if err != nil {
			return 0, nil, err
		}
		ranges = parsed
	}
	view, err := s.backend.State().CatalogView(nil)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewDigestResponse{Version: view.Info.Version, Ranges: ranges, Digest: hierarchy.ViewDigest(view, ranges)}, nil
}
