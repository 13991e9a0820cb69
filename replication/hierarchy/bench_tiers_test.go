package hierarchy_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"patchtree/integration/shareddata"
	"patchtree/langalert"
	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// tiersBench is a root with a child of its own and a chain of relays to a leaf on the fourth
// tier: hq → child; hq → r1 → r2 → leaf.
type tiersBench struct {
	root, child, leaf *site
	relays            []*site
}

func newTiersBench(b *testing.B) *tiersBench {
	b.Helper()
	root, err := startSite(b, "hq", node.RoleParent, []string{"*"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	continuous := map[string]any{"catalog": "continuous", "policies": "continuous", "settings": "continuous"}
	root.call(b, http.MethodPut, "/v1/replication/rules", continuous, nil)
	root.importFeed(b, shareddata.Path(b, benchCatalog))
	de, _ := langalert.ParseRanges([]string{"de"})
	join := func(parent *site, name, role string) *site {
		enrolled, err := parent.n.AddChild(store.Actor{}, name)
		if err != nil {
			b.Fatal(err)
		}
		s, err := startSite(b, name, role, de, &hierarchy.ChildConfig{ParentURL: parent.srv.URL, JoinToken: enrolled.JoinToken, PollWait: 3 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if role == node.RoleRelay {
			s.call(b, http.MethodPut, "/v1/replication/rules", continuous, nil)
		}
		return s
	}
	t := &tiersBench{root: root, child: join(root, "child", node.RoleChild)}
	parent := root
	for i := 1; i <= 2; i++ {
		r := join(parent, fmt.Sprintf("r%d", i), node.RoleRelay)
		t.relays = append(t.relays, r)
		parent = r
	}
	t.leaf = join(parent, "leaf", node.RoleChild)
	t.waitTree(b)
	return t
}

// waitTree waits until the root's tree lists every site at the root's catalog version.
func (t *tiersBench) waitTree(b *testing.B) {
	b.Helper()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var tree hierarchy.Tree
		t.root.call(b, http.MethodGet, "/v1/tree", nil, &tree)
		ok := len(tree.Sites) == 5
		for _, s := range tree.Sites {
			ok = ok && s.RootVersion == tree.RootVersion
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("tree not in sync: %+v", tree.Sites)
		}
	}
}

// BenchmarkTiersReplicateNow times a policy's replicate-now --wait at the root until it is
// applied and verified by a child of the root and by a leaf on the fourth tier (two relays
// between), over 30 policies: p50 and p99 of when each target's run finished, and of when the
// root's answer came (for the leaf, the relays' reports must first carry it up).
func BenchmarkTiersReplicateNow(b *testing.B) {
	t := newTiersBench(b)
	bulletins, _ := benchBulletins(b, t.root, 30)
	var toChild, toLeaf, answer []float64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for _, bl := range bulletins {
			b.StopTimer()
			var p store.Policy
			t.root.call(b, http.MethodPost, "/v1/policies", map[string]any{"bulletins": []string{bl}, "folder": "bench-tiers"}, &p)
			// The continuous rule sends the new policy first; the replicate-now is what is timed.
			t.waitHolds(b, p.ID)
			b.StartTimer()
			start := time.Now()
			var resp struct {
				Sites []hierarchy.SiteResult `json:"sites"`
			}
			t.root.call(b, http.MethodPost, "/v1/replication/now", map[string]any{"policy": p.ID, "wait": true, "timeout": "2m"}, &resp)
			answered := time.Since(start)
			b.StopTimer()
			got := map[string]*hierarchy.SiteResult{}
			for i := range resp.Sites {
				got[resp.Sites[i].Path] = &resp.Sites[i]
			}
			child, leaf := got["hq/child"], got["hq/r1/r2/leaf"]
			if child == nil || leaf == nil || !child.Verified || !leaf.Verified || child.Run == nil {
				b.Fatalf("replicate-now of %s: %+v", p.ID, resp.Sites)
			}
			toChild = append(toChild, ms(child.Run.FinishedAt.Sub(start)))
			toLeaf = append(toLeaf, ms(t.leafRunFinished(b, start).Sub(start)))
			answer = append(answer, ms(answered))
			b.StartTimer()
		}
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		v    []float64
	}{{"child", toChild}, {"tier4", toLeaf}, {"answer", answer}} {
		slices.Sort(m.v)
		b.ReportMetric(percentile(m.v, 0.50), m.name+"-p50-ms")
		b.ReportMetric(percentile(m.v, 0.99), m.name+"-p99-ms")
	}
}

// leafRunFinished is when the leaf's newest replicate-now run after start finished, as its
// parent (the last relay) recorded it.
func (t *tiersBench) leafRunFinished(b *testing.B, start time.Time) time.Time {
	b.Helper()
	last := t.relays[len(t.relays)-1]
	var list struct{ Runs []*store.ReplicationRun }
	last.call(b, http.MethodGet, "/v1/replication/runs?child=leaf", nil, &list)
	for i := len(list.Runs) - 1; i >= 0; i-- {
		if r := list.Runs[i]; r.Trigger == "replicate-now" && r.StartedAt.After(start) && r.Verified {
			return r.FinishedAt
		}
	}
	b.Fatalf("no replicate-now run of the leaf after %s", start)
	return time.Time{}
}

// waitHolds waits until the child of the root and the leaf hold a policy.
func (t *tiersBench) waitHolds(b *testing.B, id string) {
	b.Helper()
	for _, s := range []*site{t.child, t.leaf} {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/v1/policies/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+s.admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatalf("GET /v1/policies/%s at %s: %v", id, s.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never received policy %s: %d", s.name, id, resp.StatusCode)
			}
		}
	}
}
