package hierarchy

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"patchtree/store"
)

// InstanceHeader carries a random id per child process on every pull, so that the parent can
// tell the child's own poller from a second process holding the same credential.
const InstanceHeader = "X-Patchtree-Instance"

// maxInstanceLen bounds the instance id a pull carries (a child sends 16 hex digits).
const maxInstanceLen = 64

// PollerLiveWindow is how long after a pull of one process ends that a pull of another process
// with the same credential is refused. It bounds how long a child restarted after a crash waits
// before it may poll again (plus, when its old connection did not close, the rest of that poll,
// at most the poll wait).
const PollerLiveWindow = 5 * time.Second

// SecurityAlertTTL is how long a security alert (a refused summary, a second poller) stays in
// GET /v1/alerts after its last occurrence.
const SecurityAlertTTL = 24 * time.Hour

// Alert kinds.
const (
	AlertLanguage       = "language"
	AlertSummaryRefused = "summary-refused"
	AlertSecondPoller   = "second-poller"
)

var (
	// ErrSecondPoller means another process is polling with the same child credential (409).
	ErrSecondPoller = fmt.Errorf("a second poller with this child credential: %w", store.ErrConflict)
	// ErrCredentialRevoked means the credential of a waiting pull was revoked or rotated while
	// it waited (401).
	ErrCredentialRevoked = errors.New("this node credential was revoked or rotated")
)

// securityAlert is one raised security alert: the last occurrence of its kind for its child.
type securityAlert struct {
	kind, child, message string
	first, last          time.Time
	count                int
}

// poller is the process that polls as a child: its instance id, its credential, its pulls in
// flight and when its last one ended.
type poller struct {
	instance, tokenID string
	inflight          int
	last              time.Time
}

// guard is the parent's soft state about misbehaving credentials, on the leader only: at most
// one alert per (kind, child) and one poller per child, so it is bounded by the children.
type guard struct {
	mu      sync.Mutex
	alerts  map[string]*securityAlert
	pollers map[string]*poller
}

func newGuard() *guard {
	return &guard{alerts: map[string]*securityAlert{}, pollers: map[string]*poller{}}
}

// raise records an occurrence of an alert.
func (g *guard) raise(kind, child, message string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := kind + "\x00" + child
	a := g.alerts[key]
	if a == nil {
		a = &securityAlert{kind: kind, child: child, first: now}
		g.alerts[key] = a
	}
	a.message, a.last = message, now
	a.count++
}

// list returns the alerts raised within SecurityAlertTTL, by child and kind, and forgets older ones.
func (g *guard) list(now time.Time) []Alert {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []Alert{}
	for key, a := range g.alerts {
		if now.Sub(a.last) > SecurityAlertTTL {
			delete(g.alerts, key)
			continue
		}
		first, last := a.first, a.last
		out = append(out, Alert{Kind: a.kind, Child: a.child, ParentRanges: []string{}, Message: a.message,
			Count: a.count, First: &first, Last: &last})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Child != out[j].Child {
			return out[i].Child < out[j].Child
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// summaryRefused logs a refused summary and raises its alert (a failure of the parent itself is
// neither).
func (p *Parent) summaryRefused(child string, seq uint64, err error) {
	if !isSummaryRefusal(err) {
		return
	}
	p.logger.Warn("compliance summary refused", "child", child, "seq", seq, "error", err)
	p.guard.raise(AlertSummaryRefused, child, fmt.Sprintf("a compliance summary of child %s (seq %d) was refused: %v; "+
		"if the child did not send it, its credential is in other hands: rotate it with 'patchtree child rotate %s'", child, seq, err, child), time.Now())
}

// beginPoll admits a pull of child from process instance with credential tokenID, or refuses it
// (ErrSecondPoller) while another process with the same credential is live: a pull of it in
// flight (also raised as an alert), or one that ended less than PollerLiveWindow ago. The
// returned end must be called when the pull ends.
func (p *Parent) beginPoll(child, instance, tokenID string) (end func(), err error) {
	g := p.guard
	now := time.Now()
	if len(instance) > maxInstanceLen {
		instance = instance[:maxInstanceLen]
	}
	g.mu.Lock()
	cur := g.pollers[child]
	if cur != nil && cur.tokenID == tokenID && cur.instance != instance {
		switch {
		case cur.inflight > 0:
			g.mu.Unlock()
			err := fmt.Errorf("%w: another process (instance %q) is polling as child %q right now; this one (instance %q) is refused. "+
				"A child restarted after a crash polls again within %s of its old poll ending", ErrSecondPoller, cur.instance, child, instance, PollerLiveWindow)
			p.logger.Warn("second poller refused", "child", child, "instance", instance, "live_instance", cur.instance)
			g.raise(AlertSecondPoller, child, fmt.Sprintf("two processes poll as child %s with its credential (instances %q and %q); "+
				"the second was refused. If the child did not start both, its credential is in other hands: rotate it with 'patchtree child rotate %s'",
				child, cur.instance, instance, child), now)
			return nil, err
		case now.Sub(cur.last) < PollerLiveWindow:
			wait := PollerLiveWindow - now.Sub(cur.last)
			g.mu.Unlock()
			p.logger.Info("poller of another instance polled moments ago; refused", "child", child, "instance", instance, "live_instance", cur.instance)
			return nil, fmt.Errorf("%w: another process (instance %q) polled as child %q %s ago; this one (instance %q) may poll in %s",
				ErrSecondPoller, cur.instance, child, now.Sub(cur.last).Round(time.Millisecond), instance, wait.Round(time.Millisecond))
		}
	}
	if cur == nil || cur.tokenID != tokenID || cur.instance != instance {
		cur = &poller{instance: instance, tokenID: tokenID}
		g.pollers[child] = cur
	}
	cur.inflight++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		cur.inflight--
		cur.last = time.Now()
		g.mu.Unlock()
	}, nil
}

// ChildRotated forgets what the parent's leader knew of a child's old credential (its poller)
// and wakes its waiting pull, which then ends with ErrCredentialRevoked.
func (p *Parent) ChildRotated(child string) {
	p.guard.mu.Lock()
	delete(p.guard.pollers, child)
	p.guard.mu.Unlock()
	p.poke(child)
}
