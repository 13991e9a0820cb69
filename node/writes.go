package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

// MaxEntrySize bounds one Raft log entry; larger writes are split by their callers.
const MaxEntrySize = 1 << 20

// slowApply is the apply latency above which a write is logged.
const slowApply = time.Second

// apply submits one request to Raft and waits until it is committed (durable on a majority) and
// applied here. It returns the entry's index, or the store's error for a rejected request.
func (n *Node) apply(t MessageType, req any) (uint64, error) {
	_, idx, err := n.applyResponse(t, req)
	return idx, err
}

// applyResponse is apply that also returns the FSM's non-error response.
func (n *Node) applyResponse(t MessageType, req any) (any, uint64, error) {
	buf, err := Encode(t, req)
	if err != nil {
		return nil, 0, err
	}
	if len(buf) > MaxEntrySize {
		return nil, 0, fmt.Errorf("%s entry of %d bytes exceeds %d: %w", t, len(buf), MaxEntrySize, store.ErrInvalid)
	}
	start := time.Now()
	f := n.raft.Apply(buf, applyTimeout)
	err = f.Error()
	d := time.Since(start)
	observeApply(t, d)
	if d > slowApply {
		n.logger.Warn("slow raft apply", "type", t.String(), "bytes", len(buf), "duration", d.Round(time.Millisecond))
	}
	if err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, 0, fmt.Errorf("apply %s: %w (%v)", t, ErrNotLeader, err)
		}
		return nil, 0, fmt.Errorf("apply %s: %w", t, err)
	}
	if resp, ok := f.Response().(error); ok && resp != nil {
		return nil, 0, resp
	}
	return f.Response(), f.Index(), nil
}

// IsLeader reports whether this server leads the site and has established leadership.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderAPI returns the API base URL of the site's current leader, for forwarding writes.
func (n *Node) LeaderAPI() (string, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", fmt.Errorf("%w: an election is in progress", ErrNoLeader)
	}
	srv, err := n.State().Server(nil, string(id))
	if err != nil {
		return "", err
	}
	if srv == nil || srv.APIAddr == "" {
		return "", fmt.Errorf("%w: leader %s has not published its API address yet", ErrNoLeader, id)
	}
	return srv.APIAddr, nil
}

// WaitLeader blocks until the site has a leader whose API address is known, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		addr, err := n.LeaderAPI()
		if err == nil {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-t.C:
		}
	}
}

// CreatedToken is a newly issued token: the row and the bearer string, shown only once.
type CreatedToken struct {
	Token  store.Token
	Bearer string
	Index  uint64
}

// CreateToken issues a token for role, audited as by's (token.create). Node credentials (bound
// to a child site) come from child enrolment, not from here.
func (n *Node) CreateToken(by store.Actor, role store.Role, name string) (*CreatedToken, error) {
	if !role.Valid() {
		return nil, fmt.Errorf("unknown role %q (want one of admin, rollout, auditor, agent): %w", role, store.ErrInvalid)
	}
	if role == store.RoleNode {
		return nil, fmt.Errorf("role %q is issued by child enrolment (POST /v1/children), not as a plain token: %w", role, store.ErrInvalid)
	}
	if role == store.RoleServer {
		return nil, fmt.Errorf("role %q belongs to the site's own servers and is not issued: %w", role, store.ErrInvalid)
	}
	id, bearer, hash := newSecret()
	tok := store.Token{ID: id, SecretHash: hash, Role: role, Name: name, CreateTime: time.Now().UTC()}
	_, idx, err := n.applyAudited(by, "token.create", "token "+id, map[string]any{"role": role, "name": name},
		TokenCreateRequestType, &TokenCreateRequest{Token: tok})
	if err != nil {
		return nil, err
	}
	tok.CreateIndex, tok.ModifyIndex = idx, idx
	return &CreatedToken{Token: tok, Bearer: bearer, Index: idx}, nil
}

// DeleteToken revokes a token (token.revoke). Revoking the site's initial admin token is allowed
// only once another admin token exists, so that a site never locks its administrators out.
func (n *Node) DeleteToken(by store.Actor, id string) (uint64, error) {
	state := n.State()
	tok, err := state.Token(nil, id)
	if err != nil {
		return 0, err
	}
	if tok == nil {
		return 0, fmt.Errorf("token %q: %w", id, store.ErrNotFound)
	}
	if tok.Role == store.RoleAdmin {
		_, all, err := state.Tokens(nil)
		if err != nil {
			return 0, err
		}
		admins := 0
		for _, t := range all {
			if t.Role == store.RoleAdmin {
				admins++
			}
		}
		if admins <= 1 {
			return 0, fmt.Errorf("token %q is the last admin token; create another admin token first: %w", id, store.ErrConflict)
		}
	}
	_, idx, err := n.applyAudited(by, "token.revoke", "token "+id, map[string]any{"role": tok.Role, "name": tok.Name},
		TokenDeleteRequestType, &TokenDeleteRequest{ID: id})
	return idx, err
}

// SetLanguages replaces this site's managed ranges (already validated and canonical), audited
// as by's (languages.set).
func (n *Node) SetLanguages(by store.Actor, ranges []string) (uint64, error) {
	_, idx, err := n.applyAudited(by, "languages.set", "site", map[string]any{"ranges": ranges},
		LanguagesSetRequestType, &LanguagesSetRequest{ID: store.LanguagesSite, Ranges: ranges})
	return idx, err
}

// PutSetting stores a typed setting under key (the site's own writes).
func (n *Node) PutSetting(key string, v any) (uint64, error) {
	return n.PutSettingAs(store.Actor{}, "", key, v)
}

// PutSettingAs stores a typed setting under key as an administrator's write, audited as action
// with the new value.
func (n *Node) PutSettingAs(by store.Actor, action, key string, v any) (uint64, error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode setting %q: %w", key, err)
	}
	_, idx, err := n.applyAudited(by, action, "setting "+key, json.RawMessage(buf),
		SettingPutRequestType, &SettingPutRequest{Key: key, Value: buf})
	return idx, err
}

// JoinRequest is what a new server sends to join a site.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Name     string `json:"name"`
	Role     string `json:"role"`
}

// AddServer adds a server to the site as a voter (leader only), or refreshes a member's addresses.
// The joining server must have been started with this site's name and role. Without allowNew
// only a current member may re-register (the site's server token cannot add voters). The
// address change is audited as by's (site.server-join); the voter itself is added by Raft's own
// configuration entry just before it.
func (n *Node) AddServer(by store.Actor, req JoinRequest, allowNew bool) (uint64, error) {
	if req.ID == "" || req.RaftAddr == "" || req.APIAddr == "" {
		return 0, fmt.Errorf("join needs id, raft_addr and api_addr: %w", store.ErrInvalid)
	}
	site, err := n.State().Site(nil)
	if err != nil {
		return 0, err
	}
	if site == nil {
		return 0, fmt.Errorf("%w: the site is not initialised yet", ErrNotReady)
	}
	if req.Name != site.Name || req.Role != site.Role {
		return 0, fmt.Errorf("this site is %q (%s) but the joining server was started as %q (%s): %w",
			site.Name, site.Role, req.Name, req.Role, store.ErrConflict)
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, fmt.Errorf("raft configuration: %w", err)
	}
	member := false
	for _, s := range cf.Configuration().Servers {
		if string(s.Address) == req.RaftAddr && string(s.ID) != req.ID {
			return 0, fmt.Errorf("raft address %s already belongs to server %s: %w", req.RaftAddr, s.ID, store.ErrConflict)
		}
		member = member || (string(s.ID) == req.ID && string(s.Address) == req.RaftAddr && s.Suffrage == raft.Voter)
	}
	// A member re-registering needs no configuration change: only its API address may be new.
	if !member && !allowNew {
		return 0, fmt.Errorf("server %s at %s is not a member of this site; adding one takes an admin token: %w", req.ID, req.RaftAddr, ErrForbiddenJoin)
	}
	if !member {
		if err := n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, applyTimeout).Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) {
				return 0, fmt.Errorf("add voter: %w", ErrNotLeader)
			}
			return 0, fmt.Errorf("add voter %s: %w", req.ID, err)
		}
	}
	srv := store.Server{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr}
	_, idx, err := n.applyAudited(by, "site.server-join", "server "+req.ID,
		map[string]any{"raft_addr": req.RaftAddr, "api_addr": req.APIAddr, "added_voter": !member},
		ServerUpsertRequestType, &ServerUpsertRequest{Server: srv})
	return idx, err
}

// RemoveServer removes a server from the site's Raft configuration and forgets its addresses;
// forgetting them is audited as by's (site.server-remove).
func (n *Node) RemoveServer(by store.Actor, id string) (uint64, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, fmt.Errorf("raft configuration: %w", err)
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return 0, fmt.Errorf("server %q is not a member of this site: %w", id, store.ErrNotFound)
	}
	if id == n.id && len(cf.Configuration().Servers) == 1 {
		return 0, fmt.Errorf("server %q is the site's only server: %w", id, store.ErrConflict)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, applyTimeout).Error(); err != nil {
		return 0, fmt.Errorf("remove server %s: %w", id, err)
	}
	_, idx, err := n.applyAudited(by, "site.server-remove", "server "+id, nil,
		ServerDeleteRequestType, &ServerDeleteRequest{ID: id})
	if errors.Is(err, store.ErrNotFound) {
		// The server had no addresses stored; the removal itself is still recorded.
		if err := n.Audit(by, "site.server-remove", "server "+id, nil); err != nil {
			return 0, err
		}
		return n.raft.AppliedIndex(), nil
	}
	return idx, err
}
