package hierarchy

// The child's reports up: its language ranges (and, at a relay, its subtree's), on a schedule,
// whenever they change, and after every applied run.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/replication/policy"
	"patchtree/store"
)

// reportMinInterval spaces a relay's reports: its subtree changes with every run it records.
const reportMinInterval = 250 * time.Millisecond

// reportLoop reports the site's ranges (at a relay, with its subtree's) at start, whenever
// they change, on the languages rule's schedule, after every applied run, and again after a
// failure. The answer tells the site where it stands in the tree (path, root's ranges).
func (c *Child) reportLoop(ctx context.Context, link *Link) {
	attempt := 0
	var last time.Time
	for {
		if !sleepCtx(ctx, time.Until(last.Add(reportMinInterval))) {
			return
		}
		ws := memdb.NewWatchSet()
		state := c.backend.State()
		state.SettingDoc(ws, policy.SettingsServerTasks) // a new schedule takes effect at once
		rep, err := c.buildReport(ws, state, link)
		var resp LanguageReportResponse
		if err == nil {
			_, err = c.call(ctx, http.MethodPut, ProtocolPath+"/languages", link.NodeToken, rep, &resp)
			last = time.Now()
		}
		if err == nil {
			err = c.learnUpstream(state, link, &resp)
		}
		wait := time.Until(c.nextReport(state))
		if err != nil {
			if ctx.Err() != nil || c.checkPermanent(err) {
				return
			}
			c.setErr(fmt.Errorf("report languages: %w", err))
			c.cfg.Logger.Warn("language report failed; retrying", "error", err)
			attempt++
			if !backoff(ctx, attempt) {
				return
			}
			continue
		}
		attempt = 0
		c.mu.Lock()
		c.state.RangesReported, c.state.Uncovered = true, resp.Uncovered
		c.mu.Unlock()
		if len(resp.Uncovered) > 0 {
			c.cfg.Logger.Warn("the root does not cover some of this site's languages", "uncovered", resp.Uncovered, "root_ranges", resp.RootRanges)
		}
		ws.Add(state.AbandonCh())
		timer := time.NewTimer(wait)
		wsCtx, cancel := context.WithCancel(ctx)
		changed := make(chan struct{})
		go func() { ws.WatchCtx(wsCtx); close(changed) }()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer.C:
		case <-c.report:
		}
		cancel()
		timer.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// sleepCtx sleeps for d (nothing if d <= 0); false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// buildReport is this site's language report: its own ranges and role and, for a relay, every
// site below it, with the union of all their ranges as what it must receive. ws watches what
// the report is made of.
func (c *Child) buildReport(ws memdb.WatchSet, state *store.Store, link *Link) (LanguageReport, error) {
	langs, err := state.Languages(ws, store.LanguagesSite)
	if err != nil {
		return LanguageReport{}, fmt.Errorf("read this site's languages: %w", err)
	}
	own := []string{}
	if langs != nil && langs.Ranges != nil {
		own = langs.Ranges
	}
	rep := LanguageReport{Child: link.Child, OwnRanges: own, Role: "child"}
	if site, err := state.Site(nil); err != nil {
		return LanguageReport{}, fmt.Errorf("read the site: %w", err)
	} else if site != nil && site.Role == "relay" {
		rep.Role = "relay"
	}
	children, err := state.Children(ws)
	if err != nil {
		return LanguageReport{}, fmt.Errorf("read this site's children: %w", err)
	}
	lists := [][]string{own}
	if len(children) > 0 {
		runs, err := state.ReplicationRuns(nil)
		if err != nil {
			return LanguageReport{}, fmt.Errorf("read this site's runs: %w", err)
		}
		newest := newestRuns(runs)
		var next map[string]string // the schedule this site serves its children on: the same for each
		if down := c.cfg.Downstream; down != nil {
			next = down.nextRuns()
		}
		for _, ch := range children {
			if !ch.RangesReported {
				continue
			}
			lists = append(lists, ch.Ranges)
			rep.Subtree = append(rep.Subtree, c.describe(link.Child, ch, newest[ch.Name], next))
			for _, d := range ch.Subtree {
				d.Path = link.Child + "/" + d.Path
				rep.Subtree = append(rep.Subtree, d)
			}
		}
	}
	if len(rep.Subtree) > MaxSubtree {
		c.cfg.Logger.Warn("too many sites below this one to describe them all to the parent; the tree view lists the first ones", "sites", len(rep.Subtree), "max", MaxSubtree)
		rep.Subtree = rep.Subtree[:MaxSubtree]
	}
	rep.Ranges = unionRanges(lists...)
	return rep, nil
}

// childRuns is what a site reports up of one child's runs.
type childRuns struct {
	last     map[string]store.RunBrief
	cascades []string
}

// maxCascadesKept bounds the replicate-now ids reported per site.
const maxCascadesKept = 32

// newestRuns is, per child, its newest run down per scope and the cascades it verified.
func newestRuns(runs []*store.ReplicationRun) map[string]*childRuns {
	out := map[string]*childRuns{}
	for _, r := range runs { // ordered by id, which sorts by start time
		if r.Scope == ScopeCompliance {
			continue
		}
		cr := out[r.Child]
		if cr == nil {
			cr = &childRuns{last: map[string]store.RunBrief{}}
			out[r.Child] = cr
		}
		brief := r.Brief()
		for _, scope := range strings.Split(r.Scope, "+") {
			cr.last[scope] = brief
		}
		if r.Cascade != "" && r.Verified {
			cr.cascades = append(cr.cascades, r.Cascade)
		}
	}
	for _, cr := range out {
		if len(cr.cascades) > maxCascadesKept {
			cr.cascades = cr.cascades[len(cr.cascades)-maxCascadesKept:]
		}
	}
	return out
}

// describe is one direct child of this site as its parent's tree sees it.
func (c *Child) describe(self string, ch *store.Child, runs *childRuns, next map[string]string) store.Descendant {
	d := store.Descendant{Path: self + "/" + ch.Name, Role: ch.Role, Ranges: ch.OwnRanges, Cursor: ch.Cursor,
		CursorAt: ch.CursorAt, RootVersion: ch.RootVersion}
	if d.Role == "" {
		d.Role = "child"
	}
	if d.Ranges == nil {
		d.Ranges = ch.Ranges
	}
	if runs != nil {
		d.LastRuns, d.Cascades = runs.last, runs.cascades
	}
	if down := c.cfg.Downstream; down != nil {
		d.Connected = down.connected(ch.Name)
		d.NextRuns = next
	}
	return d
}

// learnUpstream keeps what the parent's answer says of the tree above this site: its path
// and the root's ranges (a parent from before relays is the root: its own ranges).
func (c *Child) learnUpstream(state *store.Store, link *Link, resp *LanguageReportResponse) error {
	up := Upstream{Path: resp.Path, RootRanges: resp.RootRanges, ParentRanges: resp.ParentRanges}
	if up.Path == "" {
		up.Path = link.ParentName + "/" + link.Child
	}
	if up.RootRanges == nil {
		up.RootRanges = resp.ParentRanges
	}
	old, err := loadUpstream(state, nil)
	if err != nil {
		return err
	}
	if old != nil && old.Path == up.Path && sameRanges(old.RootRanges, up.RootRanges) && sameRanges(old.ParentRanges, up.ParentRanges) {
		return nil
	}
	if _, err := c.backend.PutSetting(SettingUpstream, up); err != nil {
		return fmt.Errorf("store what the parent said of the tree: %w", err)
	}
	c.cfg.Logger.Info("this site's place in the tree", "path", up.Path, "root_ranges", up.RootRanges)
	return nil
}

// nextReport is when the language alerting rule fires next: on the schedule of the server-tasks
// settings the parent sent, else on this site's own languages rule.
func (c *Child) nextReport(s *store.Store) time.Time {
	spec := LoadRules(s).Languages
	if doc, err := s.SettingDoc(nil, policy.SettingsServerTasks); err == nil {
		if t := policy.ParseServerTasks(doc); t != nil && t.LanguageReport != "" {
			spec = t.LanguageReport
		}
	}
	sched, err := ParseSchedule(spec, false)
	if err != nil {
		return time.Now().Add(24 * time.Hour)
	}
	return sched.Next(time.Now())
}
