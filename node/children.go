package node

import (
	"fmt"
	"time"

	"patchtree/store"
)

// EnrolledChild is a newly enrolled child with its one-time join token (shown once).
type EnrolledChild struct {
	Child     store.Child
	JoinToken string
	Index     uint64
}

// AddChild enrols a child site and issues its one-time join token.
func (n *Node) AddChild(name string) (*EnrolledChild, error) {
	if name == "" {
		return nil, fmt.Errorf("child name is required: %w", store.ErrInvalid)
	}
	_, bearer, hash := newSecret()
	c := store.Child{Name: name, JoinTokenHash: hash, CreatedAt: time.Now().UTC(), Ranges: []string{}}
	idx, err := n.apply(ChildAddRequestType, &ChildAddRequest{Child: c})
	if err != nil {
		return nil, err
	}
	return &EnrolledChild{Child: c, JoinToken: bearer, Index: idx}, nil
}

// JoinChild exchanges a join token for the child's node credential and returns its bearer.
func (n *Node) JoinChild(name, joinToken string) (string, error) {
	_, secret, ok := store.SplitBearer(joinToken)
	if !ok {
		return "", fmt.Errorf("malformed join token: %w", store.ErrInvalid)
	}
	id, bearer, hash := newSecret()
	now := time.Now().UTC()
	tok := store.Token{ID: id, SecretHash: hash, Role: store.RoleNode, Child: name, Name: "child " + name, CreateTime: now}
	if _, err := n.apply(ChildJoinRequestType, &ChildJoinRequest{Name: name, JoinHash: store.HashSecret(secret), NodeToken: tok, At: now}); err != nil {
		return "", err
	}
	return bearer, nil
}

// RemoveChild removes a child and revokes its node credential.
func (n *Node) RemoveChild(name string) (uint64, error) {
	return n.apply(ChildRemoveRequestType, &ChildRemoveRequest{Name: name})
}

// UpdateChild records what a child reported.
func (n *Node) UpdateChild(name string, u store.ChildUpdate) (uint64, error) {
	return n.apply(ChildUpdateRequestType, &ChildUpdateRequest{Name: name, Update: u})
}

// RecordReplicationRun records a finished run and the child's acknowledgement.
func (n *Node) RecordReplicationRun(run store.ReplicationRun, u store.ChildUpdate) (uint64, error) {
	return n.apply(ReplicationRunRequestType, &ReplicationRunRequest{Run: run, Update: u})
}

// CollectTombstones drops tombstones at or below upTo.
func (n *Node) CollectTombstones(upTo uint64) (uint64, error) {
	return n.apply(TombstonesCollectRequestType, &TombstonesCollectRequest{UpTo: upTo})
}

// PruneRuns forgets a child's oldest replication runs, keeping its newest keep.
func (n *Node) PruneRuns(child string, keep int) (uint64, error) {
	return n.apply(RunsPruneRequestType, &RunsPruneRequest{Child: child, Keep: keep})
}
