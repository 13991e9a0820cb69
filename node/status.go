package node

import (
	"sort"

	"patchtree/store"
)

// Status is what GET /v1/status reports about this server and its site.
type Status struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	SiteID    string   `json:"site_id"`
	NodeID    string   `json:"node_id"`
	Index     uint64   `json:"index"`
	Languages []string `json:"languages"`
	Ready     bool     `json:"ready"`
	// NotReady says why the server is not ready (empty when it is).
	NotReady    string     `json:"not_ready,omitempty"`
	Raft        RaftStatus `json:"raft"`
	LeaderLoops []string   `json:"leader_loops"`
	// Catalog is the catalog's version and counts.
	Catalog store.CatalogInfo `json:"catalog"`
}

// RaftStatus describes this server's view of the site's Raft group.
type RaftStatus struct {
	State        string         `json:"state"`
	LeaderID     string         `json:"leader_id"`
	LeaderAPI    string         `json:"leader_api"`
	Term         uint64         `json:"term"`
	AppliedIndex uint64         `json:"applied_index"`
	CommitIndex  uint64         `json:"commit_index"`
	LastIndex    uint64         `json:"last_index"`
	Servers      []ServerStatus `json:"servers"`
	// Transport says how Raft traffic is protected: "mutual TLS 1.3" for real servers.
	Transport string `json:"transport,omitempty"`
	// SiteCA is the SHA-256 fingerprint of the site CA every server's certificate chains to.
	SiteCA string `json:"site_ca,omitempty"`
	// FSMAppliedIndex is the last entry the state machine itself applied; AppliedIndex (Raft's)
	// also counts entries only queued for it.
	FSMAppliedIndex uint64 `json:"fsm_applied_index"`
	// SkippedEntries counts log entries of unknown ignorable types this server skipped since it
	// started: non-zero means a newer leader wrote them and this server awaits its upgrade.
	SkippedEntries uint64 `json:"skipped_entries"`
}

// ServerStatus is one member of the site.
type ServerStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Status gathers this server's status.
func (n *Node) Status() (*Status, error) {
	state := n.State()
	st := &Status{
		Name: n.cfg.Name, Role: n.cfg.Role, NodeID: n.id, Index: state.LatestIndex(),
		Ready: n.Ready(), NotReady: reason(n.NotReady()), LeaderLoops: n.RunningLoops(), Languages: []string{},
	}
	site, err := state.Site(nil)
	if err != nil {
		return nil, err
	}
	if site != nil {
		st.Name, st.Role, st.SiteID = site.Name, site.Role, site.SiteID
	}
	langs, err := state.Languages(nil, store.LanguagesSite)
	if err != nil {
		return nil, err
	}
	if langs != nil {
		st.Languages = append(st.Languages, langs.Ranges...)
	}
	catalog, err := state.Catalog(nil)
	if err != nil {
		return nil, err
	}
	st.Catalog = *catalog
	servers, err := n.Servers()
	if err != nil {
		return nil, err
	}
	st.Raft = RaftStatus{
		State:           n.raft.State().String(),
		Term:            n.raft.CurrentTerm(),
		AppliedIndex:    n.raft.AppliedIndex(),
		CommitIndex:     n.raft.CommitIndex(),
		LastIndex:       n.raft.LastIndex(),
		Servers:         servers,
		FSMAppliedIndex: n.fsm.AppliedIndex(),
		SkippedEntries:  n.fsm.SkippedEntries(),
	}
	if n.tls != nil {
		st.Raft.Transport, st.Raft.SiteCA = "mutual TLS 1.3", n.tls.caFingerprint()
	}
	for _, s := range servers {
		if s.Leader {
			st.Raft.LeaderID, st.Raft.LeaderAPI = s.ID, s.APIAddr
		}
	}
	return st, nil
}

// Servers lists the members of the site from Raft's configuration, with the API addresses the
// servers table records.
func (n *Node) Servers() ([]ServerStatus, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	out := []ServerStatus{}
	for _, s := range cf.Configuration().Servers {
		ss := ServerStatus{ID: string(s.ID), RaftAddr: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == leader}
		if row, err := n.State().Server(nil, ss.ID); err == nil && row != nil {
			ss.APIAddr = row.APIAddr
		}
		if ss.ID == n.id {
			ss.APIAddr = n.cfg.APIAddr // this server knows its own address even before the site does
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// reason is an error's message, or "" for none.
func reason(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
