package api

import "net/http"

// tree answers GET /v1/tree: this site and every site below it.
func (s *Server) tree(r *http.Request) (int, any, error) {
	h, err := s.hierarchy()
	if err != nil {
		return 0, nil, err
	}
	t, err := h.Tree()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, t, nil
}
