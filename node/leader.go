package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

const (
	barrierTimeout    = time.Minute
	reconcileInterval = time.Minute
	catchUpPoll       = 50 * time.Millisecond
)

// monitorLeadership starts the leader-only work when this server gains leadership and stops it,
// waiting for every loop to return, when it loses leadership or shuts down.
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	var term *leaderTerm
	for {
		select {
		case isLeader := <-n.leaderCh:
			switch {
			case isLeader && term == nil:
				term = n.startLeaderTerm()
			case !isLeader && term != nil:
				term.stop()
				term = nil
				n.logger.Info("lost leadership; leader loops stopped")
			}
		case <-n.shutdownCh:
			if term != nil {
				term.stop()
			}
			return
		}
	}
}

// leaderTerm is one stretch of leadership: its loops run until stop.
type leaderTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *Node) startLeaderTerm() *leaderTerm {
	ctx, cancel := context.WithCancel(context.Background())
	t := &leaderTerm{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		n.leaderLoop(ctx)
	}()
	return t
}

// stop cancels the term and waits until every loop has returned.
func (t *leaderTerm) stop() {
	t.cancel()
	<-t.done
}

// leaderLoop establishes leadership, runs the leader loops until ctx ends, then waits for them.
func (n *Node) leaderLoop(ctx context.Context) {
	n.logger.Info("gained leadership")
	defer n.established.Store(false)
	for {
		err := n.establishLeadership(ctx)
		if err == nil {
			break
		}
		n.logger.Error("establish leadership failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	n.established.Store(true)
	n.markCaughtUp()

	loops := append([]LeaderLoop{{Name: "site-reconcile", Run: n.reconcileLoop}}, n.cfg.LeaderLoops...)
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		n.setRunning(l.Name, true)
		go func(l LeaderLoop) {
			defer wg.Done()
			defer n.setRunning(l.Name, false)
			l.Run(ctx)
		}(l)
	}
	n.logger.Info("leader loops started", "loops", len(loops))
	<-ctx.Done()
	wg.Wait()
}

// establishLeadership makes the FSM current (a barrier), initialises the site on its very first
// leadership, and records this server's addresses.
func (n *Node) establishLeadership(ctx context.Context) error {
	if err := n.raft.Barrier(barrierTimeout).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := n.initSite(); err != nil {
		return err
	}
	return n.reconcile()
}

// initSite writes the site's identity, its admin token and its initial languages, once. The
// admin token is written to <data-dir>/admin.token before the entry is applied, so that a crash
// in between leaves a file whose token is simply replaced on the next attempt, never a stored
// admin token nobody holds.
func (n *Node) initSite() error {
	site, err := n.State().Site(nil)
	if err != nil {
		return err
	}
	if site != nil {
		// New refused to start if the flags name another site identity (sitecheck.go).
		return nil
	}
	id, bearer, hash := newSecret()
	if n.cfg.AdminToken != "" {
		var secret string
		bearer = n.cfg.AdminToken
		id, secret, _ = store.SplitBearer(bearer)
		hash = store.HashSecret(secret)
	}
	tokenPath := AdminTokenPath(n.cfg.DataDir)
	if err := WriteFileAtomic(tokenPath, []byte(bearer+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tokenPath, err)
	}
	now := time.Now().UTC()
	sid, sbearer, shash := newSecret()
	req := &SiteInitRequest{
		Site:        store.SiteInfo{SiteID: randomID(8), Name: n.cfg.Name, Role: n.cfg.Role, CreatedAt: now, ServerBearer: sbearer},
		AdminToken:  store.Token{ID: id, SecretHash: hash, Role: store.RoleAdmin, Name: "initial admin", CreateTime: now},
		Languages:   n.cfg.Languages,
		ServerToken: &store.Token{ID: sid, SecretHash: shash, Role: store.RoleServer, Name: "site servers", CreateTime: now},
	}
	if _, err := n.apply(SiteInitRequestType, req); err != nil {
		return fmt.Errorf("initialise site: %w", err)
	}
	n.logger.Info("site initialised", "site", n.cfg.Name, "role", n.cfg.Role, "admin_token_file", tokenPath)
	return nil
}

// AdminTokenPath is where the first admin token of a site is written.
func AdminTokenPath(dataDir string) string { return filepath.Join(dataDir, "admin.token") }

// reconcileLoop keeps the servers table in line with Raft's configuration while this server leads.
func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.reconcile(); err != nil && ctx.Err() == nil {
				n.logger.Warn("reconcile servers", "error", err)
			}
		}
	}
}

// reconcile records this leader's own addresses (fixing its Raft address if a lone server came
// back on a different port) and forgets servers that are no longer in the Raft configuration.
func (n *Node) reconcile() error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("raft configuration: %w", err)
	}
	self := raft.ServerAddress(n.trans.LocalAddr())
	members := map[string]bool{}
	for _, s := range cf.Configuration().Servers {
		members[string(s.ID)] = true
		if string(s.ID) == n.id && s.Address != self {
			n.logger.Info("updating own raft address", "old", s.Address, "new", self)
			if err := n.raft.AddVoter(s.ID, self, 0, applyTimeout).Error(); err != nil {
				return fmt.Errorf("update own raft address: %w", err)
			}
		}
	}
	state := n.State()
	me, err := state.Server(nil, n.id)
	if err != nil {
		return err
	}
	if me == nil || me.APIAddr != n.cfg.APIAddr || me.RaftAddr != string(self) {
		srv := store.Server{ID: n.id, RaftAddr: string(self), APIAddr: n.cfg.APIAddr}
		if _, err := n.apply(ServerUpsertRequestType, &ServerUpsertRequest{Server: srv}); err != nil {
			return fmt.Errorf("record own addresses: %w", err)
		}
	}
	servers, err := state.Servers(nil)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if !members[s.ID] {
			if _, err := n.apply(ServerDeleteRequestType, &ServerDeleteRequest{ID: s.ID}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("forget server %s: %w", s.ID, err)
			}
		}
	}
	return nil
}

func (n *Node) setRunning(name string, on bool) {
	n.loopsMu.Lock()
	defer n.loopsMu.Unlock()
	if on {
		n.running[name] = true
	} else {
		delete(n.running, name)
	}
}

// RunningLoops lists the leader loops running on this server right now (empty on followers).
func (n *Node) RunningLoops() []string {
	n.loopsMu.Lock()
	defer n.loopsMu.Unlock()
	out := make([]string, 0, len(n.running))
	for name := range n.running {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// trackCatchUp marks a follower caught up once it knows a leader and its FSM has applied
// everything that leader told it is committed (checked on two consecutive polls).
func (n *Node) trackCatchUp() {
	defer n.wg.Done()
	t := time.NewTicker(catchUpPoll)
	defer t.Stop()
	streak := 0
	for !n.caughtUp.Load() {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
		_, leader := n.raft.LeaderWithID()
		commit := n.raft.CommitIndex()
		if leader != "" && string(leader) != n.id && commit > 0 && n.fsmCaughtUp(commit) {
			streak++
		} else {
			streak = 0
		}
		if streak >= 2 {
			n.markCaughtUp()
		}
	}
}

// maxCatchUpScan bounds how many log entries past the FSM's applied index fsmCaughtUp reads;
// a longer gap means not caught up yet.
const maxCatchUpScan = 1024

// fsmCaughtUp reports whether the FSM has applied every entry up to commit that can change
// state. Raft hands only commands to the FSM, so entries after the FSM's applied index that are
// no-ops, barriers or configuration changes do not count, nor entries below the log's first
// index: Raft compacts the log only behind a snapshot the FSM has taken or restored.
func (n *Node) fsmCaughtUp(commit uint64) bool {
	applied := n.fsm.AppliedIndex()
	if applied >= commit {
		return true
	}
	if commit-applied > maxCatchUpScan {
		return false
	}
	first, err := n.logs.FirstIndex()
	if err != nil {
		return false
	}
	for i := max(applied+1, first); i <= commit; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

func (n *Node) markCaughtUp() {
	n.readyOnce.Do(func() {
		n.caughtUp.Store(true)
		close(n.caughtUpCh)
		n.logger.Info("caught up with the site's log", "fsm_applied_index", n.fsm.AppliedIndex(),
			"commit_index", n.raft.CommitIndex())
	})
}

// Ready reports whether this server has caught up with the site's log at least once since it
// started (before that, its state, tokens included, may lag behind what was acknowledged) and
// its data dir takes writes (else it cannot follow the log).
func (n *Node) Ready() bool { return n.NotReady() == nil }

// NotReady says why this server is not ready (nil: it is).
func (n *Node) NotReady() error {
	if !n.caughtUp.Load() {
		return fmt.Errorf("%w: this server has not applied the site's log through the commit index it learned from the leader (leader: %q)",
			ErrNotReady, n.leaderID())
	}
	if err := n.probe.problem(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return nil
}

// WaitReady blocks until this server has caught up (or ctx ends), then answers whether it is
// ready.
func (n *Node) WaitReady(ctx context.Context) error {
	select {
	case <-n.caughtUpCh:
		return n.NotReady()
	case <-ctx.Done():
		return fmt.Errorf("%w: this server has not caught up with the site's log yet (leader: %q)", ErrNotReady, n.leaderID())
	}
}

func (n *Node) leaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}
