package hierarchy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/klauspost/compress/zstd"

	"patchtree/replication/compliance"
	"patchtree/replication/policy"
	"patchtree/store"
)

// ScopeCompliance is the upward scope: a child's compliance summary.
const ScopeCompliance = "compliance"

// DefaultSummarySchedule is the compliance summary rule's schedule when the parent's
// server-tasks settings name none.
const DefaultSummarySchedule = "1h"

// SummaryReport is a child's compliance summary rule report: the summary itself when it changed
// (a new, larger Seq), or only its sequence and digest when it did not (Unchanged), which tells
// the parent the child is alive and current. The body travels zstd-compressed.
//
// Subtree, from a relay, lists every site below it whose summary it holds
// (compliance_subtree.go); the parent drops what it stored below the child and the list lacks,
// so every report carries the whole list, changed or not (a child without children sends none).
type SummaryReport struct {
	Child     string             `json:"child,omitempty"`
	Seq       uint64             `json:"seq"`
	Digest    string             `json:"digest"`
	Trigger   string             `json:"trigger"`
	Interval  string             `json:"interval"`
	Unchanged bool               `json:"unchanged,omitempty"`
	Summary   json.RawMessage    `json:"summary,omitempty"`
	Subtree   []ForwardedSummary `json:"subtree,omitempty"`
}

// SummaryAnswer says whether the parent stored the summary, and why not. NextSeq is the
// sequence the parent accepts for the child's next new summary: the parent owns the sequence,
// and a child that lost track of it (a restart after storing a sequence it never sent, a parent
// restored from an older state) continues from there.
//
// Want lists the paths of the report's subtree whose summary the parent lacks (the relay sends
// them next), Refused those it refused for their numbers.
type SummaryAnswer struct {
	Accepted bool          `json:"accepted"`
	Reason   string        `json:"reason,omitempty"`
	Seq      uint64        `json:"seq"`
	NextSeq  uint64        `json:"next_seq,omitempty"`
	Want     []string      `json:"want,omitempty"`
	Refused  []RefusedPath `json:"refused,omitempty"`
}

// SummaryResult is the outcome of one firing of the compliance summary rule on a child.
type SummaryResult struct {
	Sent      bool      `json:"sent"`
	Seq       uint64    `json:"seq"`
	Digest    string    `json:"digest"`
	BytesWire int64     `json:"bytes_wire"`
	BytesRaw  int64     `json:"bytes_raw"`
	Bulletins int       `json:"bulletins"`
	Computers int64     `json:"computers"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
	// Subtree counts the sites below this one that the report listed (a relay's), Forwarded
	// the summaries of theirs it sent in full.
	Subtree   int `json:"subtree,omitempty"`
	Forwarded int `json:"forwarded,omitempty"`
}

// ReceiveSummary stores a child's compliance summary if it carries the next sequence
// (store.NextSummarySeq) and numbers that can add up (checkSummary); replays and older sequences
// are answered but not stored. A sequence past the next one (ErrSummarySequence, 409) and
// impossible numbers (ErrImpossibleSummary, 400) are refused, logged and raised as an alert.
// The subtree of a relay's report is checked first (planSubtree: a malformed one refuses the
// report whole) and stored once the child's own report is accepted.
func (p *Parent) ReceiveSummary(child string, rep SummaryReport, wire, raw int64) (*SummaryAnswer, error) {
	if rep.Child != "" && rep.Child != child {
		return nil, fmt.Errorf("%w: credential of %q sent a summary as %q", ErrWrongChild, child, rep.Child)
	}
	state := p.backend.State()
	c, err := state.Child(nil, child)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("child %q: %w", child, store.ErrNotFound)
	}
	p.touch(child)
	interval, err := ParseSchedule(rep.Interval, false)
	if err != nil {
		return nil, fmt.Errorf("summary interval: %w", err)
	}
	cur, err := state.ChildSummary(nil, child)
	if err != nil {
		return nil, err
	}
	next := store.NextSummarySeq(cur)
	now := time.Now().UTC()
	plan, err := p.planSubtree(state, c, rep.Subtree, now)
	if err != nil {
		p.summaryRefused(child, rep.Seq, err)
		return nil, err
	}
	row := &store.ChildSummary{Child: child, Seq: rep.Seq, Digest: rep.Digest, ReceivedAt: now, LastContact: now,
		Interval: scheduleSpan(interval)}
	var run *store.ReplicationRun
	if !rep.Unchanged {
		sum, err := p.checkReport(state, c, rep, next, now)
		if err != nil {
			p.summaryRefused(child, rep.Seq, err)
			return nil, err
		}
		if row.Summary, err = sum.Encode(); err != nil {
			return nil, err
		}
		row.AsOf = sum.AsOf
		run = &store.ReplicationRun{ID: newRunID(now), Child: child,
			Scope: ScopeCompliance, Mode: ModeComplete, Trigger: rep.Trigger, To: rep.Seq, Records: len(sum.Bulletins),
			BytesWire: wire, BytesRaw: raw, StartedAt: now, FinishedAt: now, Verified: true,
			ParentDigest: rep.Digest, ChildDigest: rep.Digest}
	}
	stored, reason, err := p.backend.PutChildSummary(row, run)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another report of this child was stored first: the store refused the jump.
			err = fmt.Errorf("%w: %w", ErrSummarySequence, err)
			p.summaryRefused(child, rep.Seq, err)
		}
		return nil, err
	}
	// (WaitRuns waits for runs down only: a summary coming up wakes no one.)
	if stored {
		next = rep.Seq + 1
		p.logger.Info("compliance summary received", "child", child, "seq", rep.Seq, "bytes", wire)
	} else if reason != "unchanged" {
		p.logger.Info("compliance summary ignored", "child", child, "seq", rep.Seq, "reason", reason, "next_seq", next)
	}
	ans := &SummaryAnswer{Accepted: stored || reason == "unchanged", Reason: reason, Seq: rep.Seq, NextSeq: next}
	if ans.Accepted {
		// Only an accepted report speaks for the subtree: an older one (a deposed leader's) may
		// list what the relay no longer holds.
		if err := p.storeSubtree(child, plan, ans); err != nil {
			return nil, err
		}
	}
	return ans, nil
}

// checkReport decodes and checks a report that carries a summary: its sequence may be at most
// next (older ones and replays are answered by the store, not stored), its digest must match
// its content, and its numbers must add up within the child's view.
func (p *Parent) checkReport(state *store.Store, c *store.Child, rep SummaryReport, next uint64, now time.Time) (*compliance.Summary, error) {
	if rep.Seq > next {
		return nil, fmt.Errorf("%w: child %q sent sequence %d; the parent holds %d, so its next summary must have sequence %d",
			ErrSummarySequence, c.Name, rep.Seq, next-1, next)
	}
	sum, err := compliance.Decode(rep.Summary)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if got := sum.Digest(); got != rep.Digest {
		return nil, fmt.Errorf("summary digest %s does not match its content (%s): %w", abbrev(rep.Digest), abbrev(got), store.ErrInvalid)
	}
	if rep.Seq < next {
		return sum, nil // older or a replay: the store answers it and stores nothing
	}
	known, maxUpdates, err := childView(state, c)
	if err != nil {
		return nil, err
	}
	if err := checkSummary(c.Name, sum, known, maxUpdates, now); err != nil {
		return nil, err
	}
	return sum, nil
}

// scheduleSpan is how long a schedule goes between firings.
func scheduleSpan(s Schedule) time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	return 24 * time.Hour
}

// settingSummarySent is the child's record of the last summary it sent: its sequence and digest.
const settingSummarySent = "compliance-sent"

type summarySent struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
}

// summarySchedule is the compliance summary rule's schedule: the parent's server-tasks
// settings, else hourly.
func (c *Child) summarySchedule(s *store.Store) (string, Schedule) {
	spec := DefaultSummarySchedule
	if doc, err := s.SettingDoc(nil, policy.SettingsServerTasks); err == nil {
		if t := policy.ParseServerTasks(doc); t != nil && t.ComplianceSummary != "" {
			spec = t.ComplianceSummary
		}
	}
	sched, err := ParseSchedule(spec, false)
	if err != nil {
		spec = DefaultSummarySchedule
		sched, _ = ParseSchedule(spec, false)
	}
	return spec, sched
}

// summaryLoop runs the compliance summary rule: at start, on its schedule, when the schedule
// the parent sends changes (it takes effect at once), at a relay when a summary of a site below
// it changes (forwarded after forwardDebounce), and on replicate now (SendSummary is also called
// directly).
//
// It is anti-entropy: a failed report is retried with back-off (1 s doubling to a minute, never
// past the next scheduled firing), and each firing is jittered by up to a tenth of the interval
// (at most a minute) so that children on the same schedule do not report in the same second.
func (c *Child) summaryLoop(ctx context.Context) {
	fwd := &forwardState{}
	trigger := "start"
	for {
		if trigger != "" {
			for attempt := 0; ; attempt++ {
				_, err := c.sendSummary(ctx, trigger, fwd)
				if err == nil || ctx.Err() != nil || c.checkPermanent(err) {
					break
				}
				c.cfg.Logger.Warn("compliance summary not sent; retrying", "attempt", attempt+1, "error", err)
				_, sched := c.summarySchedule(c.backend.State())
				if time.Now().Add(time.Second<<min(attempt, 6)).After(sched.Next(time.Now())) || !backoff(ctx, attempt) {
					break // the next firing comes first
				}
			}
		}
		trigger = c.waitSchedule(ctx, fwd)
		if ctx.Err() != nil {
			return
		}
	}
}

// jitter is a random delay of up to a tenth of d, at most a minute.
func jitter(d time.Duration) time.Duration {
	max := min(d/10, time.Minute)
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// forwardDebounce is how long a relay waits after a summary of a site below it changed before
// it reports: the summaries that arrive meanwhile go up in the same report.
const forwardDebounce = time.Second

// waitSchedule waits for the next firing of the summary rule, a change of its schedule, or (at
// a relay) a change of the summaries below this site that fwd has not reported; it returns the
// trigger.
func (c *Child) waitSchedule(ctx context.Context, fwd *forwardState) string {
	spec, sched := c.summarySchedule(c.backend.State())
	timer := time.NewTimer(time.Until(sched.Next(time.Now())) + jitter(scheduleSpan(sched)))
	defer timer.Stop()
	for {
		state := c.backend.State()
		ws := memdb.NewWatchSet()
		state.SettingDoc(ws, policy.SettingsServerTasks)
		ws.Add(state.AbandonCh())
		tree, err := state.SummaryTree(ws)
		if err != nil {
			c.cfg.Logger.Warn("read the compliance summaries below this site", "error", err)
		} else if key := subtreeKey(collectSubtree(tree, "", time.Now(), nil)); key != fwd.sent {
			select {
			case <-ctx.Done():
				return ""
			case <-timer.C:
				return "schedule"
			case <-time.After(forwardDebounce):
				return "subtree"
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		select {
		case <-ctx.Done():
			cancel()
			return ""
		case <-timer.C:
			cancel()
			return "schedule"
		case <-ws.WatchCh(wctx):
			cancel()
			if now, _ := c.summarySchedule(c.backend.State()); now != spec {
				return "schedule-change"
			}
		}
	}
}

// SendSummary fires the compliance summary rule now: it builds the summary and sends it up only
// if it changed since the last one the parent accepted; otherwise it sends the sequence alone.
// A relay's report also lists the sites below it, and the summaries its parent asks for follow.
func (c *Child) SendSummary(ctx context.Context, trigger string) (*SummaryResult, error) {
	return c.sendSummary(ctx, trigger, &forwardState{})
}

// sendSummary is SendSummary with what the summary loop remembers of the subtree it forwarded.
func (c *Child) sendSummary(ctx context.Context, trigger string, fwd *forwardState) (*SummaryResult, error) {
	select {
	case <-c.ready:
	default:
		return nil, fmt.Errorf("%w: the child side is not ready", ErrNotLeading)
	}
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	link, err := c.link()
	if err != nil || link == nil {
		return nil, fmt.Errorf("not joined to a parent yet: %w", store.ErrConflict)
	}
	state := c.backend.State()
	spec, _ := c.summarySchedule(state)
	now := time.Now()
	sum, err := compliance.Build(state, link.Child, now)
	if err != nil {
		return nil, err
	}
	tree, err := state.SummaryTree(nil)
	if err != nil {
		return nil, err
	}
	below := collectSubtree(tree, link.Child, now, c.cfg.Logger)
	fwd.sent = subtreeKey(below)
	body, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	first, err := forwardList(below, fwd.unheld(), forwardBudget(len(body), below))
	if err != nil {
		return nil, err
	}
	res, ans, err := c.reportOwn(ctx, link, sum, body, trigger, spec, first)
	if err != nil {
		return nil, err
	}
	res.Subtree, res.Forwarded = len(below), countSummaries(first)
	if ans.Accepted && len(below)+len(fwd.held) > 0 {
		if err := c.forwardWanted(ctx, link, res, ans, below, fwd, spec, trigger); err != nil {
			return nil, err
		}
	}
	c.recordSummary(res)
	return res, nil
}

// reportOwn sends this site's own summary (or its sequence alone when it did not change) with
// the subtree list sub, following the parent's sequence, and returns the parent's last answer.
func (c *Child) reportOwn(ctx context.Context, link *Link, sum *compliance.Summary, body []byte, trigger, spec string,
	sub []ForwardedSummary) (*SummaryResult, *SummaryAnswer, error) {
	state := c.backend.State()
	digest := sum.Digest()
	// The last sequence sent: losing it would restart the sequence, which the parent ignores.
	var sent summarySent
	row, err := state.Setting(nil, settingSummarySent)
	if err != nil {
		return nil, nil, err
	}
	if row != nil {
		if err := json.Unmarshal(row.Value, &sent); err != nil {
			return nil, nil, fmt.Errorf("read the last compliance summary sent: %w", err)
		}
	}
	res := &SummaryResult{Digest: digest, Bulletins: len(sum.Bulletins), Computers: sum.Computers, At: time.Now().UTC()}
	base := sent.Seq
	if sent.Seq > 0 && sent.Digest == digest {
		ans, wire, raw, err := c.postSummary(ctx, link, SummaryReport{Child: link.Child, Seq: sent.Seq, Digest: digest,
			Trigger: trigger, Interval: spec, Unchanged: true, Subtree: sub})
		if err != nil {
			return nil, nil, err
		}
		if ans.Accepted {
			res.Seq, res.BytesWire, res.BytesRaw, res.Reason = sent.Seq, wire, raw, "unchanged"
			return res, ans, nil
		}
		// The parent does not hold it (restored from an older state, or this child stored a
		// sequence it never delivered): send it again, anew, with the sequence the parent expects.
		if ans.NextSeq > 0 {
			base = ans.NextSeq - 1
		}
	}
	for try := 0; ; try++ {
		// Record the new sequence before sending, so that a restart never reuses it for other numbers.
		next := summarySent{Seq: base + 1, Digest: digest}
		if _, err := c.backend.PutSetting(settingSummarySent, next); err != nil {
			return nil, nil, err
		}
		ans, wire, raw, err := c.postSummary(ctx, link, SummaryReport{Child: link.Child, Seq: next.Seq, Digest: digest,
			Trigger: trigger, Interval: spec, Summary: body, Subtree: sub})
		var he *httpError
		if try == 0 && errors.As(err, &he) && he.Status == http.StatusConflict {
			// The parent owns the sequence and expects another: an unchanged report of this one
			// asks it which (and changes nothing there).
			probe, _, _, perr := c.postSummary(ctx, link, SummaryReport{Child: link.Child, Seq: next.Seq, Digest: digest,
				Trigger: trigger, Interval: spec, Unchanged: true, Subtree: sub})
			if perr != nil {
				c.cfg.Logger.Warn("could not ask the parent which compliance summary sequence it expects", "error", perr)
			} else if probe.NextSeq > 0 && probe.NextSeq != next.Seq {
				c.cfg.Logger.Warn("compliance summary sequence out of step with the parent; continuing from its sequence",
					"sent", next.Seq, "parent_next", probe.NextSeq)
				base = probe.NextSeq - 1
				continue
			}
		}
		if err != nil {
			return nil, nil, err
		}
		if try == 0 && !ans.Accepted && ans.NextSeq > next.Seq {
			// Older than, or a replay of, what the parent holds: continue from its sequence.
			base = ans.NextSeq - 1
			continue
		}
		res.Seq, res.BytesWire, res.BytesRaw, res.Sent, res.Reason = next.Seq, wire, raw, ans.Accepted, ans.Reason
		c.cfg.Logger.Info("compliance summary sent", "seq", next.Seq, "trigger", trigger, "bulletins", len(sum.Bulletins),
			"computers", sum.Computers, "wire_bytes", wire, "accepted", ans.Accepted, "reason", ans.Reason)
		return res, ans, nil
	}
}

func (c *Child) recordSummary(r *SummaryResult) {
	c.mu.Lock()
	c.state.LastSummary = r
	c.mu.Unlock()
}

// postSummary sends a report zstd-compressed and returns the answer and the bytes sent.
func (c *Child) postSummary(ctx context.Context, link *Link, rep SummaryReport) (*SummaryAnswer, int64, int64, error) {
	raw, err := json.Marshal(rep)
	if err != nil {
		return nil, 0, 0, err
	}
	body := summaryEncoder.EncodeAll(raw, nil)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var ans SummaryAnswer
	if _, err := c.send(ctx, http.MethodPost, ProtocolPath+"/compliance", link.NodeToken, body, "zstd", &ans); err != nil {
		return nil, 0, 0, fmt.Errorf("send compliance summary: %w", err)
	}
	return &ans, int64(len(body)), int64(len(raw)), nil
}

// summaryEncoder compresses summary reports (EncodeAll is safe for concurrent use).
var summaryEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
