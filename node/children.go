package node

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"patchtree/store"
)

// EnrolledChild is a newly enrolled child with its one-time join token (shown once).
type EnrolledChild struct {
	Child     store.Child
	JoinToken string
	Index     uint64
}

// AddChild enrols a child site and issues its one-time join token, audited as by's (child.add).
func (n *Node) AddChild(by store.Actor, name string) (*EnrolledChild, error) {
	if name == "" {
		return nil, fmt.Errorf("child name is required: %w", store.ErrInvalid)
	}
	_, bearer, hash := newSecret()
	c := store.Child{Name: name, JoinTokenHash: hash, CreatedAt: time.Now().UTC(), Ranges: []string{}}
	_, idx, err := n.applyAudited(by, "child.add", "child "+name, nil, ChildAddRequestType, &ChildAddRequest{Child: c})
	if err != nil {
		return nil, err
	}
	return &EnrolledChild{Child: c, JoinToken: bearer, Index: idx}, nil
}

// ErrJoinRefused is the one answer to a join that fails for want of a valid join token: an
// unknown child, a wrong or malformed token and a used one are told apart by no one, so that the
// join route cannot list child names.
var ErrJoinRefused = errors.New("join refused: unknown child or invalid join token")

// JoinChild exchanges a join token for the child's node credential and returns its bearer. The
// token is checked against the current state first, so a join that fails writes no Raft entry;
// the FSM checks again, for two joins racing with the same token.
func (n *Node) JoinChild(name, joinToken string) (string, error) {
	_, secret, ok := store.SplitBearer(joinToken)
	joinHash := store.HashSecret(secret)
	c, err := n.State().Child(nil, name)
	if err != nil {
		return "", fmt.Errorf("join of child %q: %w", name, err)
	}
	want := unknownChildHash // compared anyway, so an unknown child takes as long as a known one
	if c != nil && c.JoinTokenHash != "" {
		want = c.JoinTokenHash
	}
	match := subtle.ConstantTimeCompare([]byte(joinHash), []byte(want)) == 1
	if !ok || !match || c == nil || c.JoinTokenHash == "" {
		return "", ErrJoinRefused
	}
	id, bearer, hash := newSecret()
	now := time.Now().UTC()
	tok := store.Token{ID: id, SecretHash: hash, Role: store.RoleNode, Child: name, Name: "child " + name, CreateTime: now}
	if _, err := n.apply(ChildJoinRequestType, &ChildJoinRequest{Name: name, JoinHash: joinHash, NodeToken: tok, At: now}); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid) {
			return "", ErrJoinRefused // removed, joined or re-enrolled since the check above
		}
		return "", err
	}
	return bearer, nil
}

// unknownChildHash stands in for the join token hash of a child that does not exist; no secret
// hashes to it.
var unknownChildHash = strings.Repeat("0", 64)

// RemoveChild removes a child and revokes its node credential, audited as by's (child.remove).
func (n *Node) RemoveChild(by store.Actor, name string) (uint64, error) {
	_, idx, err := n.applyAudited(by, "child.remove", "child "+name, nil, ChildRemoveRequestType, &ChildRemoveRequest{Name: name})
	return idx, err
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
