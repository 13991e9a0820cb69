package hierarchy_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/langalert"
	"patchtree/replication/policy"
	"patchtree/store"
)

// policyBenchCount is how many policies one invocation of BenchmarkPolicyReplicateNow creates.
const policyBenchCount = 50

// arrivals records when each policy first became visible in each child's store. A watcher per
// child blocks on the store's watch channels (the same rows GET /v1/policies/{id} reads), so the
// time is taken when the child's commit entry applies, without polling the child's API.
type arrivals struct {
	mu      sync.Mutex
	at      []map[string]time.Time // per child: policy id -> first seen
	changed chan struct{}          // closed and replaced on every new arrival
}

func watchArrivals(ctx context.Context, children []*site) *arrivals {
	a := &arrivals{at: make([]map[string]time.Time, len(children)), changed: make(chan struct{})}
	for i, c := range children {
		a.at[i] = map[string]time.Time{}
		go func() {
			for ctx.Err() == nil {
				ws := memdb.NewWatchSet()
				ps, _ := c.n.State().Policies(ws)
				now := time.Now()
				a.mu.Lock()
				fresh := false
				for _, p := range ps {
					if _, ok := a.at[i][p.ID]; !ok {
						a.at[i][p.ID], fresh = now, true
					}
				}
				if fresh {
					close(a.changed)
					a.changed = make(chan struct{})
				}
				a.mu.Unlock()
				// The timeout only guards against a store replaced by a snapshot restore, whose old
				// watch channels never fire.
				wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				ws.WatchCtx(wctx)
				cancel()
			}
		}()
	}
	return a
}

// waitAll waits until every child holds policy id and returns when each first saw it.
func (a *arrivals) waitAll(b *testing.B, id string, timeout time.Duration) []time.Time {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		out, missing := make([]time.Time, len(a.at)), []int{}
		for i, m := range a.at {
			t, ok := m[id]
			out[i] = t
			if !ok {
				missing = append(missing, i)
			}
		}
		ch := a.changed
		a.mu.Unlock()
		if len(missing) == 0 {
			return out
		}
		select {
		case <-ch:
		case <-deadline.C:
			b.Fatalf("policy %s not at children %v after %s", id, missing, timeout)
		}
	}
}

// benchBulletins picks n enabled bulletins spread over the catalog by how many languages their
// updates are in: round robin over the distinct language counts (in the Mozilla catalog 1, that
// is a language-neutral update only, 58, 59, 99, 100 and 101), evenly over each group's ids (so
// over the years), in a fixed shuffled order so that the count does not follow creation order.
func benchBulletins(b *testing.B, s *site, n int) (ids []string, langs map[string]int) {
	v, err := s.n.State().CatalogView(nil)
	if err != nil {
		b.Fatal(err)
	}
	groups := map[int][]string{} // language count -> bulletin ids
	v.EachBulletin(func(x *store.Bulletin) bool {
		if !x.Disabled && len(x.UpdateIDs) > 0 {
			tags := map[string]bool{}
			for _, t := range x.UpdateTags {
				tags[t] = true
			}
			groups[len(tags)] = append(groups[len(tags)], x.ID)
		}
		return true
	})
	counts := slices.Sorted(maps.Keys(groups))
	take := map[int]int{} // how many each group gives
	for left := n; left > 0; {
		before := left
		for _, c := range counts {
			if left > 0 && take[c] < len(groups[c]) {
				take[c]++
				left--
			}
		}
		if left == before {
			b.Fatalf("catalog has fewer than %d usable bulletins", n)
		}
	}
	langs = map[string]int{}
	for _, c := range counts {
		g := groups[c]
		slices.Sort(g)
		for i := 0; i < take[c]; i++ {
			id := g[i*len(g)/take[c]]
			ids, langs[id] = append(ids, id), c
		}
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids, langs
}

// policyRunsSince lists the parent's replication runs that carried policies and started at or after
// since.
func (h *hierarchyBench) policyRunsSince(b *testing.B, since time.Time) []*store.ReplicationRun {
	var list struct{ Runs []*store.ReplicationRun }
	h.parent.call(b, http.MethodGet, "/v1/replication/runs?limit=1000000", nil, &list)
	var out []*store.ReplicationRun
	for _, r := range list.Runs {
		if slices.Contains(strings.Split(r.Scope, "+"), "policies") && !r.StartedAt.Before(since) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// settle waits until the parent records no new run for quiet: the runs a policy caused are over.
func (h *hierarchyBench) settle(b *testing.B, quiet time.Duration) {
	var last string
	stable := time.Now()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var list struct{ Runs []*store.ReplicationRun }
		h.parent.call(b, http.MethodGet, "/v1/replication/runs?limit=1", nil, &list)
		id := ""
		if len(list.Runs) > 0 {
			id = list.Runs[0].ID
		}
		if id != last {
			last, stable = id, time.Now()
		}
		if time.Since(stable) >= quiet {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("replication runs never stopped")
		}
	}
}

// waitPoliciesInSync waits until every child's policy cursor is the parent's policies index and
// its last policies run verified.
func (h *hierarchyBench) waitPoliciesInSync(b *testing.B) {
	var st struct {
		Children []struct {
			Name         string
			PolicyCursor uint64                           `json:"policy_cursor"`
			LastRuns     map[string]*store.ReplicationRun `json:"last_runs"`
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		pidx := h.parent.n.State().PoliciesIndex(nil)
		h.parent.call(b, http.MethodGet, "/v1/children", nil, &st)
		ok := len(st.Children) == len(h.children)
		for _, c := range st.Children {
			r := c.LastRuns["policies"]
			ok = ok && c.PolicyCursor == pidx && r != nil && r.Policies != nil && r.Policies.Verified
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("children's policies not in sync at index %d: %+v", pidx, st.Children)
		}
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.999999) // nearest rank
	return sorted[max(0, min(len(sorted), i)-1)]
}

// gcCycles is how many garbage collections the process has completed. Every site of the
// benchmark runs in this one process, so a collection (its heap holds every replica) slows all
// of them at once.
func gcCycles() uint64 {
	m := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPolicyReplicateNow times a policy created with replicate_now at a parent with ten
// children until all ten have applied it (p50, p99 and max over 50 policies), against the
// parent's own write latency for the same request without replication. It also counts the
// replication runs carrying policies that each policy causes per child (ideally 1).
func BenchmarkPolicyReplicateNow(b *testing.B) {
	h := newHierarchyBench(b)
	var rules struct {
		Policies string `json:"policies"`
	}
	h.parent.call(b, http.MethodGet, "/v1/replication/rules", nil, &rules)
	bulletins, langs := benchBulletins(b, h.parent, policyBenchCount)
	ranges := make([][]string, len(benchRanges))
	for i, r := range benchRanges {
		ranges[i], _ = langalert.ParseRanges([]string{r})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arr := watchArrivals(ctx, h.children)
	create := func(folder, bulletin string, now bool) *store.Policy {
		var p store.Policy
		h.parent.call(b, http.MethodPost, "/v1/policies", map[string]any{"bulletins": []string{bulletin}, "folder": folder, "replicate_now": now}, &p)
		return &p
	}

	// Warm-up: the children's first policies run is complete ("first"); later ones are not.
	warm := create("bench-warmup", bulletins[0], true)
	arr.waitAll(b, warm.ID, time.Minute)
	h.settle(b, 300*time.Millisecond)
	h.waitPoliciesInSync(b)

	// Baseline: the same POST without replicate_now while policies replicate on a schedule that
	// does not fire, so that it is the parent's own write (one Raft entry) and nothing else.
	h.parent.call(b, http.MethodPut, "/v1/replication/rules", map[string]any{"policies": "24h"}, nil)
	var base []float64
	for _, bl := range bulletins {
		start := time.Now()
		create("bench-baseline", bl, false)
		base = append(base, ms(time.Since(start)))
	}
	h.parent.call(b, http.MethodPut, "/v1/replication/rules", map[string]any{"policies": rules.Policies}, nil)
	h.waitPoliciesInSync(b)
	h.settle(b, 300*time.Millisecond)

	var lat, post, childLat, runFirst, runLast, latGC, latNoGC []float64
	var runs []*store.ReplicationRun
	perPolicy := map[int]int{} // runs per child per policy -> how many (policy, child) pairs
	triggers := map[string]int{}
	var watchLag time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k, bl := range bulletins {
			gc0 := gcCycles()
			start := time.Now()
			p := create("bench", bl, true)
			posted := time.Since(start)
			seen := arr.waitAll(b, p.ID, time.Minute)
			var last time.Time
			for _, t := range seen {
				childLat = append(childLat, ms(t.Sub(start)))
				if t.After(last) {
					last = t
				}
			}
			b.StopTimer()
			lat, post = append(lat, ms(last.Sub(start))), append(post, ms(posted))
			h.settle(b, 300*time.Millisecond)
			// A collection that overlapped the window has ended by now (their marking takes up
			// to ~300 ms here); one that began during the settling is counted too.
			gc := gcCycles() > gc0
			if gc {
				latGC = append(latGC, lat[len(lat)-1])
			} else {
				latNoGC = append(latNoGC, lat[len(lat)-1])
			}
			mine := h.policyRunsSince(b, start)
			runs = append(runs, mine...)
			byChild := map[string]int{}
			var desc []string
			first, lastFirst := time.Duration(-1), time.Duration(0) // when the parent started the runs
			for _, r := range mine {
				at := r.StartedAt.Sub(start)
				if byChild[r.Child] == 0 {
					lastFirst = max(lastFirst, at)
					// The child commits before it acknowledges: a policy first seen after the
					// parent received the acknowledgement measures the watcher's lag, not the run.
					i := slices.IndexFunc(h.children, func(c *site) bool { return c.name == r.Child })
					if i >= 0 && seen[i].After(r.FinishedAt) {
						watchLag = max(watchLag, seen[i].Sub(r.FinishedAt))
					}
				}
				if first < 0 {
					first = at
				}
				byChild[r.Child]++
				t := r.Policies.Trigger
				if r.Scope != "policies" {
					t += "[" + r.Scope + "]"
				}
				triggers[t]++
				desc = append(desc, fmt.Sprintf("%s:%s:%d@+%.0f/%d/+%.0fms", strings.TrimPrefix(r.Child, "child"), t, r.Policies.Records, ms(at), r.DurationMS, ms(r.FinishedAt.Sub(start))))
			}
			runFirst, runLast = append(runFirst, ms(first)), append(runLast, ms(lastFirst))
			for _, c := range h.children {
				perPolicy[byChild[c.name]]++
			}
			got := 0
			for i := range h.children {
				if len(policy.Filter(p, ranges[i]).Updates) > 0 {
					got++
				}
			}
			for i, c := range h.children { // what a user sees, outside the timed window
				var cp store.Policy
				c.call(b, http.MethodGet, "/v1/policies/"+p.ID, nil, &cp)
				if cp.Origin != store.OriginParent || len(cp.Updates) != len(policy.Filter(p, ranges[i]).Updates) {
					b.Fatalf("%s holds policy %s with origin %q and %d updates, want parent and %d",
						c.name, p.ID, cp.Origin, len(cp.Updates), len(policy.Filter(p, ranges[i]).Updates))
				}
			}
			gcNote := ""
			if gc {
				gcNote = " [GC]"
			}
			detail(b, "%2d %-14s %3d languages, updates at %2d of 10 children: all applied %6.1f ms%s (POST answered %5.1f ms, runs started +%.1f…+%.1f ms); %d runs (child:trigger:records@+started/child apply/+acked) %v",
				k, bl, langs[bl], got, lat[len(lat)-1], gcNote, ms(posted), ms(first), ms(lastFirst), len(mine), desc)
			b.StartTimer()
		}
	}
	b.StopTimer()
	cancel()

	unverified := 0
	for _, r := range runs {
		if !r.Verified {
			unverified++
			detail(b, "run %s to %s did not verify: %s", r.ID, r.Child, r.Error)
		}
	}
	for _, xs := range [][]float64{lat, post, childLat, base, runFirst, runLast, latGC, latNoGC} {
		slices.Sort(xs)
	}
	hist := []string{}
	for k := range 10 {
		if perPolicy[k] > 0 {
			hist = append(hist, fmt.Sprintf("%d runs: %d", k, perPolicy[k]))
		}
	}
	detail(b, "per child and policy %v; triggers %v; %d runs did not verify; policies seen at most %.1f ms after the parent had the child's acknowledgement",
		hist, triggers, unverified, ms(watchLag))
	detail(b, "p50: first run started +%.1f ms, last child's run started +%.1f ms, POST with replicate_now answered %.1f ms, one child applied %.1f ms, all applied %.1f ms",
		percentile(runFirst, 0.5), percentile(runLast, 0.5), percentile(post, 0.5), percentile(childLat, 0.5), percentile(lat, 0.5))
	detail(b, "all applied, policies near a garbage collection of the shared process: %d, p50 %.1f ms, max %.1f ms; the others: %d, p50 %.1f ms, max %.1f ms",
		len(latGC), percentile(latGC, 0.5), percentile(latGC, 1), len(latNoGC), percentile(latNoGC, 0.5), percentile(latNoGC, 1))
	p50 := percentile(lat, 0.5)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(percentile(base, 0.5), "base-post-p50-ms")
	b.ReportMetric(p50/percentile(base, 0.5), "p50/base")
	b.ReportMetric(float64(len(runs))/float64(len(lat)*len(h.children)), "runs/child/policy")
	b.ReportMetric(float64(unverified), "unverified-runs")
}
