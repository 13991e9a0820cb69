package hierarchy

// The parent's soft state: what lives on the leader only and is rebuilt by the children's next
// requests after a failover. Each part is a type with its own lock, so that a long-poll waking
// up, a run being recorded and a schedule firing do not contend on one mutex.

import (
	"sync"
	"time"
)

// polls is who is waiting in a long-poll (and how to wake them), and when each child was last
// heard from.
type polls struct {
	mu   sync.Mutex
	wake map[string]chan struct{}
	seen map[string]time.Time
}

func newPolls() *polls {
	return &polls{wake: map[string]chan struct{}{}, seen: map[string]time.Time{}}
}

// touch records that a child was heard from now.
func (w *polls) touch(child string) {
	w.mu.Lock()
	w.seen[child] = time.Now()
	w.mu.Unlock()
}

// lastSeen is when a child was last heard from by this leader.
func (w *polls) lastSeen(child string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[child]
	return t, ok
}

// waitCh is the channel the child's next poke closes. A pull takes it before it reads what is
// due, so that a request made after that read always wakes it.
func (w *polls) waitCh(child string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := w.wake[child]
	if ch == nil {
		ch = make(chan struct{})
		w.wake[child] = ch
	}
	return ch
}

// waiting reports whether a pull of the child holds a wait channel.
func (w *polls) waiting(child string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake[child] != nil
}

// poke wakes a child's waiting pull so that it re-evaluates whether a run is due.
func (w *polls) poke(child string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.wake[child]; ok {
		close(ch)
		delete(w.wake, child)
	}
}

// wakeAll wakes every waiting pull.
func (w *polls) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, ch := range w.wake {
		close(ch)
		delete(w.wake, name)
	}
}

// requests is what was asked for each child (replicate now, a retry, a repair's cascade) and
// not sent yet.
type requests struct {
	mu sync.Mutex
	m  map[string]*runSpec
}

func newRequests() *requests { return &requests{m: map[string]*runSpec{}} }

// add merges a request into the child's pending one.
func (r *requests) add(child string, s *runSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.m[child]
	if cur == nil {
		cur = &runSpec{}
		r.m[child] = cur
	}
	cur.merge(s)
}

// take removes and returns the child's pending request (an empty one if none).
func (r *requests) take(child string) *runSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.m[child]
	delete(r.m, child)
	if s == nil {
		s = &runSpec{}
	}
	return s
}

// putBack returns a request that was taken but not sent; anything asked meanwhile is merged
// over it (it is newer).
func (r *requests) putBack(child string, s *runSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if newer := r.m[child]; newer != nil {
		s.merge(newer)
	}
	if s.empty() && s.cascade == nil {
		delete(r.m, child)
		return
	}
	r.m[child] = s
}

// runsOut is the runs handed out and not acknowledged yet, and a signal for each run recorded.
type runsOut struct {
	mu       sync.Mutex
	m        map[string]*inflight
	recorded chan struct{} // closed and replaced whenever a run is recorded
}

func newRunsOut() *runsOut {
	return &runsOut{m: map[string]*inflight{}, recorded: make(chan struct{})}
}

func (r *runsOut) add(id string, inf *inflight) {
	r.mu.Lock()
	r.m[id] = inf
	r.mu.Unlock()
}

// lookup is the run handed out under id, to whichever child (nil: none).
func (r *runsOut) lookup(id string) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

// get is the run handed out under id to the child (nil: none).
func (r *runsOut) get(id, child string) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	if inf := r.m[id]; inf != nil && inf.child == child {
		return inf
	}
	return nil
}

// take removes and returns the run handed out under id to the child (nil: none).
func (r *runsOut) take(id, child string) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	inf := r.m[id]
	if inf == nil || inf.child != child {
		return nil
	}
	delete(r.m, id)
	return inf
}

// prune forgets runs handed out longer than ttl ago (their child may have died).
func (r *runsOut) prune(now time.Time, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, inf := range r.m {
		if now.Sub(inf.started) > ttl {
			delete(r.m, id)
		}
	}
}

// reset forgets every run (leadership ended).
func (r *runsOut) reset() {
	r.mu.Lock()
	r.m = map[string]*inflight{}
	r.mu.Unlock()
}

// changed is closed when the next run is recorded.
func (r *runsOut) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recorded
}

// signal says a run was recorded.
func (r *runsOut) signal() {
	r.mu.Lock()
	close(r.recorded)
	r.recorded = make(chan struct{})
	r.mu.Unlock()
}

// schedule is when each scheduled rule ("catalog", "policies", "settings") fires next; a
// continuous rule has no entry.
type schedule struct {
	mu   sync.Mutex
	next map[string]time.Time
}

func newSchedule() *schedule { return &schedule{next: map[string]time.Time{}} }

// at is when scope fires next (false: continuous, or not scheduled yet).
func (s *schedule) at(scope string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.next[scope]
	return t, ok
}
