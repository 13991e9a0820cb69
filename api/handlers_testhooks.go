package api

import (
	"fmt"
	"net/http"
)

// testRoutes are routes that exist only on a server started with --test-hooks.
func (s *Server) testRoutes() []route {
	if !s.opts.TestHooks {
		return nil
	}
	return []route{
		{http.MethodPost, "/v1/test/raft-entry", adminOnly, true, s.testRaftEntry, 0},
	}
}

// testEntryWriter is a backend that can write an entry of a type no version knows.
type testEntryWriter interface {
	ApplyTestEntry(ignorable bool) (uint64, error)
}

// testRaftEntry writes an entry of a type this build does not know ({"ignorable": bool}), as a
// leader of a newer version would: the rolling upgrade test.
func (s *Server) testRaftEntry(r *http.Request) (int, any, error) {
	var req struct {
		Ignorable bool `json:"ignorable"`
	}
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	w, ok := s.backend.(testEntryWriter)
	if !ok {
		return 0, nil, fmt.Errorf("%w: this server cannot write test entries", ErrBadRequest)
	}
	idx, err := w.ApplyTestEntry(req.Ignorable)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]uint64{"index": idx}, nil
}
