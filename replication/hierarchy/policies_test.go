package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"patchtree/langalert"
	"patchtree/replication/policy"
	"patchtree/store"
)

// policyHarness is a parent and one child wired in process: pulls, applies and acks go through
// the real Parent and Child code without HTTP.
type policyHarness struct {
	t      *testing.T
	rng    *rand.Rand
	parent *parentModel
	p      *Parent
	child  *Child
	site   *memSite
	ranges []string
}

func newPolicyHarness(t *testing.T, seed uint64) *policyHarness {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	ps := newMemSite(t)
	h := &policyHarness{t: t, rng: rng, site: newMemSite(t),
		parent: &parentModel{site: ps, rng: rng, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.p = NewParent(logger)
	h.p.SetBackend(fakeParentBackend{ps})
	h.p.leading.Store(true)
	h.child = NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Logger: logger})
	h.child.SetBackend(h.site)
	if err := ps.s.AddChild(ps.next(), &store.Child{Name: "c", JoinTokenHash: "x"}); err != nil {
		t.Fatal(err)
	}
	h.setRanges([]string{"de", "fr"})
	return h
}

func (h *policyHarness) setRanges(r []string) {
	h.ranges = r
	if err := h.parent.site.s.UpdateChild(h.parent.site.next(), "c", &store.ChildUpdate{Ranges: &r}); err != nil {
		h.t.Fatal(err)
	}
}

// sync pulls and applies until nothing is due; it returns the runs applied.
func (h *policyHarness) sync() []RunHeader {
	h.t.Helper()
	var out []RunHeader
	for i := 0; i < 10; i++ {
		src := h.child.source()
		plan, err := h.p.Pull(context.Background(), PullRequest{Child: "c", Cursor: src.Cursor, CursorRanges: src.Ranges,
			PolicyCursor: src.PolicyCursor, PolicyRanges: src.PolicyRanges, SettingsCursor: src.SettingsCursor, Wait: time.Millisecond})
		if err != nil {
			h.t.Fatal(err)
		}
		if plan == nil {
			return out
		}
		var buf bytes.Buffer
		if _, err := plan.WriteTo(&buf); err != nil {
			h.t.Fatal(err)
		}
		ack, cut := h.child.apply(context.Background(), &Link{Child: "c"}, &buf, time.Now())
		if cut != nil || !ack.Applied {
			h.t.Fatalf("run %+v not applied: %v %s", plan.header, cut, ack.Error)
		}
		resp, err := h.p.Ack("c", ack)
		if err != nil {
			h.t.Fatal(err)
		}
		if !resp.Verified {
			runs, _ := h.parent.site.s.ReplicationRuns(nil)
			h.t.Fatalf("run %s (scopes %v) did not verify: %s", plan.header.RunID, plan.header.Scopes, runs[len(runs)-1].Error)
		}
		out = append(out, plan.header)
	}
	h.t.Fatal("still due after 10 runs")
	return nil
}

func (h *policyHarness) putPolicy(p *store.Policy) {
	h.t.Helper()
	if err := h.parent.site.s.PutPolicy(h.parent.site.next(), p, nil); err != nil {
		h.t.Fatal(err)
	}
}

// mutatePolicies creates, changes, moves and deletes policies on the parent.
func (h *policyHarness) mutatePolicies() {
	h.t.Helper()
	s := h.parent.site.s
	view, _ := s.CatalogView(nil)
	var bulletins []string
	view.EachBulletin(func(b *store.Bulletin) bool {
		if !b.Disabled {
			bulletins = append(bulletins, b.ID)
		}
		return true
	})
	all, _ := s.Policies(nil)
	now := time.Now().UTC()
	for i := 0; i < 1+h.rng.IntN(4); i++ {
		switch op := h.rng.IntN(5); {
		case (op <= 1 || len(all) < 3) && len(bulletins) > 0:
			n := 1 + h.rng.IntN(3)
			var pick []string
			for j := 0; j < n; j++ {
				pick = append(pick, bulletins[h.rng.IntN(len(bulletins))])
			}
			folder := fmt.Sprintf("F%d", h.rng.IntN(4))
			p, err := policy.Create(view, policy.NewID(), policy.Input{Bulletins: pick, Folder: &folder}, now, "test")
			if err != nil {
				h.t.Fatal(err)
			}
			h.putPolicy(p)
		case op == 2 && len(all) > 0:
			old := all[h.rng.IntN(len(all))]
			folder := fmt.Sprintf("F%d", h.rng.IntN(4))
			en := h.rng.IntN(2) == 0
			p, err := policy.Patch(view, old, policy.Input{Folder: &folder, Enabled: &en}, now, "test")
			if err != nil {
				h.t.Fatal(err)
			}
			h.putPolicy(p)
		case op == 3 && len(all) > 0:
			old := all[h.rng.IntN(len(all))]
			if len(old.Updates) > 0 {
				u := old.Updates[h.rng.IntN(len(old.Updates))]
				p, err := policy.Patch(view, old, policy.Input{Updates: []policy.UpdateFlag{{ID: u.ID, Enabled: !u.Enabled}}}, now, "test")
				if err != nil {
					h.t.Fatal(err)
				}
				h.putPolicy(p)
			}
		case op == 4 && len(all) > 0:
			old := all[h.rng.IntN(len(all))]
			if err := s.DeletePolicy(h.parent.site.next(), old.ID, nil); err != nil {
				h.t.Fatal(err)
			}
		}
		all, _ = s.Policies(nil)
	}
}

// heldPolicies is the parent index of each policy the child holds.
func (h *policyHarness) heldPolicies() map[string]uint64 {
	out := map[string]uint64{}
	ps, _ := h.site.s.Policies(nil)
	for _, p := range ps {
		out[p.ID] = p.ParentIndex
	}
	return out
}

// assertPolicies checks the child holds exactly the parent's policies filtered to its ranges,
// and, for the policies that arrived since before (held then at another version), every
// catalog record they reference that is in the child's view at the parent.
func (h *policyHarness) assertPolicies(before map[string]uint64) {
	h.t.Helper()
	parent, _ := h.parent.site.s.Policies(nil)
	child, _ := h.site.s.Policies(nil)
	want := map[string]string{}
	for _, p := range parent {
		buf, _ := json.Marshal(policy.Filter(p, h.ranges).PolicySpec)
		want[p.ID] = string(buf)
	}
	got := map[string]string{}
	for _, p := range child {
		if p.Origin != store.OriginParent {
			h.t.Fatalf("child policy %s has origin %q", p.ID, p.Origin)
		}
		buf, _ := json.Marshal(p.PolicySpec)
		got[p.ID] = string(buf)
	}
	if len(got) != len(want) {
		h.t.Fatalf("child holds %d policies, parent has %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			h.t.Fatalf("child policy %s:\n got %s\nwant %s", id, got[id], w)
		}
	}
	pv, _ := h.parent.site.s.CatalogView(nil)
	cv, _ := h.site.s.CatalogView(nil)
	// A record the parent has in this child's view must be in the child's catalog. (A policy
	// may name an update the catalog no longer has, or whose language left the child's view:
	// the parent's policy names it too.)
	for _, p := range child {
		if before[p.ID] == p.ParentIndex {
			continue // not sent now: it was checked when it came (the catalog moves on daily)
		}
		for _, u := range p.Updates {
			if pu := pv.Update(u.ID); pu != nil && langalert.MatchAny(h.ranges, pu.Language) && cv.Update(u.ID) == nil {
				h.t.Fatalf("child policy %s references update %s, which the child's catalog lacks", p.ID, u.ID)
			}
		}
		for _, b := range p.Bulletins {
			if pb := pv.Bulletin(b); pb != nil && cv.Bulletin(b) == nil {
				if ids, _ := filteredIDs(pv, pb, h.ranges); len(ids) > 0 {
					h.t.Fatalf("child policy %s references bulletin %s, which the child's catalog lacks", p.ID, b)
				}
			}
		}
	}
}

// TestPoliciesConvergeAndNeverOutrunTheCatalog drives random catalog and policy changes, range
// changes and replicate-now selections under the default rules (catalog daily, policies
// continuous). After every sync the child holds exactly the parent's filtered policies, and
// never a policy that references a record its catalog lacks. 8 seeds; 25 with PATCHTREE_SOAK=1.
func TestPoliciesConvergeAndNeverOutrunTheCatalog(t *testing.T) {
	for seed := uint64(1); seed <= seeds(8, 25); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newPolicyHarness(t, seed)
			rangeSets := [][]string{{"de", "fr"}, {"de", "it"}, {"en"}, {"*"}, {"ja"}}
			for round := 0; round < 20; round++ {
				if round == 0 || h.rng.IntN(3) == 0 {
					h.parent.mutate(t)
				}
				h.mutatePolicies()
				if h.rng.IntN(6) == 0 {
					h.setRanges(rangeSets[h.rng.IntN(len(rangeSets))])
				}
				if h.rng.IntN(4) == 0 {
					all, _ := h.parent.site.s.Policies(nil)
					if len(all) > 0 {
						pick := all[h.rng.IntN(len(all))]
						req := NowRequest{Scope: ScopePolicies, Folder: pick.Folder, Reason: "replicate-now"}
						if h.rng.IntN(2) == 0 {
							req = NowRequest{Policy: pick.ID, Reason: "replicate-now"}
						}
						if _, err := h.p.ReplicateNow(req); err != nil {
							t.Fatal(err)
						}
					}
				}
				before := h.heldPolicies()
				h.sync()
				h.assertPolicies(before)
			}
		})
	}
}

// TestFolderRunSendsOnlyThatFolder: replicate now for a folder sends exactly its policies, and a
// policy on a bulletin the child's catalog lacks brings the catalog in the same run, first.
func TestFolderRunSendsOnlyThatFolder(t *testing.T) {
	h := newPolicyHarness(t, 99)
	h.parent.mutate(t)
	h.sync()
	view, _ := h.parent.site.s.CatalogView(nil)
	var bulletins []string
	view.EachBulletin(func(b *store.Bulletin) bool {
		if !b.Disabled {
			bulletins = append(bulletins, b.ID)
		}
		return true
	})
	for i := 0; i < 9; i++ {
		folder := fmt.Sprintf("F%d", i%3)
		p, err := policy.Create(view, policy.NewID(), policy.Input{Bulletins: []string{bulletins[i%len(bulletins)]}, Folder: &folder}, time.Now(), "t")
		if err != nil {
			t.Fatal(err)
		}
		h.putPolicy(p)
	}
	h.sync()
	if _, err := h.p.ReplicateNow(NowRequest{Folder: "F1", Reason: "replicate-now"}); err != nil {
		t.Fatal(err)
	}
	runs := h.sync()
	if len(runs) != 1 || runs[0].Policies == nil || runs[0].Policies.Records != 3 || runs[0].Policies.Folders[0] != "F1" || runs[0].HasCatalog() {
		t.Fatalf("folder run = %+v", runs)
	}

	// A new bulletin at the parent, not yet replicated (the catalog rule is daily): a policy on
	// it brings the catalog along.
	nb := &store.Bulletin{BulletinContent: store.BulletinContent{ID: "NEW", Title: "new", UpdateIDs: []string{"new-de"}}, Feed: "f", Hash: "hn", UpdateTags: []string{"de"}}
	nu := &store.Update{UpdateContent: store.UpdateContent{ID: "new-de", Title: "n", Language: "de"}, Feed: "f", Hash: "hnu"}
	h.parent.commit(t, &store.CatalogBatch{Bulletins: []*store.Bulletin{nb}, Updates: []*store.Update{nu}})
	if runs := h.sync(); len(runs) != 0 {
		t.Fatalf("a catalog change under a daily rule sent %d runs", len(runs))
	}
	view, _ = h.parent.site.s.CatalogView(nil)
	p, err := policy.Create(view, policy.NewID(), policy.Input{Bulletins: []string{"NEW"}}, time.Now(), "t")
	if err != nil {
		t.Fatal(err)
	}
	h.putPolicy(p)
	before := h.heldPolicies()
	runs = h.sync()
	if len(runs) != 1 || !runs[0].HasCatalog() || runs[0].Trigger != "policy-dependency" || runs[0].Scopes[0] != ScopeCatalog {
		t.Fatalf("runs = %+v", runs)
	}
	if b, _ := h.site.s.Bulletin(nil, "NEW"); b == nil {
		t.Fatal("the child got the policy without its bulletin")
	}
	h.assertPolicies(before)
}
