package api

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/store"
	"patchtree/version"
)

// healthResponse is GET /v1/health: liveness, plus readiness for orchestration and tests.
type healthResponse struct {
	Status    string `json:"status"`
	Ready     bool   `json:"ready"`
	Leader    bool   `json:"leader"`
	RaftState string `json:"raft_state"`
	NodeID    string `json:"node_id"`
}

// health answers liveness. With ?require=ready or ?require=leader it is a check for load
// balancers: 200 when the condition holds, 503 with an error naming it when not.
func (s *Server) health(r *http.Request) (int, any, error) {
	st, err := s.backend.Status()
	if err != nil {
		return 0, nil, err
	}
	ready, leader := st.Ready, s.backend.IsLeader()
	switch req := r.URL.Query().Get("require"); req {
	case "":
	case "ready":
		if !ready {
			if err := s.backend.NotReady(); err != nil {
				return 0, nil, err
			}
			return 0, nil, fmt.Errorf("%w: this server has not applied the site's log through the commit index it learned from the leader", node.ErrNotReady)
		}
	case "leader":
		if !leader {
			return 0, nil, fmt.Errorf("%w: this server is %s", node.ErrNotLeader, st.Raft.State)
		}
	default:
		return 0, nil, fmt.Errorf("%w: require must be \"ready\" or \"leader\", not %q", ErrBadRequest, req)
	}
	return http.StatusOK, healthResponse{
		Status: "ok", Ready: ready, Leader: leader, RaftState: st.Raft.State, NodeID: st.NodeID,
	}, nil
}

// statusResponse is GET /v1/status: the server's status plus this site's place in the hierarchy.
type statusResponse struct {
	*node.Status
	Parent   *hierarchy.ChildState   `json:"parent,omitempty"`
	Children []hierarchy.ChildStatus `json:"children"`
	Alerts   []hierarchy.Alert       `json:"alerts"`
	// Version is the build this server runs.
	Version version.Info `json:"version"`
}

func (s *Server) status(r *http.Request) (int, any, error) {
	st, err := s.backend.Status()
	if err != nil {
		return 0, nil, err
	}
	resp := statusResponse{Status: st, Children: []hierarchy.ChildStatus{}, Alerts: []hierarchy.Alert{}, Version: version.Get()}
	if s.opts.ParentLink != nil {
		resp.Parent = s.opts.ParentLink()
	}
	if h := s.opts.Hierarchy; h != nil {
		if resp.Children, err = h.Status(""); err != nil {
			return 0, nil, err
		}
		if resp.Alerts, err = h.Alerts(); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, resp, nil
}

func (s *Server) digest(r *http.Request) (int, any, error) {
	d, err := s.backend.State().Digest()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

type serversResponse struct {
	Servers []node.ServerStatus `json:"servers"`
}

func (s *Server) listServers(r *http.Request) (int, any, error) {
	servers, err := s.backend.Servers()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, serversResponse{Servers: servers}, nil
}

type indexResponse struct {
	Index uint64 `json:"index"`
}

func (s *Server) joinServer(r *http.Request) (int, any, error) {
	var req node.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	// The site's server token may only refresh a member's addresses; adding a server takes an admin.
	idx, err := s.backend.AddServer(actor(r), req, callerToken(r).Role == store.RoleAdmin)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}

// certificateRequest asks for the Raft TLS material of a server about to join the site.
type certificateRequest struct {
	ID string `json:"id"`
}

// issueCertificate hands a server about to join this site its Raft certificate and the site
// CA. Only an administrator may: whoever holds them can speak Raft to the site.
func (s *Server) issueCertificate(r *http.Request) (int, any, error) {
	var req certificateRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	m, err := s.backend.IssueServerTLS(req.ID)
	if err != nil {
		return 0, nil, err
	}
	// The material is handed out only once the issue is in the audit log.
	if err := s.backend.Audit(actor(r), "site.certificate-issue", "server "+req.ID, nil); err != nil {
		return 0, nil, fmt.Errorf("audit the certificate issue (nothing was handed out): %w", err)
	}
	markAudited(r)
	return http.StatusOK, m, nil
}

func (s *Server) removeServer(r *http.Request) (int, any, error) {
	idx, err := s.backend.RemoveServer(actor(r), mux.Vars(r)["id"])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}
