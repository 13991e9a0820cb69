package node

import (
	"errors"
	"patchtree/store"
	"testing"
	"time"
)

// TestJoinChildRefusalWritesNothing: an unknown child, a wrong, malformed or used join token get
// one and the same error, and none of them writes a Raft entry; the right token joins once.
func TestJoinChildRefusalWritesNothing(t *testing.T) {
	nodes, _ := testCluster(t, 1, &loopProbe{running: map[string]int{}})
	n := nodes[0]
	waitFor(t, 10*time.Second, func() (bool, string) { return n.Ready(), "not ready" })
	enrolled, err := n.AddChild(store.Actor{}, "emea")
	if err != nil {
		t.Fatal(err)
	}
	other, err := n.AddChild(store.Actor{}, "apac")
	if err != nil {
		t.Fatal(err)
	}
	before := n.raft.LastIndex()
	for _, tc := range []struct{ name, child, token string }{
		{"unknown child", "nope", enrolled.JoinToken},
		{"wrong token", "emea", other.JoinToken},
		{"malformed token", "emea", "no-dot"},
		{"empty token", "emea", ""},
	} {
		_, err := n.JoinChild(tc.child, tc.token)
		if !errors.Is(err, ErrJoinRefused) || err.Error() != ErrJoinRefused.Error() {
			t.Errorf("%s: %v; want exactly %q", tc.name, err, ErrJoinRefused)
		}
	}
	if after := n.raft.LastIndex(); after != before {
		t.Fatalf("refused joins wrote Raft entries: last index %d -> %d", before, after)
	}
	bearer, err := n.JoinChild("emea", enrolled.JoinToken)
	if err != nil || bearer == "" {
		t.Fatalf("join with the right token: %q, %v", bearer, err)
	}
	joined := n.raft.LastIndex()
	if _, err := n.JoinChild("emea", enrolled.JoinToken); !errors.Is(err, ErrJoinRefused) {
		t.Fatalf("second use of the join token: %v; want %v", err, ErrJoinRefused)
	}
	if after := n.raft.LastIndex(); after != joined {
		t.Fatalf("a used token wrote a Raft entry: last index %d -> %d", joined, after)
	}
}
