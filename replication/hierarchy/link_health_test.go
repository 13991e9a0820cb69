package hierarchy

import (
	"log/slog"
	"testing"
	"time"

	"patchtree/store"
)

func TestHealthThresholds(t *testing.T) {
	th := HealthThresholds{DegradedAfter: 2, FailedAfter: 4}
	for failures, want := range []string{HealthActive, HealthActive, HealthDegraded, HealthDegraded, HealthFailed, HealthFailed} {
		if got := th.Of(failures); got != want {
			t.Errorf("Of(%d) with degraded after 2, failed after 4 = %q, want %q", failures, got, want)
		}
	}
	if got := (HealthThresholds{}).Of(DefaultDegradedAfter); got != HealthDegraded {
		t.Errorf("zero thresholds: Of(%d) = %q, want the defaults' %q", DefaultDegradedAfter, got, HealthDegraded)
	}
	for _, bad := range []HealthThresholds{{0, 3}, {3, 2}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted thresholds out of order", bad)
		}
	}
	if err := DefaultHealthThresholds.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
}

func TestConsecutiveFailures(t *testing.T) {
	run := func(child, id string, verified bool, errMsg string) *store.ReplicationRun {
		return &store.ReplicationRun{Child: child, ID: id, Verified: verified, Error: errMsg}
	}
	runs := []*store.ReplicationRun{
		run("a", "1", true, ""), run("a", "2", false, "digest mismatch"), run("a", "4", false, ""),
		run("a", "3", false, "apply failed"),
		run("b", "1", false, "x"), run("b", "2", true, ""),
		run("c", "1", false, "x"),
		{Child: "c", ID: "2", Scope: ScopeCompliance, Verified: true}, // a summary coming up
	}
	got := consecutiveFailures(runs)
	for child, want := range map[string]int{"a": 3, "b": 0, "c": 1, "d": 0} {
		if got[child] != want {
			t.Errorf("consecutive failures of %s = %d, want %d (all: %v)", child, got[child], want, got)
		}
	}
}

// TestHealthLogRecord: the first run of a link seeds the count from the history (which holds
// that run already); later runs go on from it, a run older than one counted changes nothing;
// forget makes the next run seed again.
func TestHealthLogRecord(t *testing.T) {
	h := newHealthLog()
	seeds := 0
	seed := func(n int) func() (int, error) {
		return func() (int, error) { seeds++; return n, nil }
	}
	steps := []struct {
		run    string
		failed bool
		seed   int
		want   int
	}{{"r1", true, 4, 4}, {"r2", true, 99, 5}, {"r4", false, 99, 0}, {"r3", true, 99, 0}, {"r5", true, 99, 1}}
	for i, s := range steps {
		got, err := h.record("north", s.run, s.failed, seed(s.seed))
		if err != nil || got != s.want {
			t.Fatalf("step %d: record = %d, %v; want %d", i, got, err, s.want)
		}
	}
	h.forget()
	if got, _ := h.record("north", "r6", true, seed(7)); got != 7 || seeds != 2 {
		t.Errorf("after forget: record = %d after %d seeds, want 7 after 2", got, seeds)
	}
}

// TestMissedContacts: each poll window (the long-poll's wait plus 10 s) a child lets pass
// without polling the leader is a failure; a child it never saw poll missed none.
func TestMissedContacts(t *testing.T) {
	p := NewParent(slog.New(slog.DiscardHandler))
	p.pollWait = 20 * time.Second // windows of 30 s
	p.polls.touch("north")
	seen, _ := p.polls.lastSeen("north")
	for elapsed, want := range map[time.Duration]int{0: 0, 29 * time.Second: 0, 30 * time.Second: 1, 95 * time.Second: 3, 301 * time.Second: 10} {
		if got := p.missedContacts("north", seen.Add(elapsed)); got != want {
			t.Errorf("%v after the last poll: %d missed contacts, want %d", elapsed, got, want)
		}
	}
	if got := p.missedContacts("south", seen.Add(time.Hour)); got != 0 {
		t.Errorf("a child never seen here: %d missed contacts, want 0", got)
	}
}
