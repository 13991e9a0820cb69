package hierarchy

// The child's reports up: its language ranges (and, at a relay, its subtree's), on a schedule,
// whenever they change, and after every applied run.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/replication/policy"
	"patchtree/store"
)

// reportLoop reports the child's ranges at start, whenever they change, on the languages rule's
// schedule, and again after a failure.
func (c *Child) reportLoop(ctx context.Context, link *Link) {
	attempt := 0
	for {
		ws := memdb.NewWatchSet()
		state := c.backend.State()
		langs, err := state.Languages(ws, store.LanguagesSite)
		state.SettingDoc(ws, policy.SettingsServerTasks) // a new schedule takes effect at once
		ranges := []string{}
		if err == nil && langs != nil && langs.Ranges != nil {
			ranges = langs.Ranges
		}
		var resp LanguageReportResponse
		_, err = c.call(ctx, http.MethodPut, ProtocolPath+"/languages", link.NodeToken, LanguageReport{Child: link.Child, Ranges: ranges}, &resp)
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
			c.cfg.Logger.Warn("the parent does not cover some of this site's languages", "uncovered", resp.Uncovered, "parent_ranges", resp.ParentRanges)
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
