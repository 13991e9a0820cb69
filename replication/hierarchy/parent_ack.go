package hierarchy

import (
	"fmt"
	"patchtree/store"
	"strings"
	"time"
)

// The parent's side of an acknowledgement: recording a child's run and verifying it.

// Ack records a child's acknowledgement: the run, whether each section verified, and the
// child's new cursors. A catalog mismatch makes the next catalog run complete, a policies or
// settings mismatch the next policies run; either repairs the replica.
func (p *Parent) Ack(child string, ack Ack) (*AckResponse, error) {
	if ack.Child != "" && ack.Child != child {
		return nil, fmt.Errorf("%w: credential of %q acknowledged as %q", ErrWrongChild, child, ack.Child)
	}
	p.mu.Lock()
	inf := p.inflight[ack.RunID]
	if inf != nil && inf.child == child {
		delete(p.inflight, ack.RunID)
	}
	p.mu.Unlock()
	if inf == nil || inf.child != child {
		return nil, fmt.Errorf("run %q of child %q is unknown here (the parent may have restarted); pull again: %w", ack.RunID, child, store.ErrNotFound)
	}
	h := inf.plan.header
	now := time.Now().UTC()
	run := store.ReplicationRun{
		ID: h.RunID, Child: child, Scope: strings.Join(h.Scopes, "+"), Mode: h.Mode, Trigger: h.Trigger, From: h.From, To: h.To,
		Records: h.Records, Deletes: h.Deletes, BytesWire: ack.BytesWire, BytesRaw: ack.BytesRaw,
		StartedAt: inf.started, FinishedAt: now, DurationMS: ack.DurationMS,
		ParentDigest: h.Digest, ChildDigest: ack.ChildDigest, Sampled: len(ack.Sample), Error: ack.Error,
		RootVersion: h.RootVersion,
	}
	if h.Cascade != nil {
		run.Cascade = h.Cascade.ID
	}
	if run.Scope == "" {
		run.Scope = ScopeCatalog
	}
	if !h.HasCatalog() {
		run.Mode = ""
		if h.Policies != nil {
			run.Mode = h.Policies.Mode
		} else if h.Settings != nil {
			run.Mode = ModeComplete
		}
	}
	if h.Policies != nil {
		ps := h.Policies
		run.Policies = &store.RunPolicies{Mode: ps.Mode, Trigger: ps.Trigger, Folders: ps.Folders, IDs: ps.IDs, From: ps.From,
			To: ps.To, Advanced: ps.Advance, Records: ps.Records, Deletes: ack.PoliciesDeleted, Digest: ps.Digest, ChildDigest: ack.PolicyDigest}
	}
	if h.Settings != nil {
		run.Settings = &store.RunSettings{Trigger: h.Settings.Trigger, To: h.Settings.To, Records: h.Settings.Records, Deletes: ack.SettingsDeleted}
	}
	resp := &AckResponse{}
	u := store.ChildUpdate{}
	if !ack.Applied {
		// The child could not apply the run (a cut connection, a restart): it gets another.
		p.retry(child, h)
		p.logger.Warn("child could not apply a run; it will get another", "child", child, "run", h.RunID, "error", ack.Error)
	}
	if ack.Applied {
		verified := true
		var problems []string
		if h.HasCatalog() {
			resp.Mismatches = checkSample(inf.plan.view, h.Ranges, ack.Sample)
			ok := ack.ChildDigest == h.Digest && len(resp.Mismatches) == 0
			to, ranges, needs := h.To, h.Ranges, !ok
			rootVersion := h.RootVersion
			u = store.ChildUpdate{Cursor: &to, CursorRanges: &ranges, CursorAt: now, NeedsComplete: &needs, RootVersion: &rootVersion}
			if !ok {
				verified = false
				problems = append(problems, fmt.Sprintf("catalog: child digest %s, parent %s, %d sampled records differ %v",
					abbrev(ack.ChildDigest), abbrev(h.Digest), len(resp.Mismatches), firstN(resp.Mismatches, 5)))
			}
		}
		policiesOK := true
		if ps := run.Policies; ps != nil {
			ps.Verified = ack.PolicyDigest == ps.Digest
			policiesOK = ps.Verified
			if ps.Advanced {
				to := ps.To
				u.PolicyCursor = &to
			}
			if !ps.Verified {
				problems = append(problems, fmt.Sprintf("policies: child digest %s, parent %s", abbrev(ack.PolicyDigest), abbrev(ps.Digest)))
			}
		}
		if ss := run.Settings; ss != nil {
			ss.Verified = ack.SettingsDigest == h.Settings.Digest
			policiesOK = policiesOK && ss.Verified
			to := ss.To
			u.SettingsCursor = &to
			if !ss.Verified {
				problems = append(problems, fmt.Sprintf("settings: child digest %s, parent %s", abbrev(ack.SettingsDigest), abbrev(h.Settings.Digest)))
			}
		}
		if run.Policies != nil || run.Settings != nil {
			needs := !policiesOK
			u.PoliciesNeedComplete = &needs
		}
		verified = verified && policiesOK
		resp.Verified, run.Verified = verified, verified
		if !verified && h.Cascade != nil {
			// The repair run carries the replicate-now on, so that it still reaches the subtree.
			p.mu.Lock()
			p.request(child, &runSpec{cascade: h.Cascade})
			p.mu.Unlock()
		}
		if !verified && run.Error == "" {
			run.Error = "verification failed: " + strings.Join(problems, "; ") + "; the next run repairs it"
			p.logger.Warn("replica verification failed; repairing with the next run", "child", child, "run", h.RunID, "error", run.Error)
		}
	}
	if _, err := p.backend.RecordReplicationRun(run, u); err != nil {
		return nil, err
	}
	p.mu.Lock()
	close(p.runDone)
	p.runDone = make(chan struct{})
	p.mu.Unlock()
	return resp, nil
}

func abbrev(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
