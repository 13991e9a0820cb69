package node

import (
	"encoding/json"
	"fmt"
	"time"

	"patchtree/store"
)

// AuditedRequest is an administrator's or rollout operator's write together with its audit
// entry, in one Raft entry: the FSM applies Body as a request of Type and puts Audit in the same
// store transaction as the change (store.Audited). The log never holds a change without its
// entry, nor an entry for a change the state refused.
type AuditedRequest struct {
	Type  MessageType       `json:"type"`
	Body  json.RawMessage   `json:"body"`
	Audit *store.AuditEntry `json:"audit"`
}

// applyAudited applies req with an audit entry naming by, action, target and detail. The
// site's own writes (no actor: bootstrap, leader loops, tests) are applied alone.
func (n *Node) applyAudited(by store.Actor, action, target string, detail any, t MessageType, req any) (any, uint64, error) {
	if by == (store.Actor{}) {
		return n.applyResponse(t, req)
	}
	if _, binary := req.(binaryEntry); binary {
		return nil, 0, fmt.Errorf("encode %s: an audited entry wraps JSON bodies only, and its body is binary", t)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s: %w", t, err)
	}
	env := &AuditedRequest{Type: t, Body: body, Audit: auditEntry(by, time.Now().UTC(), action, target, detail)}
	return n.applyResponse(AuditedRequestType, env)
}

// applyAudited applies an AuditedRequest: its inner request through the same switch as any
// entry, with the audit entry pending in the store so the inner write's transaction takes it.
func (f *FSM) applyAudited(buf []byte, idx uint64) any {
	var req AuditedRequest
	decode(AuditedRequestType, buf, idx, &req)
	if req.Type == AuditedRequestType || req.Audit == nil {
		panic(fmt.Sprintf("raft log %d: audited entry wraps %s with audit %v", idx, req.Type, req.Audit != nil))
	}
	var resp any
	err := f.State().Audited(idx, []*store.AuditEntry{req.Audit}, func() error {
		resp = f.apply(req.Type, req.Body, idx)
		if err, ok := resp.(error); ok {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return resp
}
