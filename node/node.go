// Package node runs one server of a patchtree site: Raft with a durable log, the FSM over the
// store, leadership tracking with leader-only loops, and the write path every change takes.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"patchtree/store"
)

const (
	raftDirName      = "raft"
	snapshotsRetain  = 2
	applyTimeout     = 15 * time.Second
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
)

// Node is one server of a site.
type Node struct {
	cfg    Config
	id     string
	logger *slog.Logger

	fsm  *FSM
	raft *raft.Raft
	// logs is Raft's log store, read by the catch-up check.
	logs     raft.LogStore
	trans    raft.Transport
	boltLogs *raftboltdb.BoltStore
	// dataLock is the exclusive lock of the data dir, held until Shutdown.
	dataLock *DataDirLock
	// tls is the site CA and this server's certificate (nil with the in-memory test transport);
	// tlsMaterial is the same as PEM, handed to servers that join.
	tls         *siteTLS
	tlsMaterial SiteTLS

	leaderCh   chan bool
	shutdownCh chan struct{}
	shutdown   sync.Once
	wg         sync.WaitGroup

	loopsMu sync.Mutex
	running map[string]bool

	// established is true while this server leads and has finished establishing leadership.
	established atomic.Bool
	// caughtUp becomes true once this server has applied the site's log up to a commit index it
	// learned from a leader; until then its reads (and token checks) could be stale.
	caughtUp atomic.Bool
	// probe says whether the data dir takes writes (writeprobe.go).
	probe      *writeProbe
	caughtUpCh chan struct{}
	readyOnce  sync.Once

	// fatal receives an error that should stop the process (a join refused by the site).
	fatal chan error
}

// New starts a server: it opens (or creates) the data dir, recovers Raft state from the durable
// log and snapshots, bootstraps a single-server site only when there is no Raft state and no
// site to join, and starts tracking leadership.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.AdminToken != "" {
		if _, _, ok := store.SplitBearer(cfg.AdminToken); !ok {
			return nil, errors.New(`admin token must have the form "<id>.<secret>"`)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	lock, err := LockDataDir(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	id, err := loadNodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		lock.Release()
		return nil, err
	}
	fsm, err := NewFSM(cfg.Logger)
	if err != nil {
		lock.Release()
		return nil, err
	}
	fsm.beforeApply = cfg.beforeApply
	n := &Node{
		dataLock:   lock,
		cfg:        cfg,
		id:         id,
		logger:     cfg.Logger.With("node", id),
		fsm:        fsm,
		leaderCh:   make(chan bool, 1),
		shutdownCh: make(chan struct{}),
		probe:      newWriteProbe(cfg.DataDir, cfg.Logger),
		running:    map[string]bool{},
		caughtUpCh: make(chan struct{}),
		fatal:      make(chan error, 1),
	}
	if err := n.setupRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.checkStoredSite(); err != nil {
		if serr := n.Shutdown(); serr != nil {
			n.logger.Error("stop after a refused start", "error", serr)
		}
		return nil, err
	}
	n.wg.Add(3)
	go n.monitorLeadership()
	go n.trackCatchUp()
	go n.probe.run(n.shutdownCh)
	go n.registerSelf()
	return n, nil
}

// setupRaft opens the durable stores and transport and starts Raft.
func (n *Node) setupRaft() error {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.id)
	conf.NotifyCh = n.leaderCh
	conf.Logger = newRaftLogger(n.logger, "raft")
	n.applySnapshotConfig(conf)
	if n.cfg.raftConf != nil {
		n.cfg.raftConf(conf)
	}

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if n.cfg.inmem {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
		n.trans = n.cfg.transport
	} else {
		dir := filepath.Join(n.cfg.DataDir, raftDirName)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create raft dir: %w", err)
		}
		// NoSync stays false: every appended entry is fsynced before Raft acknowledges it.
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			return fmt.Errorf("open raft log %s: %w", filepath.Join(dir, "raft.db"), err)
		}
		n.boltLogs = bolt
		// A small cache: catalog batches make entries of up to 1 MiB each.
		cache, err := raft.NewLogCache(64, bolt)
		if err != nil {
			return fmt.Errorf("raft log cache: %w", err)
		}
		logs, stable = cache, bolt
		fss, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetain, conf.Logger)
		if err != nil {
			return fmt.Errorf("raft snapshot store: %w", err)
		}
		snaps = fss
	}

	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if !n.cfg.inmem {
		// Raft is mutual TLS against the site CA: no process without a certificate of this
		// site gets an answer on the Raft port.
		if err := n.prepareTLS(hasState); err != nil {
			return err
		}
		stream, err := newTLSStreamLayer(n.cfg.RaftBind, n.tls)
		if err != nil {
			return fmt.Errorf("raft listen on %s: %w", n.cfg.RaftBind, err)
		}
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: transportMaxPool, Timeout: transportTimeout, Logger: conf.Logger,
		})
	}
	n.logs = logs
	r, err := raft.NewRaft(conf, n.fsm, logs, stable, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r

	switch {
	case hasState:
		n.logger.Info("recovered raft state", "last_index", r.LastIndex(), "raft_addr", n.trans.LocalAddr())
	case n.cfg.skipBootstrap:
		n.logger.Info("waiting to be added to a site", "raft_addr", n.trans.LocalAddr())
	case n.cfg.JoinSite != "":
		n.logger.Info("joining site", "via", n.cfg.JoinSite, "raft_addr", n.trans.LocalAddr())
		n.wg.Add(1)
		go n.joinSite()
	default:
		n.logger.Info("bootstrapping a new single-server site", "raft_addr", n.trans.LocalAddr())
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: conf.LocalID, Address: n.trans.LocalAddr(),
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return nil
}

// ID returns this server's node id.
func (n *Node) ID() string { return n.id }

// State returns the current store for reads.
func (n *Node) State() *store.Store { return n.fsm.State() }

// Fatal delivers an error after which the process should exit (for example the site refused to
// let this server join).
func (n *Node) Fatal() <-chan error { return n.fatal }

// Shutdown stops leader loops and Raft and closes the durable stores.
func (n *Node) Shutdown() error {
	var err error
	n.shutdown.Do(func() {
		close(n.shutdownCh)
		if n.raft != nil {
			if e := n.raft.Shutdown().Error(); e != nil {
				err = fmt.Errorf("raft shutdown: %w", e)
			}
		}
		n.wg.Wait()
		n.closeStores()
	})
	return err
}

func (n *Node) closeStores() {
	if c, ok := n.trans.(raft.WithClose); ok {
		c.Close()
	}
	if n.boltLogs != nil {
		n.boltLogs.Close()
	}
	n.dataLock.Release()
}
