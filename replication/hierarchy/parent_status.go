package hierarchy

// What the parent reports about its children (GET /v1/children).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"patchtree/store"
)

// ChildStatus is what GET /v1/children reports for one child.
type ChildStatus struct {
	Name      string     `json:"name"`
	Joined    bool       `json:"joined"`
	Connected bool       `json:"connected"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	// Ranges are what the child receives: its own ranges and its subtree's (OwnRanges). Role
	// and Subtree are what it reported of itself and every site below it (a relay).
	Ranges         []string              `json:"ranges"`
	OwnRanges      []string              `json:"own_ranges"`
	Role           string                `json:"role,omitempty"`
	Subtree        []store.Descendant    `json:"subtree"`
	RangesReported bool                  `json:"ranges_reported"`
	Cursor         uint64                `json:"cursor"`
	LagIndex       uint64                `json:"lag_index"`
	LagSeconds     float64               `json:"lag_seconds"`
	LastRun        *store.ReplicationRun `json:"last_run,omitempty"`
	NextRun        *time.Time            `json:"next_run,omitempty"`
	Status         string                `json:"status"`
	// Health is the link's health (active, degraded, failed) after ConsecutiveFailures runs
	// in a row that failed or did not verify (link_health.go).
	Health              string `json:"health"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	// PolicyCursor and SettingsCursor are the policies and settings indexes the child holds;
	// PolicyLag is how many policy writes it is behind. LastRuns is the last run per scope.
	PolicyCursor   uint64                           `json:"policy_cursor"`
	PolicyLag      uint64                           `json:"policy_lag"`
	SettingsCursor uint64                           `json:"settings_cursor"`
	LastRuns       map[string]*store.ReplicationRun `json:"last_runs,omitempty"`
	// Compliance is the child's newest compliance summary as received (nil: none yet).
	Compliance *ChildCompliance `json:"compliance,omitempty"`
}

// ChildCompliance is what a parent knows of a child's compliance reporting.
type ChildCompliance struct {
	Seq         uint64    `json:"seq"`
	AsOf        time.Time `json:"as_of"`
	LastContact time.Time `json:"last_contact"`
	Interval    string    `json:"interval"`
}

// Status reports every child (or one, by name).
func (p *Parent) Status(only string) ([]ChildStatus, error) {
	state := p.backend.State()
	children, err := state.Children(nil)
	if err != nil {
		return nil, err
	}
	info, err := state.Catalog(nil)
	if err != nil {
		return nil, err
	}
	runs, err := state.ReplicationRuns(nil)
	if err != nil {
		return nil, err
	}
	last := map[string]*store.ReplicationRun{}
	lastByScope := map[string]map[string]*store.ReplicationRun{}
	for _, r := range runs {
		if prev, ok := last[r.Child]; !ok || r.ID > prev.ID {
			last[r.Child] = r
		}
		if lastByScope[r.Child] == nil {
			lastByScope[r.Child] = map[string]*store.ReplicationRun{}
		}
		for _, scope := range strings.Split(r.Scope, "+") {
			if prev, ok := lastByScope[r.Child][scope]; !ok || r.ID > prev.ID {
				lastByScope[r.Child][scope] = r
			}
		}
	}
	failures := consecutiveFailures(runs)
	now := time.Now()
	pidx := state.PoliciesIndex(nil)
	sums, err := state.ChildSummaries(nil)
	if err != nil {
		return nil, fmt.Errorf("read compliance summaries: %w", err)
	}
	summaries := map[string]*ChildCompliance{}
	for _, cs := range sums {
		summaries[cs.Child] = &ChildCompliance{Seq: cs.Seq, AsOf: cs.AsOf, LastContact: cs.LastContact, Interval: cs.Interval.String()}
	}
	out := []ChildStatus{}
	for _, c := range children {
		if only != "" && c.Name != only {
			continue
		}
		st := ChildStatus{Name: c.Name, Joined: c.NodeTokenID != "", Ranges: c.Ranges, RangesReported: c.RangesReported,
			Cursor: c.Cursor, LastRun: last[c.Name], PolicyCursor: c.PolicyCursor, SettingsCursor: c.SettingsCursor,
			LastRuns: lastByScope[c.Name], Compliance: summaries[c.Name], OwnRanges: c.OwnRanges, Role: c.Role, Subtree: nonNilSubtree(c.Subtree)}
		if st.OwnRanges == nil {
			st.OwnRanges = c.Ranges // a child from before relays reports only its own ranges
		}
		st.ConsecutiveFailures = failures[c.Name] + p.missedContacts(c.Name, now)
		st.Health = p.thresholds.Of(st.ConsecutiveFailures)
		if p.leading.Load() {
			p.health.note(p.logger, c.Name, st.Health, st.ConsecutiveFailures)
		}
		if pidx > c.PolicyCursor {
			st.PolicyLag = pidx - c.PolicyCursor
		}
		if seen, ok := p.polls.lastSeen(c.Name); ok {
			st.LastSeen = &seen
			st.Connected = p.connected(c.Name)
		}
		if next, ok := p.schedule.at(ScopeCatalog); ok {
			st.NextRun = &next
		}
		if info.Version > c.Cursor {
			st.LagIndex = info.Version - c.Cursor
			if !info.UpdatedAt.IsZero() {
				st.LagSeconds = now.Sub(info.UpdatedAt).Seconds()
			}
		}
		switch {
		case !st.Joined:
			st.Status = "enrolled; waiting for the child to join with its join token"
		case !c.RangesReported:
			st.Status = "joined; waiting for the child's first language report (no catalog is sent before it)"
		case c.NeedsComplete:
			st.Status = "last run did not verify; the next run is complete"
		case st.LagIndex == 0:
			st.Status = "up to date"
		default:
			st.Status = fmt.Sprintf("%d catalog versions behind", st.LagIndex)
		}
		out = append(out, st)
	}
	if only != "" && len(out) == 0 {
		return nil, fmt.Errorf("child %q: %w", only, store.ErrNotFound)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
