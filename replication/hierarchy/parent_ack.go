package hierarchy

import (
	"fmt"
	"strings"
	"time"

	"patchtree/store"
)

// The parent's side of an acknowledgement: recording a child's run and verifying it.

// Ack records a child's acknowledgement of a run this server holds in memory (AckTicketed
// also takes one it does not).
func (p *Parent) Ack(child string, ack Ack) (*AckResponse, error) {
	return p.AckTicketed(child, TicketedAck{Ack: ack})
}

// AckTicketed records a child's acknowledgement: the run, whether each section verified, and
// the child's new cursors. A catalog mismatch makes the next catalog run complete, a policies
// or settings mismatch the next policies run; either repairs the replica.
//
// The run is the one this leader handed out (in memory) or, after a failover, the one its
// ticket describes: the ticket's signature proves the parent site built it. The sample is then
// checked against the current catalog if it is still at the run's version, else only the
// digests are compared (they cover every record). An acknowledgement of a run already
// recorded (a retry whose first answer was lost) is answered from the record.
func (p *Parent) AckTicketed(child string, ta TicketedAck) (*AckResponse, error) {
	ack := ta.Ack
	if ack.Child != "" && ack.Child != child {
		return nil, fmt.Errorf("%w: credential of %q acknowledged as %q", ErrWrongChild, child, ack.Child)
	}
	inf := p.runs.take(ack.RunID, child)
	now := time.Now().UTC()
	var (
		h       RunHeader
		started time.Time
		view    *store.CatalogView
	)
	if inf != nil && inf.child == child {
		h, started, view = inf.plan.header, inf.started, inf.plan.view
	} else {
		var err error
		if h, started, err = p.checkTicket(child, ack.RunID, ta.Ticket, now); err != nil {
			return nil, err
		}
		if done, err := p.recordedRun(child, ack.RunID); err != nil {
			return nil, err
		} else if done != nil {
			return &AckResponse{Verified: done.Verified}, nil
		}
		if view, err = p.backend.State().CatalogView(nil); err != nil {
			return nil, fmt.Errorf("read the catalog to verify run %s: %w", ack.RunID, err)
		}
		if view.Info.Version != h.To {
			view = nil // the catalog moved on: the digests alone verify the run
		}
		p.logger.Info("recording a run another leader handed out, from its ticket", "child", child, "run", h.RunID,
			"sample_checked", view != nil)
	}
	run := store.ReplicationRun{
		ID: h.RunID, Child: child, Scope: strings.Join(h.Scopes, "+"), Mode: h.Mode, Trigger: h.Trigger, From: h.From, To: h.To,
		Records: h.Records, Deletes: h.Deletes, BytesWire: ack.BytesWire, BytesRaw: ack.BytesRaw,
		StartedAt: started, FinishedAt: now, DurationMS: ack.DurationMS,
		ParentDigest: h.Digest, ChildDigest: ack.ChildDigest, Sampled: len(ack.Sample), Error: ack.Error,
		RootVersion: h.RootVersion,
	}
	if h.Cascade != nil {
		run.Cascade = h.Cascade.ID
	}
	if run.Scope == "" {
		run.Scope = ScopeCatalog
	}
	if view == nil {
		run.Sampled = 0 // not checked: the catalog moved on since the run was built
	}
	if !h.HasCatalog() {
		// The run's mode is its first section's.
		run.Mode = ""
		for _, st := range streams {
			if ok, mode := st.carried(&h); ok {
				run.Mode = mode
				break
			}
		}
	}
	resp := &AckResponse{}
	u := store.ChildUpdate{}
	check := &ackCheck{h: &h, ack: &ack, view: view, run: &run, u: &u, resp: resp, now: now}
	var problems []string
	for _, st := range streams {
		if carried, _ := st.carried(&h); !carried {
			continue
		}
		if ok, problem := st.verify(check); !ok {
			problems = append(problems, problem)
		}
	}
	if !ack.Applied {
		// The child could not apply the run (a cut connection, a restart): it gets another.
		p.retry(child, h)
		p.logger.Warn("child could not apply a run; it will get another", "child", child, "run", h.RunID, "error", ack.Error)
	} else {
		verified := len(problems) == 0
		resp.Verified, run.Verified = verified, verified
		if !verified && h.Cascade != nil {
			// The repair run carries the replicate-now on, so that it still reaches the subtree.
			p.requests.add(child, &runSpec{cascade: h.Cascade})
		}
		if !verified && run.Error == "" {
			run.Error = "verification failed: " + strings.Join(problems, "; ") + "; the next run repairs it"
			p.logger.Warn("replica verification failed; repairing with the next run", "child", child, "run", h.RunID, "error", run.Error)
		}
	}
	if _, err := p.backend.RecordReplicationRun(run, u); err != nil {
		return nil, err
	}
	go p.noteRunHealth(run) // off the acknowledgement's path: the child waits for its answer
	p.runs.signal()
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
