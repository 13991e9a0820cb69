package api

import (
	"fmt"
	"net/http"

	"patchtree/langalert"
	"patchtree/store"
)

// languagesResponse is GET /v1/languages.
type languagesResponse struct {
	Ranges      []string `json:"ranges"`
	ModifyIndex uint64   `json:"modify_index"`
}

// languagesRequest is the body of PUT /v1/languages.
type languagesRequest struct {
	Ranges *[]string `json:"ranges"`
}

// languagesSetResponse answers PUT /v1/languages.
type languagesSetResponse struct {
	Ranges []string `json:"ranges"`
	Index  uint64   `json:"index"`
}

func (s *Server) getLanguages(r *http.Request) (int, any, error) {
	row, err := s.backend.State().Languages(nil, store.LanguagesSite)
	if err != nil {
		return 0, nil, err
	}
	resp := languagesResponse{Ranges: []string{}}
	if row != nil {
		resp.Ranges = append(resp.Ranges, row.Ranges...)
		resp.ModifyIndex = row.ModifyIndex
	}
	return http.StatusOK, resp, nil
}

func (s *Server) putLanguages(r *http.Request) (int, any, error) {
	var req languagesRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Ranges == nil {
		return 0, nil, fmt.Errorf(`%w: field "ranges" is required (an array of language ranges, e.g. ["de","fr"])`, ErrBadRequest)
	}
	ranges, err := langalert.ParseRanges(*req.Ranges)
	if err != nil {
		return 0, nil, err
	}
	idx, err := s.backend.SetLanguages(actor(r), ranges)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, languagesSetResponse{Ranges: ranges, Index: idx}, nil
}
