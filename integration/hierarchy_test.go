package integration

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"patchtree/integration/shareddata"
)

// Parent/child hierarchy tests (DESIGN.md §1, §4, §5, §8), modelled on consul's
// TestACLReplication_Policies: change many records on the parent, then prove that each child
// holds exactly its filtered view. Every expected view is computed by the test from the feed
// file itself with its own RFC 4647 matcher.

const hierMozilla = "catalogs/mozilla-2005-2019.catalog.json"

// hierMozillaFeed returns the path of the real Mozilla feed, or skips the test.
func hierMozillaFeed(t *testing.T) string {
	t.Helper()
	requireBinary(t)
	return shareddata.Path(t, hierMozilla)
}

// hierStartParent starts a parent managing ranges whose catalog rule does not fire during a test,
// so that every run is one the test asked for.
func hierStartParent(t *testing.T, name string, ranges []string) *proc {
	t.Helper()
	p := startSite(t, siteOpts{Name: name, Languages: ranges})
	var rules struct {
		Catalog       string  `json:"catalog"`
		Languages     string  `json:"languages"`
		VerifyPercent float64 `json:"verify_percent"`
	}
	doJSON(t, "PUT", p.url+"/v1/replication/rules", p.token, map[string]any{"catalog": "12h", "verify_percent": 5}, 200, &rules)
	doJSON(t, "GET", p.url+"/v1/replication/rules", p.token, nil, 200, &rules)
	if rules.Catalog != "12h" || rules.VerifyPercent != 5 || rules.Languages == "" {
		t.Errorf("GET /v1/replication/rules after PUT {catalog 12h, verify_percent 5}: %+v", rules)
	}
	return p
}

// hierImport imports a feed at the parent and requires success (or "unchanged").
func hierImport(t *testing.T, p *proc, body map[string]any) catRun {
	t.Helper()
	run, _ := catImport(t, p, body)
	if run.State != "succeeded" && run.State != "unchanged" {
		t.Fatalf("import %v: state %q, error %q", body, run.State, run.Error)
	}
	return run
}

// TestHierarchyFilteredReplication: three children managing en, de+fr and ja each hold exactly
// their filtered view of the Mozilla catalog after one replicate-now.
func TestHierarchyFilteredReplication(t *testing.T) {
	t.Parallel()
	feedPath := hierMozillaFeed(t)
	feed := hierParseFeed(t, feedPath)
	parent := hierStartParent(t, "hq", []string{"*"})

	type kid struct {
		name   string
		ranges []string
		langs  []string // exactly the language values it must hold ("" = neutral)
		p      *proc
	}
	kids := []*kid{
		{name: "amer", ranges: []string{"en"}, langs: []string{"", "en-GB", "en-US", "en-ZA"}},
		{name: "emea", ranges: []string{"de", "fr"}, langs: []string{"", "de", "fr"}},
		{name: "apac", ranges: []string{"ja"}, langs: []string{"", "ja"}},
	}
	for _, k := range kids {
		k.p = hierStartChild(t, parent, k.name, k.ranges)
	}

	imp := hierImport(t, parent, map[string]any{"source": feedPath})
	version := catGetInfo(t, parent).Version
	t.Logf("parent catalog version %d after import %s", version, imp.ID)

	start := time.Now()
	runs := hierReplicateNow(t, parent, "", "")
	t.Logf("replicate now to %d children took %v", len(runs), time.Since(start).Round(time.Millisecond))
	for _, k := range kids {
		r, ok := runs[k.name]
		if !ok {
			t.Fatalf("replicate now did not target %s", k.name)
		}
		if r.To != version {
			t.Errorf("%s: run %s reached version %d, want %d", k.name, r.ID, r.To, version)
		}
	}

	for _, k := range kids {
		want := feed.view(k.ranges)
		t.Logf("%s %v: expected view %s", k.name, k.ranges, want)
		hierCheckView(t, k.p, want, 30)
		if got := hierSorted(hierLangsOf(t, k.p)); !slices.Equal(got, k.langs) {
			t.Errorf("%s manages %v: holds language values %q, want exactly %q", k.name, k.ranges, got, k.langs)
		}
		if slices.Contains(hierLangsOf(t, k.p), "dsb") {
			t.Errorf("%s manages %v but holds dsb updates (range de must not match dsb)", k.name, k.ranges)
		}

		// The child's own view of its link. A child's first run may still be in flight when
		// replicate now is asked for: the answer names that run, and a differential
		// replicate-now run may follow it. Run ids begin with their start time.
		var st hierStatus
		waitFor(t, 10*time.Second, func() (bool, string) { // the child learns the verdict from the parent's answer
			st = hierGetStatus(t, k.p)
			ok := st.Parent != nil && st.Parent.LastRun >= runs[k.name].ID
			return ok, fmt.Sprintf("%s: status.parent %+v, want last_run %s or a later run", k.name, st.Parent, runs[k.name].ID)
		})
		if l := st.Parent; l.URL != parent.url || !l.Joined || !l.Connected || l.Cursor != version || !l.RangesReported ||
			len(l.Uncovered) != 0 || !l.LastVerified || l.LastRun == "" || l.Error != "" {
			t.Errorf("%s: status.parent %+v, want url %s, joined, connected, cursor %d, ranges reported, nothing uncovered, last run verified, no error",
				k.name, *l, parent.url, version)
		}
		// The parent's view of the child.
		c := hierChildren(t, parent)[k.name]
		if !c.Joined || !c.Connected || !c.RangesReported || c.Cursor != version || c.LagIndex != 0 || c.LastRun == nil ||
			!c.LastRun.Verified || c.Status == "" {
			t.Errorf("GET /v1/children %s: %+v, want joined, connected, cursor %d, lag 0, last run verified, a status", k.name, c, version)
		}
		// The first run to a child is complete; later ones are differential (none was asked
		// to be complete). The children started before the parent had a catalog.
		hist := hierRuns(t, parent, k.name)
		var complete []hierRun
		for _, r := range hist {
			if r.Mode == "complete" {
				complete = append(complete, r)
			}
		}
		switch {
		case len(hist) == 0:
			t.Errorf("%s: no run in history", k.name)
		case hist[0].ID == runs[k.name].ID:
		case len(hist) > 1 && hist[1].ID == runs[k.name].ID && hist[0].Trigger == "replicate-now" && hist[0].Records+hist[0].Deletes == 0:
			t.Logf("%s: replicate now was answered by the in-flight run %s; an empty replicate-now run %s followed", k.name, runs[k.name].ID, hist[0].ID)
		default:
			t.Errorf("%s: newest run in history %v is neither the replicate-now run %s nor an empty replicate-now run right after it", k.name, hist[0], runs[k.name].ID)
		}
		if len(hist) > 0 && (len(complete) != 1 || complete[0].ID != hist[len(hist)-1].ID) {
			t.Errorf("%s: %d runs in history, %d of them complete (want exactly one complete run, the first); oldest: %v; newest: %v",
				k.name, len(hist), len(complete), hist[len(hist)-1], hist[0])
		}
		// Exactly one run carried data: the complete one with the whole view.
		var carrying []hierRun
		for _, r := range hist {
			if r.Records > 0 || r.Deletes > 0 {
				carrying = append(carrying, r)
			}
		}
		if len(carrying) != 1 || carrying[0].Mode != "complete" || carrying[0].Records != len(want.B)+len(want.U) || carrying[0].Deletes != 0 {
			t.Errorf("%s: runs carrying data %v; want one complete run of %d records (%d bulletins + %d updates), no deletes",
				k.name, carrying, len(want.B)+len(want.U), len(want.B), len(want.U))
		}
		for _, r := range carrying {
			t.Logf("%s: %d records in %d bytes on the wire vs %d raw (%.1fx), %d ms (run %s/%s)", k.name, r.Records, r.BytesWire, r.BytesRaw,
				float64(r.BytesRaw)/float64(max(1, r.BytesWire)), r.DurationMS, r.Mode, r.Trigger)
		}
		// The replica is read-only.
		st2, m, raw := do(t, "POST", k.p.url+"/v1/catalog/import", k.p.token, map[string]any{"source": feedPath})
		checkError(t, k.name+": POST /v1/catalog/import on a child", st2, m, raw, 409, "child")
	}

	// The CLI lists the children.
	out := catRunCLI(t, t.TempDir(), nil, "child", "list", "--server", parent.url, "--token", parent.token)
	for _, k := range kids {
		if out.code != 0 || !strings.Contains(out.stdout, k.name) {
			t.Errorf("patchtree child list: %v; want a line for %s", out, k.name)
		}
	}
}

// hierLangsOf lists the language values of GET /v1/catalog.
func hierLangsOf(t *testing.T, p *proc) []string {
	t.Helper()
	var out []string
	for _, l := range catGetInfo(t, p).Languages {
		out = append(out, l.Language)
	}
	return out
}

// TestHierarchyDifferential: after a replicated child, a changed feed (1% retitled updates, 10
// bulletins deleted, 20 added) replicates as one differential run carrying exactly the
// filtered change set.
func TestHierarchyDifferential(t *testing.T) {
	t.Parallel()
	src := hierMozillaFeed(t)
	dir := t.TempDir()
	feedPath := filepath.Join(dir, "mozilla.catalog.json")
	orig := hierParseFeed(t, src)
	orig.write(t, feedPath)
	ranges := []string{"de", "fr"}

	parent := hierStartParent(t, "hq", []string{"*"})
	hierImport(t, parent, map[string]any{"source": feedPath})
	child := hierStartChild(t, parent, "emea", ranges)
	hierReplicateNow(t, parent, "emea", "")
	oldView := orig.view(ranges)
	hierCheckView(t, child, oldView, 10)
	histBefore := hierRuns(t, parent, "emea")
	first := histBefore[len(histBefore)-1]
	if first.Mode != "complete" || first.Records != len(oldView.B)+len(oldView.U) {
		t.Errorf("first run to the child: %v, want complete with %d records", first, len(oldView.B)+len(oldView.U))
	}
	cursor := hierChildren(t, parent)["emea"].Cursor

	next := hierModifyFeed(t, orig, 2024, 0.01, 10, 20, []string{"de", "fr"})
	next.write(t, feedPath)
	imp := hierImport(t, parent, map[string]any{"source": feedPath})
	t.Logf("parent import of the modified feed: bulletins %s, updates %s", imp.Result.Bulletins, imp.Result.Updates)
	if imp.Result.Bulletins.Added != 20 || imp.Result.Bulletins.Removed != 10 {
		t.Errorf("import of the modified feed: bulletins %s, want +20 and -10", imp.Result.Bulletins)
	}
	newView := next.view(ranges)
	delta := hierDiff(oldView, newView)
	t.Logf("expected filtered change set for %v: %d updates changed/added + %d bulletins changed/added = %d records; %d updates + %d bulletins deleted = %d deletes; %d more bulletins list a changed update but are themselves unchanged",
		ranges, len(delta.ChangedU), len(delta.ChangedB), delta.Records(), len(delta.DeletedU), len(delta.DeletedB), delta.Deletes(), len(delta.Touched))

	run := hierReplicateNow(t, parent, "emea", "")["emea"]
	hist := hierRuns(t, parent, "emea")
	if len(hist) == 0 || hist[0].ID != run.ID {
		t.Fatalf("newest run in history is not the replicate-now run %s: %v", run.ID, hist[:min(1, len(hist))])
	}
	latest := hist[0]
	if len(hist) != len(histBefore)+1 {
		t.Errorf("history grew by %d runs, want 1 (the replicate-now run)", len(hist)-len(histBefore))
	}
	if latest.Mode != "differential" || latest.Trigger != "replicate-now" || latest.From != cursor || latest.To != catGetInfo(t, parent).Version || !latest.Verified {
		t.Errorf("latest run %v: want differential/replicate-now from %d to the parent's version, verified", latest, cursor)
	}
	// What an unfiltered change set would count, to explain a run that is not filtered: every
	// changed update of any language, every bulletin listing one, every deleted update.
	nextAll := next.view([]string{"*"})
	all := hierDiff(orig.view([]string{"*"}), nextAll)
	changedAny := map[string]bool{}
	outOfView := 0
	for _, id := range all.ChangedU {
		changedAny[id] = true
		if newView.U[id] == nil {
			outOfView++
		}
	}
	listing := 0
	for id := range newView.B {
		if !slices.Contains(delta.ChangedB, id) && slices.ContainsFunc(nextAll.B[id], func(u string) bool { return changedAny[u] }) {
			listing++
		}
	}
	unfiltered := fmt.Sprintf("unfiltered: %d in-view updates + %d changed bulletins + %d unchanged bulletins listing an update changed in any language = %d records; "+
		"%d deleted updates of every language + %d changed updates outside the view + %d bulletins = %d deletes",
		len(delta.ChangedU), len(delta.ChangedB), listing, delta.Records()+listing,
		len(all.DeletedU), outOfView, len(delta.DeletedB), len(all.DeletedU)+outOfView+len(delta.DeletedB))
	t.Logf("for comparison, %s", unfiltered)
	if latest.Records != delta.Records() {
		t.Errorf("differential run carried %d records, want the filtered change set %d (%d updates + %d bulletins); "+
			"re-sending every bulletin that lists a changed in-view update would give %d (+%d unchanged bulletins); %s",
			latest.Records, delta.Records(), len(delta.ChangedU), len(delta.ChangedB), delta.Records()+len(delta.Touched), len(delta.Touched), unfiltered)
	}
	if latest.Deletes != delta.Deletes() {
		t.Errorf("differential run carried %d deletes, want %d (%d updates + %d bulletins of the child's view); %s",
			latest.Deletes, delta.Deletes(), len(delta.DeletedU), len(delta.DeletedB), unfiltered)
	}
	t.Logf("complete run: %d records in %d bytes on the wire (%d raw, %d ms); differential: %d records in %d bytes (%d raw, %d ms)",
		first.Records, first.BytesWire, first.BytesRaw, first.DurationMS, latest.Records, latest.BytesWire, latest.BytesRaw, latest.DurationMS)
	if latest.BytesWire >= first.BytesWire {
		t.Errorf("differential run sent %d bytes, not less than the complete run's %d", latest.BytesWire, first.BytesWire)
	}
	hierCheckView(t, child, newView, 30)
	// The added and deleted records in particular.
	for _, id := range delta.DeletedB {
		if st, _, _ := do(t, "GET", child.url+"/v1/catalog/bulletins/"+url.PathEscape(id), child.token, nil); st != 404 {
			t.Errorf("deleted bulletin %s: GET on the child answers %d, want 404", id, st)
		}
	}
	added := next.B[len(next.B)-20].ID
	if b := catGetBulletin(t, child, added); len(b.Updates) != 3 {
		t.Errorf("new bulletin %s on the child: updates %+v, want de, fr and neutral", added, b.Updates)
	}
}

// TestHierarchyLanguageAlert: a child managing a range its parent lacks raises one alert, which
// clears when the parent covers it; the child then receives the updates in it.
func TestHierarchyLanguageAlert(t *testing.T) {
	t.Parallel()
	feedPath := hierMozillaFeed(t)
	feed := hierParseFeed(t, feedPath)
	parent := hierStartParent(t, "hq", []string{"en"})
	hierImport(t, parent, map[string]any{"source": feedPath})
	child := hierStartChild(t, parent, "emea", []string{"de"})

	var alerts []hierAlert
	waitFor(t, 20*time.Second, func() (bool, string) {
		var l struct {
			Alerts []hierAlert `json:"alerts"`
		}
		doJSON(t, "GET", parent.url+"/v1/alerts", parent.token, nil, 200, &l)
		alerts = l.Alerts
		return len(alerts) > 0, "no language alert yet"
	})
	if len(alerts) != 1 || alerts[0].Child != "emea" || alerts[0].Range != "de" || !equalStrings(alerts[0].ParentRanges, []string{"en"}) ||
		alerts[0].Message == "" {
		t.Errorf("GET /v1/alerts: %+v, want exactly one alert: child emea, range de, parent ranges [en], a message", alerts)
	}
	out := catRunCLI(t, t.TempDir(), nil, "alerts", "--server", parent.url, "--token", parent.token)
	if out.code != 0 || !strings.Contains(out.stdout, "emea") || !strings.Contains(out.stdout, `de`) {
		t.Errorf("patchtree alerts: %v; want the alert for emea and de", out)
	}
	t.Logf("patchtree alerts: %s", strings.TrimSpace(out.stdout))
	waitFor(t, 20*time.Second, func() (bool, string) {
		st := hierGetStatus(t, child)
		if st.Parent == nil || !equalStrings(st.Parent.Uncovered, []string{"de"}) {
			return false, fmt.Sprintf("child status.parent %+v, want uncovered_ranges [de]", st.Parent)
		}
		return true, ""
	})
	if st := hierGetStatus(t, parent); len(st.Alerts) != 1 || len(st.Children) != 1 {
		t.Errorf("parent status: %d alerts, %d children; want 1 and 1", len(st.Alerts), len(st.Children))
	}
	// Before the parent covers de, the child receives only what both cover: neutral updates.
	hierReplicateNow(t, parent, "emea", "")
	hierCheckView(t, child, feed.view([]string{"en"}, []string{"de"}), 10)

	putLanguages(t, parent.url, parent.token, []string{"de", "en"})
	imp := hierImport(t, parent, map[string]any{"source": feedPath, "mode": "complete"})
	if imp.Result.Updates.Added != feed.view([]string{"de"}).L["de"] {
		t.Errorf("re-import with ranges en,de: updates %s, want +%d (de)", imp.Result.Updates, feed.view([]string{"de"}).L["de"])
	}
	waitFor(t, 20*time.Second, func() (bool, string) {
		var l struct {
			Alerts []hierAlert `json:"alerts"`
		}
		doJSON(t, "GET", parent.url+"/v1/alerts", parent.token, nil, 200, &l)
		return len(l.Alerts) == 0, fmt.Sprintf("alerts after the parent covers de: %+v", l.Alerts)
	})
	run := hierReplicateNow(t, parent, "emea", "")["emea"]
	if run.Mode != "differential" {
		t.Errorf("run after the parent covered de: %v, want differential", run)
	}
	want := feed.view([]string{"de", "en"}, []string{"de"})
	hierCheckView(t, child, want, 30)
	if want.L["de"] == 0 || !slices.Contains(hierLangsOf(t, child), "de") {
		t.Errorf("child holds no de updates after the parent covers de")
	}
	if st := hierGetStatus(t, child); st.Parent != nil && len(st.Parent.Uncovered) != 0 {
		t.Logf("note: the child's status still shows uncovered_ranges %v after the parent covered them (it learns only at its next language report)", st.Parent.Uncovered)
	}
}

// TestHierarchyFilterChange: a child that changes its ranges from de,fr to de,it gets a
// differential run adding it, removing fr, and leaving every de update row untouched.
func TestHierarchyFilterChange(t *testing.T) {
	t.Parallel()
	feedPath := hierMozillaFeed(t)
	feed := hierParseFeed(t, feedPath)
	parent := hierStartParent(t, "hq", []string{"*"})
	hierImport(t, parent, map[string]any{"source": feedPath})
	child := hierStartChild(t, parent, "emea", []string{"de", "fr"})
	hierReplicateNow(t, parent, "emea", "")
	oldView := feed.view([]string{"de", "fr"})
	hierCheckView(t, child, oldView, 10)

	// The de update rows of a sample of bulletins, before.
	before := map[string]uint64{}
	for i := 0; i < len(feed.B); i += len(feed.B) / 25 {
		b := feed.B[i]
		if _, ok := oldView.B[b.ID]; !ok {
			continue
		}
		var r hierBulletinResp
		doJSON(t, "GET", child.url+"/v1/catalog/bulletins/"+url.PathEscape(b.ID), child.token, nil, 200, &r)
		for _, u := range r.Updates {
			if u.Language == "de" {
				before[u.ID] = u.ModifyIndex
			}
		}
	}
	if len(before) < 10 {
		t.Fatalf("only %d de updates in the sample", len(before))
	}
	runsBefore := hierRuns(t, parent, "emea")

	putLanguages(t, child.url, child.token, []string{"de", "it"})
	hierWaitReported(t, parent, "emea", []string{"de", "it"})
	hierReplicateNow(t, parent, "emea", "")
	newView := feed.view([]string{"de", "it"})
	delta := hierDiff(oldView, newView)

	// The runs since the change: one differential run carries it, any other is empty.
	hist := hierRuns(t, parent, "emea")
	var carrying []hierRun
	for _, r := range hist[:len(hist)-len(runsBefore)] {
		t.Logf("run after the filter change: %v", r)
		if !r.Verified || r.Mode != "differential" {
			t.Errorf("run after the filter change %v: want differential and verified", r)
		}
		if r.Records > 0 || r.Deletes > 0 {
			carrying = append(carrying, r)
		}
	}
	if len(carrying) != 1 {
		t.Fatalf("%d runs carried the filter change, want 1", len(carrying))
	}
	r := carrying[0]
	if r.Records != delta.Records() || r.Deletes != delta.Deletes() {
		t.Errorf("filter-change run: %d records, %d deletes; want %d records (%d it updates + %d bulletins whose filtered update ids changed) and %d deletes (%d fr updates + %d bulletins)",
			r.Records, r.Deletes, delta.Records(), len(delta.ChangedU), len(delta.ChangedB), delta.Deletes(), len(delta.DeletedU), len(delta.DeletedB))
	}
	for _, id := range delta.ChangedU {
		if newView.U[id].Language != "it" {
			t.Errorf("filter change would move update %s (%q)", id, newView.U[id].Language)
		}
	}
	hierCheckView(t, child, newView, 30)
	if langs := hierLangsOf(t, child); slices.Contains(langs, "fr") || !slices.Contains(langs, "it") {
		t.Errorf("child languages after the change: %q, want it and no fr", langs)
	}
	moved, checked := 0, len(before)
	for _, b := range feed.B {
		if _, ok := newView.B[b.ID]; !ok {
			continue
		}
		owns := slices.ContainsFunc(newView.B[b.ID], func(id string) bool { _, ok := before[id]; return ok })
		if !owns {
			continue
		}
		var r hierBulletinResp
		doJSON(t, "GET", child.url+"/v1/catalog/bulletins/"+url.PathEscape(b.ID), child.token, nil, 200, &r)
		for _, u := range r.Updates {
			if old, ok := before[u.ID]; ok {
				if u.ModifyIndex != old {
					moved++
					t.Errorf("de update %s moved: modify_index %d → %d", u.ID, old, u.ModifyIndex)
				}
				delete(before, u.ID)
			}
		}
	}
	if len(before) != 0 {
		t.Errorf("%d sampled de updates not found after the change", len(before))
	}
	t.Logf("filter change: %d de update rows compared before and after, %d moved", checked, moved)
}

// TestHierarchyAuth: node credentials act only as their child and only on the protocol;
// auditors read but cannot trigger; join tokens are one-time; removal revokes.
func TestHierarchyAuth(t *testing.T) {
	t.Parallel()
	parent := hierStartParent(t, "hq", []string{"*"})
	join := func(name, tok string) (int, map[string]any, []byte) {
		return do(t, "POST", parent.url+"/v1/hierarchy/v1/join", "", map[string]any{"name": name, "join_token": tok})
	}
	tok := hierEnrol(t, parent, "emea")
	var j struct {
		NodeToken string `json:"node_token"`
	}
	doJSON(t, "POST", parent.url+"/v1/hierarchy/v1/join", "", map[string]any{"name": "emea", "join_token": tok}, 200, &j)
	if j.NodeToken == "" {
		t.Fatal("join: no node_token")
	}
	node := j.NodeToken

	// A used token and an unknown child get the same answer, so child names cannot be listed.
	st, m, raw := join("emea", tok)
	checkError(t, "join with a used join token", st, m, raw, 401, "join refused: unknown child or invalid join token")
	st, m, raw = join("nobody", tok)
	checkError(t, "join as an unknown child", st, m, raw, 401, "join refused: unknown child or invalid join token")
	hierEnrol(t, parent, "apac")
	st, m, raw = join("apac", tok) // emea's (used) token for apac: wrong
	if st < 400 || st > 499 {
		t.Errorf("join apac with emea's token: status %d, want 4xx; body %s", st, raw)
	}
	checkError(t, "join apac with a wrong token", st, m, raw, st, "token")
	st, m, raw = join("apac", "not-a-token")
	if st < 400 || st > 499 {
		t.Errorf("join with a malformed token: status %d, want 4xx; body %s", st, raw)
	}
	checkError(t, "join with a malformed token", st, m, raw, st, "token")

	// The node credential reports as itself only.
	var rep struct {
		ParentRanges []string `json:"parent_ranges"`
		Uncovered    []string `json:"uncovered"`
	}
	doJSON(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", node, map[string]any{"child": "emea", "ranges": []string{"de", "fr"}}, 200, &rep)
	if !equalStrings(rep.ParentRanges, []string{"*"}) || len(rep.Uncovered) != 0 {
		t.Errorf("language report: %+v, want parent ranges [*], nothing uncovered", rep)
	}
	st, m, raw = do(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", node, map[string]any{"child": "other", "ranges": []string{"de"}})
	checkError(t, "language report as another child", st, m, raw, 403, "")
	if c := hierChildren(t, parent)["emea"]; !equalStrings(c.Ranges, []string{"de", "fr"}) {
		t.Errorf("emea's ranges after a refused report as another child: %v, want [de fr]", c.Ranges)
	}
	for _, rq := range []struct{ method, path string }{
		{"GET", "/v1/status"}, {"GET", "/v1/children"}, {"POST", "/v1/replication/now"}, {"PUT", "/v1/languages"},
	} {
		st, m, raw := do(t, rq.method, parent.url+rq.path, node, map[string]any{"ranges": []string{"de"}})
		checkError(t, "node credential: "+rq.method+" "+rq.path, st, m, raw, 403, "")
	}
	// Only node credentials speak the protocol.
	st, m, raw = do(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", parent.token, map[string]any{"ranges": []string{"de"}})
	checkError(t, "admin token on the protocol", st, m, raw, 403, "")
	st, m, raw = do(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", "", map[string]any{"ranges": []string{"de"}})
	checkError(t, "no token on the protocol", st, m, raw, 401, "")

	// Auditors read children, runs and status, and trigger nothing.
	aud := createToken(t, parent.url, parent.token, "auditor", "aud").Token
	for _, path := range []string{"/v1/children", "/v1/replication/runs", "/v1/status", "/v1/alerts"} {
		if st, _, raw := do(t, "GET", parent.url+path, aud, nil); st != 200 {
			t.Errorf("auditor GET %s: %d %s, want 200", path, st, raw)
		}
	}
	st, m, raw = do(t, "POST", parent.url+"/v1/replication/now", aud, map[string]any{"wait": false})
	checkError(t, "auditor POST /v1/replication/now", st, m, raw, 403, "")
	st, m, raw = do(t, "POST", parent.url+"/v1/children", aud, map[string]any{"name": "x"})
	checkError(t, "auditor POST /v1/children", st, m, raw, 403, "")

	// The CLI enrols and removes too; removal revokes the node credential.
	cli := catRunCLI(t, t.TempDir(), nil, "child", "add", "latam", "--server", parent.url, "--token", parent.token)
	cliTok := strings.TrimSpace(cli.stdout)
	if cli.code != 0 || cliTok == "" || strings.Contains(cliTok, "\n") {
		t.Fatalf("patchtree child add latam: %v; want the join token on one line", cli)
	}
	var j2 struct {
		NodeToken string `json:"node_token"`
	}
	doJSON(t, "POST", parent.url+"/v1/hierarchy/v1/join", "", map[string]any{"name": "latam", "join_token": cliTok}, 200, &j2)
	doJSON(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", j2.NodeToken, map[string]any{"ranges": []string{"es"}}, 200, nil)
	if cli := catRunCLI(t, t.TempDir(), nil, "child", "remove", "latam", "--server", parent.url, "--token", parent.token); cli.code != 0 {
		t.Errorf("patchtree child remove latam: %v", cli)
	}
	st, m, raw = do(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", j2.NodeToken, map[string]any{"ranges": []string{"es"}})
	checkError(t, "removed child's node credential", st, m, raw, 401, "")

	doJSON(t, "DELETE", parent.url+"/v1/children/emea", parent.token, nil, 200, nil)
	st, m, raw = do(t, "PUT", parent.url+"/v1/hierarchy/v1/languages", node, map[string]any{"ranges": []string{"de"}})
	checkError(t, "node credential after DELETE /v1/children/emea", st, m, raw, 401, "")
	st, m, raw = do(t, "GET", parent.url+"/v1/hierarchy/v1/catalog?cursor=0&wait=1s", node, nil)
	checkError(t, "pull after removal", st, m, raw, 401, "")
	if _, ok := hierChildren(t, parent)["emea"]; ok {
		t.Errorf("emea still listed after DELETE")
	}
	st, m, raw = do(t, "DELETE", parent.url+"/v1/children/emea", parent.token, nil)
	checkError(t, "DELETE an unknown child", st, m, raw, 404, "emea")
}

// TestHierarchyChildRestart: a joined child restarted without --join-token keeps working, both
// after a clean stop and after SIGKILL.
func TestHierarchyChildRestart(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	dir := t.TempDir()
	gen := catGenerate(t, dir, "gen.json", "--bulletins", "200", "--languages", "101", "--seed", "7", "--feed", "synthetic")
	feed := hierParseFeed(t, gen)
	feedPath := filepath.Join(dir, "feed.json")
	feed.write(t, feedPath)
	ranges := []string{"de", "fr"}

	parent := hierStartParent(t, "hq", []string{"*"})
	hierImport(t, parent, map[string]any{"source": feedPath})
	child := hierStartChild(t, parent, "emea", ranges)
	first := hierReplicateNow(t, parent, "emea", "")["emea"]
	hierCheckView(t, child, feed.view(ranges), 20)
	t.Logf("first run: %v", first)
	hierDropJoinToken(t, child)

	for round, how := range []string{"SIGTERM", "SIGKILL"} {
		if how == "SIGTERM" {
			child.stop(t)
		} else {
			child.kill9(t)
		}
		d := child.restart(t)
		t.Logf("child restarted after %s without --join-token in %v", how, d.Round(time.Millisecond))
		waitFor(t, 30*time.Second, func() (bool, string) {
			st := hierGetStatus(t, child)
			if st.Parent == nil || !st.Parent.Joined || !st.Parent.RangesReported || st.Parent.Error != "" {
				return false, fmt.Sprintf("child status.parent after restart: %+v", st.Parent)
			}
			return true, ""
		})
		// A new catalog version replicates differentially from the cursor the child kept.
		next := hierModifyFeed(t, feed, uint64(100+round), 0.02, 2, 3, []string{"de", "fr"})
		next.write(t, feedPath)
		hierImport(t, parent, map[string]any{"source": feedPath})
		cursor := hierChildren(t, parent)["emea"].Cursor
		run := hierReplicateNow(t, parent, "emea", "")["emea"]
		if run.Mode != "differential" || run.From != cursor || run.From == 0 || run.Records == 0 {
			t.Errorf("after %s restart: run %v, want a differential run from the kept cursor %d with records", how, run, cursor)
		}
		hierCheckView(t, child, next.view(ranges), 20)
		feed = next
		if c := hierChildren(t, parent)["emea"]; !c.Joined || !c.Connected || c.LastRun == nil || !c.LastRun.Verified {
			t.Errorf("parent's view of emea after %s restart: %+v", how, c)
		}
	}
	if log, err := os.ReadFile(child.logPath); err == nil && strings.Contains(string(log), "no --join-token given") {
		t.Errorf("child log complains about a missing join token after restart")
	}
}
