package integration

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// tierNowSite is one site of a replicate-now answer with wait (POST /v1/replication/now).
type tierNowSite struct {
	Path     string `json:"path"`
	Depth    int    `json:"depth"`
	Via      string `json:"via"`
	Done     bool   `json:"done"`
	Verified bool   `json:"verified"`
	Error    string `json:"error"`
}

// tierCheckReplicateNow creates a policy at the root and replicates it now with wait: the answer
// must come once every site below, at every depth, applied and verified it, with one result per
// site by its path, and every site must then hold the policy.
func tierCheckReplicateNow(t *testing.T, tr *tierTree) {
	t.Helper()
	hq := tr.root.p
	var list struct {
		Bulletins []struct {
			ID string `json:"id"`
		} `json:"bulletins"`
	}
	doJSON(t, "GET", hq.url+"/v1/catalog/bulletins?per_page=1", hq.token, nil, 200, &list)
	if len(list.Bulletins) == 0 {
		t.Fatal("the root's catalog lists no bulletin")
	}
	var pol struct {
		ID string `json:"id"`
	}
	doJSON(t, "POST", hq.url+"/v1/policies", hq.token, map[string]any{"bulletins": []string{list.Bulletins[0].ID}, "folder": "tiers-now"}, 201, &pol)
	start := time.Now()
	var ans struct {
		Cascade string        `json:"cascade"`
		Sites   []tierNowSite `json:"sites"`
	}
	doJSON(t, "POST", hq.url+"/v1/replication/now", hq.token, map[string]any{"policy": pol.ID, "wait": true, "timeout": "60s"}, 200, &ans)
	took := time.Since(start)
	got := map[string]tierNowSite{}
	for _, s := range ans.Sites {
		got[s.Path] = s
	}
	for _, s := range tr.below() {
		r, ok := got[s.path()]
		switch {
		case !ok:
			t.Errorf("replicate-now of policy %s: no result for %s in %+v", pol.ID, s.path(), ans.Sites)
		case !r.Done || !r.Verified || r.Depth != s.depth():
			t.Errorf("replicate-now of policy %s at %s: %+v, want done and verified at depth %d", pol.ID, s.path(), r, s.depth())
		}
		if st, _, raw := do(t, "GET", s.p.url+"/v1/policies/"+url.PathEscape(pol.ID), s.p.token, nil); st != 200 {
			t.Errorf("%s after replicate-now --wait answered: GET /v1/policies/%s: %d %s", s.path(), pol.ID, st, raw)
		}
	}
	if len(ans.Sites) != len(tr.below()) {
		t.Errorf("replicate-now answered %d sites, the tree has %d below the root: %+v", len(ans.Sites), len(tr.below()), ans.Sites)
	}
	t.Logf("replicate-now %s of policy %s: every site at every depth applied and verified it, answered in %v", ans.Cascade, pol.ID, took.Round(time.Millisecond))
}

// tierTreeSite is one row of GET /v1/tree.
type tierTreeSite struct {
	Path        string   `json:"path"`
	Depth       int      `json:"depth"`
	Role        string   `json:"role"`
	Ranges      []string `json:"ranges"`
	Via         string   `json:"via"`
	Connected   bool     `json:"connected"`
	RootVersion uint64   `json:"root_version"`
	LagIndex    uint64   `json:"lag_index"`
	Alerts      []string `json:"alerts"`
}

// tierCheckTree reads GET /v1/tree at the root once the tree has converged: every site once,
// by path, with its depth, role, own ranges, a live link, the root's version and no lag.
func tierCheckTree(t *testing.T, tr *tierTree) {
	t.Helper()
	hq := tr.root.p
	waitFor(t, 30*time.Second, func() (bool, string) {
		var tree struct {
			RootVersion uint64         `json:"root_version"`
			Sites       []tierTreeSite `json:"sites"`
		}
		doJSON(t, "GET", hq.url+"/v1/tree", hq.token, nil, 200, &tree)
		got := map[string]tierTreeSite{}
		for _, s := range tree.Sites {
			got[s.Path] = s
		}
		if len(tree.Sites) != len(tr.sites) {
			return false, fmt.Sprintf("the tree lists %d sites, want %d: %+v", len(tree.Sites), len(tr.sites), tree.Sites)
		}
		for _, s := range tr.sites {
			r, ok := got[s.path()]
			switch {
			case !ok:
				return false, fmt.Sprintf("the tree lacks %s: %+v", s.path(), tree.Sites)
			case r.Depth != s.depth() || r.Role != s.role || !tierSameSet(r.Ranges, s.own):
				return false, fmt.Sprintf("tree row %+v, want depth %d, role %s, ranges %v", r, s.depth(), s.role, s.own)
			case s != tr.root && (!r.Connected || r.LagIndex != 0 || r.RootVersion != tree.RootVersion || len(r.Alerts) != 0):
				return false, fmt.Sprintf("tree row %+v: want connected, root version %d, no lag, no alerts", r, tree.RootVersion)
			}
		}
		return true, ""
	})
}

// tierSameSet reports whether two range lists hold the same ranges, in any order.
func tierSameSet(a, b []string) bool {
	return fmt.Sprint(tierSet(a)) == fmt.Sprint(tierSet(b))
}
