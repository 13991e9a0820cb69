package integration

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestTiers replicates the Mozilla catalog down a tree four tiers deep, through relays (sites
// with a parent that serve children of their own):
//
//	hq (de,en,fr,it,ja)
//	├── emea (relay, en)
//	│   ├── emea-de (relay, de)        ← reaches emea through a toxiproxy proxy
//	│   │   └── emea-de-berlin (de,it)
//	│   └── emea-fr (fr)
//	└── apac (relay, en)
//	    └── apac-jp (ja)
//
// A relay reports up its own ranges and its whole subtree's, so it holds the root's catalog
// filtered by that union: view(root ranges, union), which is exactly the union of its subtree's
// views (a tag matches a set of ranges when it matches one of them). The subtests share the tree
// and run in order: replication of an import, each tier's differential run after a changed feed,
// the fields GET /v1/children adds for a subtree, a language alert raised and cleared along a
// path, a relay's refused import, a policy replicated now to every depth, the root's tree view,
// and faults on a relay (SIGKILLs mid-run, its parent link delayed and cut) that must heal with
// no operator action.
func TestTiers(t *testing.T) {
	t.Parallel()
	src := catSharedData(t, hierMozilla)
	began := time.Now()
	feedPath := filepath.Join(t.TempDir(), "mozilla.catalog.json")
	feed := hierParseFeed(t, src)
	tierWriteFeed(t, feed, feedPath) // rewritten by the later subtests

	tr := tierNewTree("hq", "de", "en", "fr", "it", "ja")
	emea := tr.add(tr.root, "emea", "relay", "en")
	apac := tr.add(tr.root, "apac", "relay", "en")
	emeaDE := tr.add(emea, "emea-de", "relay", "de")
	tr.add(emea, "emea-fr", "child", "fr")
	tr.add(apac, "apac-jp", "child", "ja")
	berlin := tr.add(emeaDE, "emea-de-berlin", "child", "de", "it")
	emeaDE.fixedPort, emeaDE.viaProxy = true, true // the relay the faults subtest kills and cuts off
	tr.start(t)
	t.Logf("%d sites started in %v", len(tr.sites), time.Since(began).Round(time.Millisecond))
	hq := tr.root.p

	var views map[*tierSite]*hierView // what each site holds once the tree has converged
	if !t.Run("replicate", func(t *testing.T) {
		hierImport(t, hq, map[string]any{"source": feedPath})
		views = tr.views(feed)
		for _, s := range tr.sites {
			t.Logf("%s (%s, own %v, reports %v): expected view %s", s.path(), s.role, s.own, s.union(), views[s])
		}
		waitFor(t, 30*time.Second, func() (bool, string) { return tr.reportedRanges(t) })
		if !tr.waitConverged(t, "first import", views, 60*time.Second, 20) {
			t.FailNow()
		}
	}) {
		t.FailNow() // nothing later can be told apart from this failure
	}

	t.Run("children", func(t *testing.T) {
		tierCheckSubtrees(t, tr)
	})

	t.Run("differential", func(t *testing.T) {
		before := map[*tierSite]int{}
		for _, s := range tr.below() {
			before[s] = len(hierRuns(t, s.up.p, s.name))
		}
		next := hierModifyFeed(t, feed, 2024, 0.01, 10, 20, []string{"de", "en-GB", "fr", "it", "ja"})
		tierWriteFeed(t, next, feedPath)
		imp := hierImport(t, hq, map[string]any{"source": feedPath})
		t.Logf("root import of the modified feed: bulletins %s, updates %s", imp.Result.Bulletins, imp.Result.Updates)
		nextViews := tr.views(next)
		ok := tr.waitConverged(t, "modified feed", nextViews, 60*time.Second, 20)
		for _, s := range tr.below() {
			tierCheckDifferential(t, s, views[s], nextViews[s], before[s])
		}
		feed, views = next, nextViews
		if !ok {
			t.FailNow()
		}
	})

	t.Run("alerts", func(t *testing.T) {
		// emea and apac manage only en, yet nothing below them raises an alert: coverage is
		// decided by the root's ranges, which cover de, fr, it and ja.
		waitFor(t, 20*time.Second, func() (bool, string) { return tr.alertsAre(t, nil) })

		berlin.own = []string{"de", "it", "pt-BR"}
		putLanguages(t, berlin.p.url, berlin.p.token, berlin.own)
		want := map[*tierSite][]tierAlert{}
		for a := berlin.up; a != nil; a = a.up {
			want[a] = []tierAlert{{Path: berlin.path(), Range: "pt-BR"}}
		}
		waitFor(t, 30*time.Second, func() (bool, string) {
			if ok, why := tr.reportedRanges(t); !ok {
				return false, why
			}
			return tr.alertsAre(t, want)
		})
		t.Logf("pt-BR at %s raised one alert at each of emea-de, emea and hq", berlin.path())
		// Until the root covers pt-BR, nothing of it exists anywhere: every view is unchanged.
		if !tr.waitConverged(t, "pt-BR uncovered", tr.views(feed), 30*time.Second, 5) {
			t.FailNow()
		}

		tr.root.own = append(tr.root.own, "pt-BR")
		putLanguages(t, hq.url, hq.token, tr.root.own)
		imp := hierImport(t, hq, map[string]any{"source": feedPath, "mode": "complete"})
		if want := feed.view([]string{"pt-BR"}).L["pt-BR"]; imp.Result.Updates.Added != want {
			t.Errorf("root re-import with pt-BR added: updates %s, want +%d (pt-BR)", imp.Result.Updates, want)
		}
		waitFor(t, 30*time.Second, func() (bool, string) { return tr.alertsAre(t, nil) })
		views = tr.views(feed)
		if !tr.waitConverged(t, "pt-BR covered", views, 60*time.Second, 20) {
			t.FailNow()
		}
		if n := views[berlin].L["pt-BR"]; n == 0 || !slices.Contains(hierLangsOf(t, berlin.p), "pt-BR") {
			t.Errorf("%s holds no pt-BR updates after the root covers pt-BR (its view has %d)", berlin.path(), n)
		}
	})

	t.Run("relay-import", func(t *testing.T) {
		for _, relay := range []*tierSite{emea, emeaDE} {
			st, m, raw := do(t, "POST", relay.p.url+"/v1/catalog/import", relay.p.token, map[string]any{"source": feedPath})
			checkError(t, relay.name+": POST /v1/catalog/import at a relay", st, m, raw, 409, "")
		}
	})

	t.Run("replicate-now", func(t *testing.T) { tierCheckReplicateNow(t, tr) })

	t.Run("tree", func(t *testing.T) { tierCheckTree(t, tr) })

	t.Run("faults", func(t *testing.T) {
		feed = tierKillRelay(t, tr, emeaDE, feed, feedPath)
		views = tr.views(feed)
		if !tr.waitConverged(t, "after the relay's SIGKILLs", views, 90*time.Second, 10) {
			t.FailNow()
		}
		fltCheckNoStagedLeftovers(t, emeaDE.p, 10*time.Second)
		feed = tierCutRelayLink(t, tr, emeaDE, feed, feedPath)
		for _, s := range []*tierSite{emeaDE, berlin} {
			tierCheckRunsSound(t, s)
		}
	})
	t.Logf("TestTiers: %d sites, whole test %v", len(tr.sites), time.Since(began).Round(time.Millisecond))
}

// tierCheckSubtrees checks GET /v1/children and GET /v1/children/{name} at every parent and
// relay: each child's ranges are its own and its subtree's, own_ranges its own, and subtree
// lists every site below it by its path below the site answering, with its own ranges and role.
func tierCheckSubtrees(t *testing.T, tr *tierTree) {
	t.Helper()
	for _, s := range tr.below() {
		want := map[string]tierSubtreeEntry{}
		for _, d := range s.descendants() {
			want[d.pathBelow(s.up)] = tierSubtreeEntry{Path: d.pathBelow(s.up), Ranges: tierSet(d.own), Role: d.role}
		}
		listed := tierChildren(t, s.up.p)[s.name]
		for what, c := range map[string]tierChildInfo{"GET /v1/children": listed, "GET /v1/children/" + s.name: tierChild(t, s.up.p, s.name)} {
			if c.Name != s.name || !slices.Equal(tierSet(c.Ranges), s.union()) || !slices.Equal(tierSet(c.OwnRanges), tierSet(s.own)) {
				t.Errorf("%s at %s: name %q, ranges %v, own_ranges %v; want %s, ranges %v (own and subtree), own_ranges %v",
					what, s.up.name, c.Name, c.Ranges, c.OwnRanges, s.name, s.union(), tierSet(s.own))
			}
			got := map[string]tierSubtreeEntry{}
			for _, e := range c.Subtree {
				e.Ranges = tierSet(e.Ranges)
				got[e.Path] = e
			}
			if len(got) != len(c.Subtree) || !tierSameSubtree(got, want) {
				t.Errorf("%s at %s: %s's subtree %+v, want %+v", what, s.up.name, s.name, c.Subtree, slices.Collect(maps.Values(want)))
			}
		}
	}
}

// tierSameSubtree compares two subtrees by path.
func tierSameSubtree(a, b map[string]tierSubtreeEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for path, e := range a {
		w, ok := b[path]
		if !ok || e.Role != w.Role || !slices.Equal(e.Ranges, w.Ranges) {
			return false
		}
	}
	return true
}

// tierCheckDifferential checks a site's runs at its parent since the import of a changed feed,
// as TestHierarchyDifferential and TestHierarchyFilterChange do for one tier: every new run is
// differential and verified, exactly one carries data, and it carries exactly the site's
// filtered change set (bulletins whose filtered update ids changed count; unchanged bulletins
// that merely list a changed update do not). Deleted bulletins are gone from the site.
func tierCheckDifferential(t *testing.T, s *tierSite, oldView, newView *hierView, before int) {
	t.Helper()
	delta := hierDiff(oldView, newView)
	t.Logf("%s: filtered change set %d records (%d updates + %d bulletins), %d deletes (%d updates + %d bulletins); %d more bulletins list a changed update but are unchanged",
		s.path(), delta.Records(), len(delta.ChangedU), len(delta.ChangedB), delta.Deletes(), len(delta.DeletedU), len(delta.DeletedB), len(delta.Touched))
	hist := hierRuns(t, s.up.p, s.name)
	if len(hist) < before {
		t.Errorf("%s: %d runs at %s, fewer than the %d before the import", s.path(), len(hist), s.up.name, before)
		return
	}
	var carrying []hierRun
	for _, r := range hist[:len(hist)-before] {
		t.Logf("%s: run at %s since the import: %v", s.path(), s.up.name, r)
		if !r.Verified || r.Mode != "differential" || r.ParentDigest != r.ChildDigest {
			t.Errorf("%s: run at %s since the import %v: want differential and verified with equal digests", s.path(), s.up.name, r)
		}
		if r.Records > 0 || r.Deletes > 0 {
			carrying = append(carrying, r)
		}
	}
	if len(carrying) != 1 {
		t.Errorf("%s: %d runs at %s carried the change, want 1", s.path(), len(carrying), s.up.name)
		return
	}
	r := carrying[0]
	if r.Records != delta.Records() {
		t.Errorf("%s: differential run carried %d records, want the filtered change set %d (%d updates + %d bulletins); "+
			"re-sending every bulletin that lists a changed in-view update would give %d (+%d unchanged bulletins)",
			s.path(), r.Records, delta.Records(), len(delta.ChangedU), len(delta.ChangedB), delta.Records()+len(delta.Touched), len(delta.Touched))
	}
	if r.Deletes != delta.Deletes() {
		t.Errorf("%s: differential run carried %d deletes, want %d (%d updates + %d bulletins of its view)",
			s.path(), r.Deletes, delta.Deletes(), len(delta.DeletedU), len(delta.DeletedB))
	}
	for _, id := range delta.DeletedB {
		if st, _, _ := do(t, "GET", s.p.url+"/v1/catalog/bulletins/"+url.PathEscape(id), s.p.token, nil); st != 404 {
			t.Errorf("%s: deleted bulletin %s answers %d, want 404", s.path(), id, st)
		}
	}
}

// tierKillRelay SIGKILLs a relay five times while the runs of re-imports flow through it: odd
// rounds while its parent streams a run to it (over its proxied link, slowed to 8 KB/s so that
// the run lasts), even rounds while it streams a run to its own child. Each time it is relaunched
// with the same data dir and port. It returns the last feed imported.
func tierKillRelay(t *testing.T, tr *tierTree, relay *tierSite, feed *hierFeed, feedPath string) *hierFeed {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x7e1a))
	t.Logf("random kill delays from seed %d", seed)
	below := relay.down[0]
	outcome := map[string]int{}
	var restarts time.Duration
	for round := 1; round <= 5; round++ {
		// Whose run is killed, and how long after it was handed out: a run to the relay's child
		// over loopback takes some tens of milliseconds.
		server, client, window := relay.up, relay, 100*time.Millisecond
		relay.proxy.reset()
		if round%2 == 1 {
			relay.proxy.add("bandwidth", "downstream", map[string]any{"rate": 8}) // KB/s
		} else {
			server, client, window = relay, below, 20*time.Millisecond
		}
		next := hierModifyFeed(t, feed, uint64(3000+round), 0.1, 2, 3, []string{"de", "it"})
		tierWriteFeed(t, next, feedPath)
		n := len(fltRunStarts(server.p, client.name))
		hierImport(t, tr.root.p, map[string]any{"source": feedPath})
		feed = next
		start := fltWaitRunStart(t, server.p, client.name, n, 30*time.Second)
		delay := time.Duration(rng.Int64N(int64(window)))
		time.Sleep(delay)
		relay.p.mark(fmt.Sprintf("fault round %d: SIGKILL %v after %s handed out run %s to %s", round, delay.Round(time.Millisecond), server.name, start["run"], client.name))
		relay.p.kill9(t)
		where := "mid-run"
		if fltApplied(client.p, start["run"]) {
			where = "after the commit"
		}
		outcome[where]++
		began := time.Now()
		relay.p.relaunch(t)
		relay.p.waitUp(t, 30*time.Second)
		restarts += time.Since(began)
		t.Logf("round %d: SIGKILL of %s %v after %s handed out %s run %s (%s records) to %s: %s; relaunched in %v",
			round, relay.name, delay.Round(time.Millisecond), server.name, start["trigger"], start["run"], start["records"], client.name, where,
			time.Since(began).Round(time.Millisecond))
	}
	relay.proxy.reset()
	t.Logf("kills of %s: %v; mean restart %v", relay.name, outcome, (restarts / 5).Round(time.Millisecond))
	if outcome["mid-run"] == 0 {
		t.Errorf("no kill of %s landed mid-run; see the seed above", relay.name)
	}
	return feed
}

// tierCutRelayLink delays a relay's link to its parent (300 ms each way) while a re-import flows
// down, then cuts it: every connection towards the relay is closed after 4 KiB, so the stream of
// the next run breaks whatever the timing. Once the relay has noticed, the toxics go, and the
// tree must converge on its own. It returns the last feed imported.
func tierCutRelayLink(t *testing.T, tr *tierTree, relay *tierSite, feed *hierFeed, feedPath string) *hierFeed {
	t.Helper()
	relay.proxy.latency(300)
	next := hierModifyFeed(t, feed, 4001, 0.05, 2, 3, []string{"de", "it"})
	tierWriteFeed(t, next, feedPath)
	hierImport(t, tr.root.p, map[string]any{"source": feedPath})
	feed = next
	if !tr.waitConverged(t, "link delayed 300 ms each way", tr.views(feed), 60*time.Second, 5) {
		t.FailNow()
	}
	relay.proxy.reset()

	relay.proxy.latency(100)
	relay.proxy.add("limit_data", "downstream", map[string]any{"bytes": 4 << 10})
	n := len(fltRunStarts(relay.up.p, relay.name))
	pullErrs := len(fltPullErrors(relay.p))
	next = hierModifyFeed(t, feed, 4002, 0.1, 2, 3, []string{"de", "it"})
	tierWriteFeed(t, next, feedPath)
	hierImport(t, tr.root.p, map[string]any{"source": feedPath})
	feed = next
	start := fltWaitRunStart(t, relay.up.p, relay.name, n, 30*time.Second)
	errs := fltWaitPullErrors(t, relay.p, pullErrs, 30*time.Second)
	relay.proxy.reset()
	t.Logf("link cut after 4 KiB under %s run %s (%s records); %s logged: %s", start["trigger"], start["run"], start["records"], relay.name, fltDistinct(errs))
	if fltApplied(relay.p, start["run"]) {
		t.Errorf("%s committed run %s although its stream was cut after 4 KiB", relay.name, start["run"])
	}
	if !tr.waitConverged(t, "link cut, toxics removed", tr.views(feed), 60*time.Second, 10) {
		t.FailNow()
	}
	fltCheckNoStagedLeftovers(t, relay.p, 10*time.Second)
	return feed
}
