package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"patchtree/replication/hierarchy"
	"patchtree/replication/policy"
	"patchtree/store"
)

// actor is who makes a request, for the audit log.
func actor(r *http.Request) store.Actor {
	tok := callerToken(r)
	if tok == nil {
		return store.Actor{}
	}
	return store.Actor{TokenID: tok.ID, Name: tok.Name, Role: tok.Role}
}

type policiesResponse struct {
	Policies []*store.Policy `json:"policies"`
}

func (s *Server) listPolicies(r *http.Request) (int, any, error) {
	all, err := s.backend.State().Policies(nil)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	folder, origin := q.Get("folder"), q.Get("origin")
	switch origin {
	case "", store.OriginLocal, store.OriginParent:
	default:
		return 0, nil, fmt.Errorf("%w: origin must be local or parent, not %q", ErrBadRequest, origin)
	}
	out := []*store.Policy{}
	for _, p := range all {
		if (folder == "" || p.Folder == folder) && (origin == "" || p.Origin == origin) {
			out = append(out, p)
		}
	}
	policy.Sort(out)
	return http.StatusOK, policiesResponse{Policies: out}, nil
}

func (s *Server) getPolicy(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	p, err := s.backend.State().Policy(nil, id)
	if err != nil {
		return 0, nil, err
	}
	if p == nil {
		return 0, nil, fmt.Errorf("policy %q: %w", id, store.ErrNotFound)
	}
	return http.StatusOK, p, nil
}

func (s *Server) createPolicy(r *http.Request) (int, any, error) {
	var in policy.Input
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	p, err := s.backend.CreatePolicy(actor(r), in)
	if err != nil {
		return 0, nil, err
	}
	s.policyReplicateNow(in, p)
	return http.StatusCreated, p, nil
}

func (s *Server) patchPolicy(r *http.Request) (int, any, error) {
	var in policy.Input
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	p, err := s.backend.UpdatePolicy(actor(r), mux.Vars(r)["id"], in)
	if err != nil {
		return 0, nil, err
	}
	s.policyReplicateNow(in, p)
	return http.StatusOK, p, nil
}

// policyReplicateNow sends a policy written with replicate_now to every child at once.
func (s *Server) policyReplicateNow(in policy.Input, p *store.Policy) {
	if !in.ReplicateNow || s.opts.Hierarchy == nil {
		return
	}
	// The policy's own audit entry records replicate_now (in the same Raft entry as the policy).
	if _, err := s.opts.Hierarchy.ReplicateNow(hierarchy.NowRequest{Scope: hierarchy.ScopePolicies, Policy: p.ID,
		Reason: "replicate-now", UnlessHolds: p.ModifyIndex}); err != nil {
		s.logger.Warn("replicate policy now", "policy", p.ID, "error", err)
	}
}

func (s *Server) deletePolicy(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	if _, err := s.backend.DeletePolicy(actor(r), id); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"deleted": id}, nil
}

type settingsResponse struct {
	Settings []*store.SettingDoc `json:"settings"`
	// Names are the settings documents a site knows.
	Names []string `json:"names"`
}

func (s *Server) listSettings(r *http.Request) (int, any, error) {
	docs, err := s.backend.State().SettingDocs(nil)
	if err != nil {
		return 0, nil, err
	}
	if docs == nil {
		docs = []*store.SettingDoc{}
	}
	return http.StatusOK, settingsResponse{Settings: docs, Names: policy.SettingsNames()}, nil
}

func (s *Server) getSettings(r *http.Request) (int, any, error) {
	name := mux.Vars(r)["name"]
	d, err := s.backend.State().SettingDoc(nil, name)
	if err != nil {
		return 0, nil, err
	}
	if d == nil {
		return 0, nil, fmt.Errorf("settings document %q has not been set here: %w", name, store.ErrNotFound)
	}
	return http.StatusOK, d, nil
}

func (s *Server) putSettings(r *http.Request) (int, any, error) {
	obj, err := objectReader(r.Body)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(obj)
	if err != nil {
		return 0, nil, bodyError(err)
	}
	d, err := s.backend.PutSettingDoc(actor(r), mux.Vars(r)["name"], body)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

type auditResponse struct {
	Entries []*store.AuditEntry `json:"entries"`
	// Next is the key to pass as since for the following page (empty: no more).
	Next string `json:"next,omitempty"`
}

func (s *Server) listAudit(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	limit := 500
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 10000 {
			return 0, nil, fmt.Errorf("%w: limit must be a number from 1 to 10000, not %q", ErrBadRequest, raw)
		}
		limit = n
	}
	action := q.Get("action")
	resp := auditResponse{Entries: []*store.AuditEntry{}}
	err := s.backend.State().Audit(nil, q.Get("since"), func(e *store.AuditEntry) bool {
		if action != "" && !strings.HasPrefix(e.Action, action) {
			return true
		}
		if len(resp.Entries) == limit {
			resp.Next = resp.Entries[limit-1].Key
			return false
		}
		resp.Entries = append(resp.Entries, e)
		return true
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}
