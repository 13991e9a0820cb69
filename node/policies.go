package node

import (
	"encoding/json"
	"fmt"
	"time"

	"patchtree/replication/policy"
	"patchtree/store"
)

// PolicyPutRequest creates or replaces a policy, with its audit entry, in one entry.
type PolicyPutRequest struct {
	Policy store.Policy      `json:"policy"`
	Audit  *store.AuditEntry `json:"audit,omitempty"`
}

// PolicyDeleteRequest deletes a policy, with its audit entry.
type PolicyDeleteRequest struct {
	ID    string            `json:"id"`
	Audit *store.AuditEntry `json:"audit,omitempty"`
}

// SettingDocPutRequest replaces a settings document, with its audit entry.
type SettingDocPutRequest struct {
	Doc   store.SettingDoc  `json:"doc"`
	Audit *store.AuditEntry `json:"audit,omitempty"`
}

// AuditAppendRequest records audit entries of actions that write nothing else.
type AuditAppendRequest struct {
	Entries []*store.AuditEntry `json:"entries"`
}

func auditEntry(actor store.Actor, at time.Time, action, target string, detail any) *store.AuditEntry {
	e := &store.AuditEntry{At: at, Actor: actor, Action: action, Target: target}
	if detail != nil {
		e.Detail, _ = json.Marshal(detail)
	}
	return e
}

// CreatePolicy validates a new policy against the catalog and stores it.
func (n *Node) CreatePolicy(actor store.Actor, in policy.Input) (*store.Policy, error) {
	view, err := n.State().CatalogView(nil)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	p, err := policy.Create(view, policy.NewID(), in, now, actor.String())
	if err != nil {
		return nil, err
	}
	audit := auditEntry(actor, now, "policy.create", "policy "+p.ID, map[string]any{
		"name": p.Name, "folder": p.Folder, "bulletins": p.Bulletins, "enabled": p.Enabled, "run": p.Run,
		"updates": len(p.Updates), "replicate_now": in.ReplicateNow})
	return n.putPolicy(p, audit)
}

// UpdatePolicy applies a change to a local policy.
func (n *Node) UpdatePolicy(actor store.Actor, id string, in policy.Input) (*store.Policy, error) {
	state := n.State()
	old, err := state.Policy(nil, id)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, fmt.Errorf("policy %q: %w", id, store.ErrNotFound)
	}
	if old.Origin == store.OriginParent {
		return nil, store.ReadOnlyPolicy(id) // before validating the change: 409, not a 400 about it
	}
	view, err := state.CatalogView(nil)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	p, err := policy.Patch(view, old, in, now, actor.String())
	if err != nil {
		return nil, err
	}
	change, _ := json.Marshal(in)
	audit := auditEntry(actor, now, "policy.update", "policy "+p.ID, map[string]any{
		"change": json.RawMessage(change), "revision": p.Revision})
	return n.putPolicy(p, audit)
}

func (n *Node) putPolicy(p *store.Policy, audit *store.AuditEntry) (*store.Policy, error) {
	if _, err := n.apply(PolicyPutRequestType, &PolicyPutRequest{Policy: *p, Audit: audit}); err != nil {
		return nil, err
	}
	return n.State().Policy(nil, p.ID)
}

// DeletePolicy deletes a local policy.
func (n *Node) DeletePolicy(actor store.Actor, id string) (uint64, error) {
	old, err := n.State().Policy(nil, id)
	if err != nil {
		return 0, err
	}
	if old == nil {
		return 0, fmt.Errorf("policy %q: %w", id, store.ErrNotFound)
	}
	audit := auditEntry(actor, time.Now().UTC(), "policy.delete", "policy "+id, map[string]any{"name": old.Name, "folder": old.Folder})
	return n.apply(PolicyDeleteRequestType, &PolicyDeleteRequest{ID: id, Audit: audit})
}

// PutSettingDoc validates and stores a settings document.
func (n *Node) PutSettingDoc(actor store.Actor, name string, body []byte) (*store.SettingDoc, error) {
	canon, err := policy.ParseSettings(name, body)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	doc := store.SettingDoc{Name: name, Body: canon, UpdatedAt: now, UpdatedBy: actor.String(), Origin: store.OriginLocal}
	audit := auditEntry(actor, now, "settings.put", "settings "+name, json.RawMessage(canon))
	if _, err := n.apply(SettingDocPutRequestType, &SettingDocPutRequest{Doc: doc, Audit: audit}); err != nil {
		return nil, err
	}
	return n.State().SettingDoc(nil, name)
}

// Audit records an action that writes nothing else (or whose write is not a policy's).
func (n *Node) Audit(actor store.Actor, action, target string, detail any) error {
	_, err := n.apply(AuditAppendRequestType, &AuditAppendRequest{Entries: []*store.AuditEntry{
		auditEntry(actor, time.Now().UTC(), action, target, detail)}})
	return err
}
