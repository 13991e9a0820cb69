package node

import (
	"fmt"

	"patchtree/store"
)

// RotatedChild is a child whose credential was rotated, with its new one-time join token
// (shown once).
type RotatedChild struct {
	Name      string
	JoinToken string
	Index     uint64
}

// RotateChild revokes a child's node credential at once and issues a new one-time join token;
// the child, restarted with it, gets a new credential and keeps its replica, cursors and
// compliance sequence (docs/hierarchy.md, "Rotating a child's credential").
//
// The rotation is audited as by's (child.rotate).
func (n *Node) RotateChild(by store.Actor, name string) (*RotatedChild, error) {
	if name == "" {
		return nil, fmt.Errorf("child name is required: %w", store.ErrInvalid)
	}
	_, bearer, hash := newSecret()
	_, idx, err := n.applyAudited(by, "child.rotate", "child "+name, nil, ChildRotateRequestType, &ChildRotateRequest{Name: name, JoinHash: hash})
	if err != nil {
		return nil, err
	}
	return &RotatedChild{Name: name, JoinToken: bearer, Index: idx}, nil
}
