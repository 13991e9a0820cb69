package node

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/backup"
	"patchtree/store"
)

// saveBackup writes a backup of n's state.
func saveBackup(t *testing.T, n *Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := backup.Write(&buf, n.State().Snapshot(), time.Now()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func stateDigest(t *testing.T, n *Node) string {
	t.Helper()
	d, err := n.State().Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

func tokenCount(t *testing.T, n *Node) int {
	t.Helper()
	_, toks, err := n.State().Tokens(nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(toks)
}

// TestRestoreSnapshotEveryServer: a restore replaces the state of all three servers (a token
// created after the backup is gone everywhere), and their applied index is the restore's.
func TestRestoreSnapshotEveryServer(t *testing.T) {
	nodes, _ := testCluster(t, 3, &loopProbe{running: map[string]int{}})
	leader := nodes[0]
	saved := saveBackup(t, leader)
	want := tokenCount(t, leader)
	if _, err := leader.CreateToken(store.Actor{}, store.RoleAgent, "after"); err != nil {
		t.Fatal(err)
	}
	out, err := leader.RestoreSnapshot(bytes.NewReader(saved), false)
	if err != nil {
		t.Fatal(err)
	}
	if out.Forced || out.Backup.Header.SiteName != "hq" {
		t.Errorf("restore outcome %+v", out)
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		for _, n := range nodes {
			if got := tokenCount(t, n); got != want || n.fsm.AppliedIndex() < out.Index {
				return false, fmt.Sprintf("%s: %d tokens (want %d), applied %d (restore at %d)", n.ID(), got, want, n.fsm.AppliedIndex(), out.Index)
			}
		}
		return true, ""
	})
}

// TestRestoreSnapshotRefusals: bad bytes and another site's backup change nothing; force takes
// the other site's identity.
func TestRestoreSnapshotRefusals(t *testing.T) {
	n := startLoneServer(t, t.TempDir())
	defer n.Shutdown()
	good := saveBackup(t, n)
	before := stateDigest(t, n)
	for name, in := range map[string][]byte{"truncated": good[:len(good)-1], "empty": nil, "other format": []byte("PTSNAP1\n")} {
		if _, err := n.RestoreSnapshot(bytes.NewReader(in), false); !errors.Is(err, backup.ErrInvalid) {
			t.Errorf("%s: %v, want backup.ErrInvalid", name, err)
		}
	}
	other, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	admin := store.Token{ID: "a", SecretHash: store.HashSecret("s"), Role: store.RoleAdmin}
	if err := other.InitSite(3, &store.SiteInfo{SiteID: "x", Name: "branch", Role: RoleParent}, &admin, []string{"de"}, nil); err != nil {
		t.Fatal(err)
	}
	var foreign bytes.Buffer
	if _, _, err := backup.Write(&foreign, other.Snapshot(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RestoreSnapshot(bytes.NewReader(foreign.Bytes()), false); !errors.Is(err, ErrSnapshotOtherSite) || !errors.Is(err, store.ErrConflict) {
		t.Errorf("another site's backup: %v, want ErrSnapshotOtherSite", err)
	}
	if got := stateDigest(t, n); got != before {
		t.Errorf("refused restores changed the state")
	}
	out, err := n.RestoreSnapshot(bytes.NewReader(foreign.Bytes()), true)
	if err != nil || !out.Forced {
		t.Fatalf("forced restore: %+v, %v", out, err)
	}
	if site, _ := n.State().Site(nil); site == nil || site.Name != "branch" {
		t.Errorf("site after a forced restore: %+v", site)
	}
}

// TestRestoreSnapshotSurvivesRestart: a lone server restarted after a restore starts from the
// restored snapshot (its applied index is the snapshot's, so nothing reads the log's gap).
func TestRestoreSnapshotSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startLoneServer(t, dir)
	saved := saveBackup(t, n)
	want := tokenCount(t, n)
	if _, err := n.CreateToken(store.Actor{}, store.RoleAgent, "after"); err != nil {
		t.Fatal(err)
	}
	out, err := n.RestoreSnapshot(bytes.NewReader(saved), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n = startLoneServer(t, dir)
	defer n.Shutdown()
	if got := tokenCount(t, n); got != want {
		t.Errorf("after restart %d tokens, want the backup's %d", got, want)
	}
	if applied := n.fsm.AppliedIndex(); applied < out.Index {
		t.Errorf("after restart the FSM applied index is %d, below the restore's %d", applied, out.Index)
	}
}

// TestSnapshotConfig: the configured Raft snapshot settings reach raft.Config; zero keeps the
// defaults.
func TestSnapshotConfig(t *testing.T) {
	n := &Node{cfg: Config{SnapshotThreshold: 100, SnapshotInterval: time.Second}}
	conf := raft.DefaultConfig()
	n.applySnapshotConfig(conf)
	if conf.SnapshotThreshold != 100 || conf.SnapshotInterval != time.Second || conf.TrailingLogs != raft.DefaultConfig().TrailingLogs {
		t.Errorf("raft config %d %v %d", conf.SnapshotThreshold, conf.SnapshotInterval, conf.TrailingLogs)
	}
	if n.MaxSnapshotBytes() != DefaultMaxSnapshotBytes {
		t.Errorf("default max snapshot bytes %d", n.MaxSnapshotBytes())
	}
}
