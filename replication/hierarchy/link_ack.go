package hierarchy

// The child's acknowledgement of a run: sent with the run's ticket and retried, under the
// leader term's context, until the parent records it, so that an acknowledgement sent while
// the parent's leader died is recorded by the next one.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// ackRetryMax bounds the back-off between two attempts at an acknowledgement.
const ackRetryMax = 5 * time.Second

// acknowledge sends the acknowledgement of a run the child applied until the parent records
// it, the leader term ends, or the parent refuses it for good (a credential refused, a run it
// does not know and no ticket to prove it: the next pull resynchronises from the child's
// cursor). That of a run the child could not apply is sent once: it changes nothing the
// replica holds, and its failure is the pull's, retried with back-off.
//
// The ticket (with the run's header) goes only to a server that answers 404 without it: the
// server that handed the run out holds it, so the common acknowledgement does not carry the
// header back; after a failover the next attempt, at once, does.
func (c *Child) acknowledge(term context.Context, link *Link, ack Ack, ticket *RunTicket) (*AckResponse, error) {
	body := TicketedAck{Ack: ack}
	if d := c.cfg.AckDelay; d > 0 {
		c.cfg.Logger.Info("holding the acknowledgement back (test hook)", "run", ack.RunID, "delay", d.String())
		select {
		case <-term.Done():
		case <-time.After(d):
		}
	}
	for attempt := 0; ; attempt++ {
		if err := term.Err(); err != nil {
			return nil, fmt.Errorf("acknowledge run %s: leadership ended: %w", ack.RunID, err)
		}
		ctx, cancel := context.WithTimeout(term, ackTimeout)
		var ar AckResponse
		_, err := c.call(ctx, http.MethodPost, ProtocolPath+"/ack", link.NodeToken, body, &ar)
		cancel()
		if err == nil {
			if attempt > 0 {
				c.cfg.Logger.Info("acknowledgement recorded by the parent", "run", ack.RunID, "attempts", attempt+1)
			}
			return &ar, nil
		}
		var he *httpError
		if body.Ticket == nil && ticket != nil && errors.As(err, &he) && he.Status == http.StatusNotFound {
			// A server that does not hold the run: prove it with the ticket and the run's header.
			t, h := *ticket, ack.header
			t.Header = &h
			body.Ticket = &t
			attempt--
			continue
		}
		err = fmt.Errorf("acknowledge run %s: %w", ack.RunID, err)
		if term.Err() != nil || !ack.Applied || !retryAck(err) {
			return nil, err
		}
		c.setErr(err)
		c.cfg.Logger.Warn("acknowledgement not recorded; retrying", "run", ack.RunID, "attempt", attempt+1, "error", err)
		d := min(250*time.Millisecond<<min(attempt, 5), ackRetryMax)
		select {
		case <-term.Done():
		case <-time.After(d/2 + rand.N(d/2+1)):
		}
	}
}

// retryAck reports whether an acknowledgement that failed may be recorded by trying again:
// transport errors, timeouts, 429 and 5xx (a parent without a leader, a new leader not ready).
func retryAck(err error) bool {
	var he *httpError
	if !errors.As(err, &he) {
		return true
	}
	return he.Status >= 500 || he.Status == http.StatusTooManyRequests || he.Status == http.StatusRequestTimeout
}
