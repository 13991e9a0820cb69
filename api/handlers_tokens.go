package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"patchtree/store"
)

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest struct {
	Role store.Role `json:"role"`
	Name string     `json:"name"`
}

// tokenCreated answers POST /v1/tokens; Token is the bearer string, shown this once only.
type tokenCreated struct {
	ID          string     `json:"id"`
	Token       string     `json:"token"`
	Role        store.Role `json:"role"`
	Name        string     `json:"name"`
	CreateIndex uint64     `json:"create_index"`
}

// tokenInfo is a token as listed: never its secret or hash.
type tokenInfo struct {
	ID          string     `json:"id"`
	Role        store.Role `json:"role"`
	Name        string     `json:"name,omitempty"`
	Child       string     `json:"child,omitempty"`
	CreateTime  time.Time  `json:"create_time"`
	CreateIndex uint64     `json:"create_index"`
}

type tokensResponse struct {
	Index  uint64      `json:"index"`
	Tokens []tokenInfo `json:"tokens"`
}

func (s *Server) createToken(r *http.Request) (int, any, error) {
	var req tokenRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Role == "" {
		return 0, nil, fmt.Errorf(`%w: field "role" is required (admin, rollout, auditor or agent)`, ErrBadRequest)
	}
	if req.Name != "" {
		if err := store.CheckName("token", req.Name); err != nil {
			return 0, nil, err
		}
	}
	created, err := s.backend.CreateToken(actor(r), req.Role, req.Name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, tokenCreated{
		ID: created.Token.ID, Token: created.Bearer, Role: created.Token.Role,
		Name: created.Token.Name, CreateIndex: created.Index,
	}, nil
}

func (s *Server) listTokens(r *http.Request) (int, any, error) {
	idx, rows, err := s.backend.State().Tokens(nil)
	if err != nil {
		return 0, nil, err
	}
	resp := tokensResponse{Index: idx, Tokens: []tokenInfo{}}
	for _, t := range rows {
		resp.Tokens = append(resp.Tokens, tokenInfo{
			ID: t.ID, Role: t.Role, Name: t.Name, Child: t.Child, CreateTime: t.CreateTime, CreateIndex: t.CreateIndex,
		})
	}
	return http.StatusOK, resp, nil
}

func (s *Server) deleteToken(r *http.Request) (int, any, error) {
	idx, err := s.backend.DeleteToken(actor(r), mux.Vars(r)["id"])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}
