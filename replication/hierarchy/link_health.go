package hierarchy

// Link health, as ConfigMgr reports its replication links: a link is active, degraded after
// DegradedAfter consecutive failures, and failed after FailedAfter. At the parent a failure is
// a run of the child that failed or did not verify (the child's run history, newest first),
// plus each poll window the child let pass without polling the leader (a missed contact); at
// the child it is a request to the parent that failed (a missed contact) or a run that did not
// verify. A verified run ends the run streak, a contact the missed contacts.

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"patchtree/store"
)

// The health of a link.
const (
	HealthActive   = "active"
	HealthDegraded = "degraded"
	HealthFailed   = "failed"
)

// The default thresholds (serve --link-degraded-after, --link-failed-after).
const (
	DefaultDegradedAfter = 3
	DefaultFailedAfter   = 10
)

// HealthThresholds turn a count of consecutive failures into a health.
type HealthThresholds struct {
	DegradedAfter int
	FailedAfter   int
}

// DefaultHealthThresholds are the defaults.
var DefaultHealthThresholds = HealthThresholds{DegradedAfter: DefaultDegradedAfter, FailedAfter: DefaultFailedAfter}

// Validate checks that the thresholds are positive and in order.
func (t HealthThresholds) Validate() error {
	if t.DegradedAfter < 1 || t.FailedAfter < t.DegradedAfter {
		return fmt.Errorf("link health: degraded after %d and failed after %d failures: need 1 <= degraded <= failed",
			t.DegradedAfter, t.FailedAfter)
	}
	return nil
}

// Of is the health after failures consecutive failures.
func (t HealthThresholds) Of(failures int) string {
	if t.DegradedAfter < 1 {
		t = DefaultHealthThresholds
	}
	switch {
	case failures >= t.FailedAfter:
		return HealthFailed
	case failures >= t.DegradedAfter:
		return HealthDegraded
	default:
		return HealthActive
	}
}

// runFailed reports whether a run counts as a failure: it failed, or it did not verify.
func runFailed(r *store.ReplicationRun) bool { return r.Error != "" || !r.Verified }

// consecutiveFailures counts, per child, its newest runs down the link that failed, up to its
// newest good one (the compliance summaries coming up are not runs of the link's health).
func consecutiveFailures(runs []*store.ReplicationRun) map[string]int {
	byChild := map[string][]*store.ReplicationRun{}
	for _, r := range runs {
		if r.Scope != ScopeCompliance {
			byChild[r.Child] = append(byChild[r.Child], r)
		}
	}
	out := make(map[string]int, len(byChild))
	for child, rs := range byChild {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID > rs[j].ID })
		n := 0
		for _, r := range rs {
			if !runFailed(r) {
				break
			}
			n++
		}
		out[child] = n
	}
	return out
}

// healthLog keeps each link's count of consecutive failures, as of the runs the leader recorded,
// and logs the link's health once per transition.
type healthLog struct {
	mu       sync.Mutex
	last     map[string]string
	failures map[string]int
	// lastRun is the newest run counted per link: the runs are counted off the
	// acknowledgement's path, and one that comes in after a newer one is not counted again.
	lastRun map[string]string
}

func newHealthLog() *healthLog {
	return &healthLog{last: map[string]string{}, failures: map[string]int{}, lastRun: map[string]string{}}
}

// record counts a run of a link: it returns the link's consecutive failures after it, seeding
// the count from the run history (seed) the first time it sees the link. A run older than one
// already counted changes nothing.
func (h *healthLog) record(link, runID string, failed bool, seed func() (int, error)) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.failures[link]
	if ok && runID <= h.lastRun[link] {
		return n, nil
	}
	h.lastRun[link] = runID
	if !ok {
		// The history already holds this run: it is counted in the seed.
		seeded, err := seed()
		if err != nil {
			return 0, err
		}
		h.failures[link] = seeded
		return seeded, nil
	}
	if failed {
		n++
	} else {
		n = 0
	}
	h.failures[link] = n
	return n, nil
}

// forget drops the counts, which the next run of each link seeds again from the history.
func (h *healthLog) forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.failures)
	clear(h.lastRun)
}

// note records a link's health and logs it when it changed (not the first time a link is
// seen active, which is no news).
func (h *healthLog) note(logger *slog.Logger, link, health string, failures int) {
	h.mu.Lock()
	prev := h.last[link]
	h.last[link] = health
	h.mu.Unlock()
	logHealthChange(logger, "link health changed", prev, health, failures, "link", link)
}

// logHealthChange logs a link's health going from prev ("" for a link not seen before) to
// health, at warning level unless it is back to active; an unchanged health, or a new link that
// is active, is no news.
func logHealthChange(logger *slog.Logger, msg, prev, health string, failures int, args ...any) {
	if prev == health || (prev == "" && health == HealthActive) {
		return
	}
	if prev == "" {
		prev = HealthActive
	}
	level := slog.LevelWarn
	if health == HealthActive {
		level = slog.LevelInfo
	}
	logger.Log(context.Background(), level, msg, append(args, "from", prev, "to", health, "consecutive_failures", failures)...)
}

// missedContacts is how many poll windows (the long-poll's wait plus 10 s, as connected has it)
// a child let pass since it last polled this leader: each counts as a failure. A child that has
// not polled this server since it began to lead missed none here.
func (p *Parent) missedContacts(child string, now time.Time) int {
	seen, ok := p.polls.lastSeen(child)
	if !ok {
		return 0
	}
	return int(now.Sub(seen) / (p.pollWait + 10*time.Second))
}

// SetHealthThresholds sets the thresholds of the links to the children (before SetBackend).
func (p *Parent) SetHealthThresholds(t HealthThresholds) { p.thresholds = t }

// noteRunHealth logs a child's link health if the run the leader just recorded changed it. The
// count goes on from the previous run's (the run history is read once per child and leader
// process), so that an acknowledgement waits for no scan of the history.
func (p *Parent) noteRunHealth(run store.ReplicationRun) {
	n, err := p.health.record(run.Child, run.ID, runFailed(&run), func() (int, error) {
		runs, err := p.backend.State().ReplicationRuns(nil)
		if err != nil {
			return 0, fmt.Errorf("read the run history for the link health: %w", err)
		}
		return consecutiveFailures(runs)[run.Child], nil
	})
	if err != nil {
		p.logger.Warn("link health", "child", run.Child, "error", err)
		return
	}
	p.health.note(p.logger, run.Child, p.thresholds.Of(n), n)
}

// updateHealth sets the child side's health of its parent link from the failures of its
// requests (reset by a contact) and of its runs (reset by a verified run), and logs a change.
// Under c.mu.
func (c *Child) updateHealth() {
	n := c.contactFailures + c.runFailures
	health := c.cfg.Health.Of(n)
	prev := c.state.Health
	c.state.Health, c.state.ConsecutiveFailures = health, n
	logHealthChange(c.cfg.Logger, "parent link health changed", prev, health, n)
}
