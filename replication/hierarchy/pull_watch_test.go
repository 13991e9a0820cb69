package hierarchy

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"patchtree/store"
)

// TestNewCatalogWakesWaitingPull: under a continuous catalog rule, a pull waiting with nothing
// due answers with a run as soon as a new catalog version commits, woken by the store's watch
// (no leader loop is running here to poll the version).
func TestNewCatalogWakesWaitingPull(t *testing.T) {
	site := newMemSite(t)
	be := fakeParentBackend{site}
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(be)
	p.leading.Store(true)
	model := &parentModel{site: site, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "u1", Language: "de"}, Feed: "f", Hash: "h1"}}})
	first, _ := site.s.Catalog(nil)
	if _, err := site.PutSetting(SettingRules, Rules{Catalog: "continuous", Languages: "20:00", VerifyPercent: 5, Policies: "continuous", Settings: "continuous"}); err != nil {
		t.Fatal(err)
	}
	if err := site.s.AddChild(site.next(), &store.Child{Name: "c", JoinTokenHash: "x"}); err != nil {
		t.Fatal(err)
	}
	// A policy and a settings document the child already holds: their tables' index rows exist,
	// so the pull's watches on them fire on their own writes only.
	if err := site.s.PutPolicy(site.next(), &store.Policy{PolicySpec: store.PolicySpec{ID: "p1", Name: "p1"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := site.s.PutSettingDoc(site.next(), &store.SettingDoc{Name: "d1", Body: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	pidx, sidx := site.s.PoliciesIndex(nil), site.s.SettingDocsIndex(nil)
	be.UpdateChild("c", store.ChildUpdate{Ranges: &[]string{"de"}, Cursor: &first.Version, CursorRanges: &[]string{"de"},
		PolicyCursor: &pidx, SettingsCursor: &sidx})

	type result struct {
		plan *RunPlan
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		plan, err := p.Pull(context.Background(), PullRequest{Child: "c", Cursor: first.Version, CursorRanges: []string{"de"},
			PolicyCursor: pidx, PolicyRanges: []string{"de"}, SettingsCursor: sidx, Wait: 20 * time.Second})
		done <- result{plan, err, time.Since(start)}
	}()
	// The pull waits once it has registered for pokes, after reading what it watches.
	waitFor(t, 5*time.Second, "the pull to wait", func() bool {
		select {
		case r := <-done:
			t.Fatalf("pull answered before the catalog changed: plan %v, err %v", r.plan != nil, r.err)
		default:
		}
		return p.polls.waiting("c")
	})
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "u2", Language: "de"}, Feed: "f", Hash: "h2"}}})
	select {
	case r := <-done:
		if r.err != nil || r.plan == nil {
			t.Fatalf("pull: plan %v, err %v", r.plan != nil, r.err)
		}
		if h := r.plan.header; h.Mode != ModeDifferential || h.Trigger != "continuous" || h.From != first.Version {
			t.Fatalf("run %+v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new catalog version did not wake the waiting pull")
	}
}
