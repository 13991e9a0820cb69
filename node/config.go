package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Sentinel errors of a node.
var (
	// ErrNotLeader means this server is not the leader; the caller forwards to the leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means the site has no leader right now (an election is running).
	ErrNoLeader = errors.New("no leader")
	// ErrNotReady means this server has not yet caught up with the site's log.
	ErrNotReady = errors.New("site not ready")
	// ErrForbiddenJoin means a server credential tried to add a new server.
	ErrForbiddenJoin = errors.New("forbidden")
)

// Site roles.
const (
	RoleParent = "parent"
	RoleChild  = "child"
	// RoleRelay is a site with both links: it pulls its filtered view from its parent and
	// serves its own children from it (any depth).
	RoleRelay = "relay"
)

// ValidRole reports whether role is a site role.
func ValidRole(role string) bool {
	return role == RoleParent || role == RoleChild || role == RoleRelay
}

// LeaderLoop is work that only the leader runs. Run starts when this server gains leadership
// and must return promptly once ctx is cancelled (leadership lost or shutdown).
type LeaderLoop struct {
	Name string
	Run  func(ctx context.Context)
}

// Config configures one server of a site.
type Config struct {
	Name    string // site name
	Role    string // RoleParent, RoleRelay or RoleChild
	DataDir string
	// NodeID identifies this server in the Raft group. Empty: read from or written to
	// <data-dir>/node-id.
	NodeID string
	// RaftBind is the Raft TCP address; port 0 picks one (fine for a lone server only).
	RaftBind string
	// APIAddr is this server's HTTP API base URL as other servers of the site reach it.
	APIAddr string
	// Languages are the managed ranges a new site starts with (validated by the caller).
	Languages []string
	// LanguagesGiven says Languages came from an explicit flag: on a restart they must then equal
	// the site's managed ranges (sitecheck.go); otherwise they only seed a new site.
	LanguagesGiven bool
	// AdminToken, if set, is the bearer string of the first admin token instead of a random one.
	AdminToken string
	// JoinSite is the API URL of a server of an existing site to join (only used when this data
	// dir has no Raft state); JoinToken is the admin token used for it.
	JoinSite  string
	JoinToken string
	// LeaderLoops run on whichever server of the site leads.
	LeaderLoops []LeaderLoop

	// Raft snapshot settings (zero: hashicorp/raft's defaults): take a snapshot once this many
	// entries were applied since the last one (SnapshotThreshold), checking this often
	// (SnapshotInterval), and keep this many entries in the log behind a snapshot (TrailingLogs)
	// so that a lagging follower catches up from the log rather than a whole snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// MaxSnapshotBytes bounds the size of a backup that PUT /v1/snapshot accepts (zero:
	// DefaultMaxSnapshotBytes).
	MaxSnapshotBytes int64
	// Logger receives the server's log lines, hashicorp/raft's own included (raftlog.go maps
	// its levels); default: text on stderr.
	Logger *slog.Logger

	// Test hooks: an in-memory transport and log store instead of TCP and bolt.
	transport     raft.Transport
	inmem         bool
	skipBootstrap bool
	raftConf      func(*raft.Config)
	// beforeApply runs in FSM.Apply before each command (a test delays the FSM with it).
	beforeApply func(*raft.Log)
}

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("site name is required (--name)")
	case !ValidRole(c.Role):
		return fmt.Errorf("role must be %q, %q or %q, not %q", RoleParent, RoleRelay, RoleChild, c.Role)
	case c.DataDir == "":
		return errors.New("data directory is required (--data-dir)")
	case c.APIAddr == "":
		return errors.New("API address is required")
	case c.SnapshotInterval < 0 || c.MaxSnapshotBytes < 0:
		return errors.New("snapshot interval and maximum snapshot size must not be negative")
	case c.JoinSite != "" && c.JoinToken == "":
		return errors.New("joining a site needs its admin token (--token or PATCHTREE_TOKEN)")
	}
	return nil
}

// loadNodeID returns the configured node id or the one persisted in the data dir, creating it on
// first start.
func loadNodeID(dataDir, configured string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	if buf, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(buf))
		if configured != "" && configured != id {
			return "", fmt.Errorf("data dir belongs to node %q, not %q", id, configured)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := configured
	if id == "" {
		id = randomID(8)
	}
	if err := WriteFileAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// WriteFileAtomic writes data to a temp file, fsyncs it and renames it into place (for state
// files: node-id, admin.token, api.addr).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
