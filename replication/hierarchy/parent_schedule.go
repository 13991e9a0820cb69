package hierarchy

// The parent's leader loop: the catalog schedule, alert logging, and the garbage collection of
// runs and tombstones.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"patchtree/store"
)

// LeaderLoop runs while this server leads: it fires the catalog schedule, logs language alerts
// as they are raised and cleared, and collects tombstones every child has passed.
func (p *Parent) LeaderLoop(ctx context.Context) {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return
	}
	p.leading.Store(true)
	p.health.forget() // another leader may have recorded runs since this server last led
	defer func() {
		p.leading.Store(false)
		p.runs.reset()
		p.wakeAll() // waiting pulls see leading == false and answer 503
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// The first collection waits a round, so that the children connected to the previous
	// leader have pulled here (their last contact counts towards holding tombstones back).
	lastCollect := time.Now()
	p.scheduleNext(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.pruneInflight(now)
			p.fireSchedule(now)
			if err := p.logAlerts(); err != nil {
				p.logger.Warn("language alerts", "error", err)
			}
			if now.Sub(lastCollect) > 30*time.Second {
				lastCollect = now
				if err := p.collectTombstones(now); err != nil {
					p.logger.Warn("collect tombstones", "error", err)
				}
				if err := p.pruneRuns(); err != nil {
					p.logger.Warn("prune replication runs", "error", err)
				}
				// The links' health, for a child that stopped polling (Status logs a change).
				if _, err := p.Status(""); err != nil {
					p.logger.Warn("link health", "error", err)
				}
			}
		}
	}
}

// inflightTTL is how long an unacknowledged run is remembered (its child may have died).
const inflightTTL = time.Hour

func (p *Parent) pruneInflight(now time.Time) { p.runs.prune(now, inflightTTL) }

// scheduledRules are the rules with a schedule, and what their firing asks for.
var scheduledRules = []struct {
	scope string
	rule  func(Rules) string
}{
	{ScopeCatalog, func(r Rules) string { return r.Catalog }},
	{ScopePolicies, func(r Rules) string { return r.Policies }},
	{ScopeSettings, func(r Rules) string { return r.Settings }},
}

func (p *Parent) scheduleNext(now time.Time) {
	rules := LoadRules(p.backend.State())
	p.schedule.mu.Lock()
	defer p.schedule.mu.Unlock()
	for _, sr := range scheduledRules {
		sched, err := ParseSchedule(sr.rule(rules), true)
		if err != nil || sched.Continuous {
			delete(p.schedule.next, sr.scope)
			continue
		}
		if _, ok := p.schedule.next[sr.scope]; !ok {
			p.schedule.next[sr.scope] = sched.Next(now)
		}
	}
}

// NextRun is when the catalog schedule fires next (zero: continuous).
func (p *Parent) NextRun() time.Time {
	t, _ := p.schedule.at(ScopeCatalog)
	return t
}

func (p *Parent) fireSchedule(now time.Time) {
	p.scheduleNext(now) // rules may have changed from continuous
	p.schedule.mu.Lock()
	var due []string
	for scope, next := range p.schedule.next {
		if !now.Before(next) {
			due = append(due, scope)
			delete(p.schedule.next, scope)
		}
	}
	p.schedule.mu.Unlock()
	sort.Strings(due)
	for _, scope := range due {
		if _, err := p.ReplicateNow(NowRequest{Scope: scope, Reason: "schedule"}); err != nil {
			p.logger.Warn("scheduled replication", "scope", scope, "error", err)
		}
	}
	if len(due) > 0 {
		p.scheduleNext(now)
	}
}

// RulesChanged re-reads the schedule (after PUT /v1/replication/rules) and wakes every child.
func (p *Parent) RulesChanged() {
	p.schedule.mu.Lock()
	clear(p.schedule.next)
	p.schedule.mu.Unlock()
	p.scheduleNext(time.Now())
	p.wakeAll()
}

// wakeAll wakes every waiting pull so that it re-evaluates whether a run is due (new rules, or
// the end of leadership; a new catalog version wakes them through the store's watch).
func (p *Parent) wakeAll() { p.polls.wakeAll() }

// logAlerts logs language alerts as they are raised and cleared (security alerts are logged
// where they are raised).
func (p *Parent) logAlerts() error {
	alerts, err := p.languageAlerts()
	if err != nil {
		return fmt.Errorf("list language alerts: %w", err)
	}
	now := map[string]bool{}
	for _, a := range alerts {
		key := a.Path + "\x00" + a.Range
		now[key] = true
		if !p.alerts[key] {
			p.logger.Warn("language alert raised", "site", a.Path, "child", a.Child, "range", a.Range, "root_ranges", a.RootRanges)
		}
	}
	for key := range p.alerts {
		if !now[key] {
			p.logger.Info("language alert cleared", "alert", key)
		}
	}
	p.alerts = now
	return nil
}

// KeepRunsPerChild is how many replication runs (down and up) the parent keeps per child; older
// ones are forgotten, so that status and replicate now --wait never scan an unbounded history.
const KeepRunsPerChild = 1000

// pruneRuns forgets the oldest runs of children with more than KeepRunsPerChild (plus a margin,
// so that pruning is one entry every hundred runs, not one per run).
func (p *Parent) pruneRuns() error {
	state := p.backend.State()
	children, err := state.Children(nil)
	if err != nil {
		return fmt.Errorf("read children: %w", err)
	}
	var errs []error
	for _, c := range children {
		n, err := state.ChildRunCount(c.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("count the runs of child %q: %w", c.Name, err))
			continue
		}
		if n > KeepRunsPerChild+100 {
			if _, err := p.backend.PruneRuns(c.Name, KeepRunsPerChild); err != nil {
				errs = append(errs, fmt.Errorf("prune the runs of child %q: %w", c.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// TombstoneHoldLimit is how long a child that is behind may hold tombstone collection back:
// one that has neither acknowledged a catalog run nor pulled for longer (offline, or enrolled
// and gone) no longer counts, nor does one that never acknowledged a catalog run (not joined,
// no languages reported yet, or before its first run). Such a child, when it comes, has a cursor
// older than the tombstone horizon and gets a complete run instead of a differential one.
const TombstoneHoldLimit = 7 * 24 * time.Hour

// holdsTombstones says whether a child's cursor holds tombstone collection back at now.
func (p *Parent) holdsTombstones(c *store.Child, now time.Time) bool {
	if c.Cursor == 0 {
		return false
	}
	last := c.CursorAt
	if seen, _ := p.polls.lastSeen(c.Name); seen.After(last) {
		last = seen
	}
	return now.Sub(last) <= TombstoneHoldLimit
}

// collectTombstones drops tombstones that every child holding them back (holdsTombstones) has
// passed.
func (p *Parent) collectTombstones(now time.Time) error {
	state := p.backend.State()
	children, err := state.Children(nil)
	if err != nil {
		return fmt.Errorf("read children: %w", err)
	}
	view, err := state.CatalogView(nil)
	if err != nil {
		return fmt.Errorf("read the catalog: %w", err)
	}
	// Up to the catalog's version when no child holds anything back: tombstones are only
	// written with a catalog version, so every one is at or below it.
	min := view.Info.Version
	for _, c := range children {
		if p.holdsTombstones(c, now) && c.Cursor < min {
			min = c.Cursor
		}
	}
	if min == 0 {
		return nil
	}
	old := false
	if err := view.TombstonesSince(0, func(t *store.Tombstone) bool {
		old = old || t.Index <= min
		return !old
	}); err != nil {
		return fmt.Errorf("read tombstones: %w", err)
	}
	if !old {
		return nil
	}
	if _, err := p.backend.CollectTombstones(min); err != nil {
		return fmt.Errorf("collect tombstones up to %d: %w", min, err)
	}
	return nil
}
