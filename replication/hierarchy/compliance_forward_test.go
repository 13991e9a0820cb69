package hierarchy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/store"
)

// relayRig is a relay "emea" whose summary reports reach a tierParent in process: the relay's
// client hands each report to Parent.ReceiveSummary, and the rig records what each carried.
type relayRig struct {
	parent *Parent
	top    *memSite // the parent's site
	relay  *Child
	site   *memSite // the relay's site

	mu      sync.Mutex
	reports []SummaryReport
}

func newRelayRig(t *testing.T) *relayRig {
	t.Helper()
	r := &relayRig{site: newMemSite(t)}
	r.parent, r.top = tierParent(t)
	dec, _ := zstd.NewReader(nil)
	client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(req.Body)
		raw, err := dec.DecodeAll(body, nil)
		if err != nil {
			t.Errorf("report body: %v", err)
		}
		var rep SummaryReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Errorf("report: %v", err)
		}
		r.mu.Lock()
		r.reports = append(r.reports, rep)
		r.mu.Unlock()
		ans, err := r.parent.ReceiveSummary("emea", rep, int64(len(body)), int64(len(raw)))
		if err != nil {
			t.Errorf("parent refused a report: %v", err)
			return respond(http.StatusBadRequest, []byte(`{"error":"refused"}`), nil), nil
		}
		out, _ := json.Marshal(ans)
		return respond(http.StatusOK, out, nil), nil
	})}
	r.relay = NewChild(ChildConfig{ParentURL: "http://hq", Name: "emea", Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r.relay.SetBackend(r.site)
	if _, err := r.site.PutSetting(SettingParent, Link{URL: "http://hq", Child: "emea", NodeToken: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"emea-de", "emea-fr"} {
		if err := r.site.s.AddChild(r.site.next(), &store.Child{Name: name, JoinTokenHash: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// childReports stores at the relay a summary its child sent (seq), as the relay's parent side
// does.
func (r *relayRig) childReports(t *testing.T, child string, seq uint64, k int64) {
	t.Helper()
	sum := siteSummary(child, k)
	enc, err := sum.Encode()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, _, err := r.site.s.PutChildSummary(r.site.next(), &store.ChildSummary{Child: child, Seq: seq, Digest: sum.Digest(), AsOf: sum.AsOf,
		ReceivedAt: now, LastContact: now, Interval: time.Hour, Summary: enc}, nil); err != nil {
		t.Fatal(err)
	}
}

// forwards stores at the relay what its child forwarded of a site below it.
func (r *relayRig) forwards(t *testing.T, child, path string, seq uint64, k int64) {
	t.Helper()
	sum := siteSummary(path[len(path)-len("berlin"):], k)
	enc, _ := sum.Encode()
	if _, err := r.site.s.PutSubtreeSummaries(r.site.next(), child, []*store.SubtreeSummary{{Path: path, Child: child, Seq: seq,
		Digest: sum.Digest(), AsOf: sum.AsOf, LastContact: time.Now().UTC(), Interval: time.Hour, Summary: enc}}, []string{path}, true); err != nil {
		t.Fatal(err)
	}
}

// sent returns the reports since the last call: how many, and how many summaries they carried.
func (r *relayRig) sent() (reports, summaries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		summaries += countSummaries(rep.Subtree)
	}
	reports = len(r.reports)
	r.reports = nil
	return reports, summaries
}

// TestRelayForwardsWhatChanged: a relay's first report lists its subtree and sends the
// summaries its parent asks for; later reports send only the summaries that changed; a child
// removed at the relay leaves the parent's report with its subtree.
func TestRelayForwardsWhatChanged(t *testing.T) {
	r := newRelayRig(t)
	ctx := context.Background()
	r.childReports(t, "emea-de", 1, 2)
	r.childReports(t, "emea-fr", 1, 1)
	r.forwards(t, "emea-de", "emea-de/berlin", 4, 3)
	fwd := &forwardState{}
	res, err := r.relay.sendSummary(ctx, "test", fwd)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"emea/emea-de": 1, "emea/emea-fr": 1, "emea/emea-de/berlin": 4}
	if got := storedPaths(t, r.top.s); len(got) != 3 || got["emea/emea-de"] != 1 || got["emea/emea-fr"] != 1 || got["emea/emea-de/berlin"] != 4 {
		t.Fatalf("parent holds %v, want %v", got, want)
	}
	if n, sums := r.sent(); n != 2 || sums != 3 || res.Subtree != 3 || res.Forwarded != 3 {
		t.Fatalf("first firing: %d reports with %d summaries, result %+v; want the list, then the 3 summaries", n, sums, res)
	}
	if _, err := r.relay.sendSummary(ctx, "test", fwd); err != nil {
		t.Fatal(err)
	}
	if n, sums := r.sent(); n != 1 || sums != 0 {
		t.Fatalf("nothing changed: %d reports with %d summaries, want 1 without", n, sums)
	}
	r.childReports(t, "emea-fr", 2, 5)
	if _, err := r.relay.sendSummary(ctx, "test", fwd); err != nil {
		t.Fatal(err)
	}
	if n, sums := r.sent(); n != 1 || sums != 1 || storedPaths(t, r.top.s)["emea/emea-fr"] != 2 {
		t.Fatalf("emea-fr changed: %d reports with %d summaries, parent %v", n, sums, storedPaths(t, r.top.s))
	}
	// Replicate now starts from nothing known: the list, then what the parent wants (nothing).
	if _, err := r.relay.SendSummary(ctx, "replicate-now"); err != nil {
		t.Fatal(err)
	}
	if n, sums := r.sent(); n != 1 || sums != 0 {
		t.Fatalf("replicate now: %d reports with %d summaries", n, sums)
	}
	if err := r.site.s.RemoveChild(r.site.next(), "emea-de"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.relay.sendSummary(ctx, "test", fwd); err != nil {
		t.Fatal(err)
	}
	if got := storedPaths(t, r.top.s); len(got) != 1 || got["emea/emea-fr"] != 2 {
		t.Fatalf("after emea-de was removed at the relay the parent holds %v", got)
	}
}

// TestRelayReportsWhenBelowChanges: the summary loop's wait ends (trigger "subtree") when a
// summary below the relay changes, not when a child only reports again unchanged.
func TestRelayReportsWhenBelowChanges(t *testing.T) {
	t.Parallel()
	r := newRelayRig(t)
	r.childReports(t, "emea-de", 1, 2)
	tree, _ := r.site.s.SummaryTree(nil)
	fwd := &forwardState{sent: subtreeKey(collectSubtree(tree, "", time.Now(), nil))}
	wait := func(change func()) (string, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*forwardDebounce)
		defer cancel()
		start := time.Now()
		got := make(chan string, 1)
		go func() { got <- r.relay.waitSchedule(ctx, fwd) }()
		// Before or after the wait reads the summaries, a change is seen: it compares them with
		// what was sent, then watches them.
		change()
		return <-got, time.Since(start)
	}
	contact := func() {
		cs, _ := r.site.s.ChildSummary(nil, "emea-de")
		if _, _, err := r.site.s.PutChildSummary(r.site.next(), &store.ChildSummary{Child: "emea-de", Seq: cs.Seq, Digest: cs.Digest,
			LastContact: time.Now().UTC(), Interval: time.Hour}, nil); err != nil {
			t.Error(err)
		}
	}
	if trigger, _ := wait(contact); trigger != "" {
		t.Fatalf("an unchanged report of a child: trigger %q, want none", trigger)
	}
	trigger, took := wait(func() { r.childReports(t, "emea-de", 2, 3) })
	if trigger != "subtree" || took < forwardDebounce {
		t.Fatalf("a new summary below: trigger %q after %s, want subtree after the debounce", trigger, took)
	}
}

// TestCollectSubtreeBounds: a relay lists at most MaxSubtreeSummaries sites, leaves out paths
// over MaxSubtreePathBytes and the sites of children removed at it, and marks every site below
// a stale child stale.
func TestCollectSubtreeBounds(t *testing.T) {
	now := time.Now()
	tree := &store.SummaryTree{
		Children: []*store.Child{{Name: "c"}},
		Summaries: []*store.ChildSummary{{Child: "c", Seq: 1, Digest: "d", Summary: []byte("x"), Interval: time.Minute, LastContact: now.Add(-time.Hour)},
			{Child: "gone", Seq: 1, Digest: "d", Summary: []byte("x")}},
		Subtree: []*store.SubtreeSummary{{Path: "gone/x", Child: "gone", Seq: 1}, {Path: "c/" + strings.Repeat("y", MaxSubtreePathBytes), Child: "c", Seq: 1}},
	}
	for i := range MaxSubtreeSummaries + 5 {
		tree.Subtree = append(tree.Subtree, &store.SubtreeSummary{Path: fmt.Sprintf("c/s%04d", i), Child: "c", Seq: 1})
	}
	got := collectSubtree(tree, "relay", now, nil)
	if len(got) != MaxSubtreeSummaries || got[0].Path != "relay/c" || got[1].Path != "relay/c/s0000" {
		t.Fatalf("%d entries starting %s, %s; want %d starting with the child", len(got), got[0].Path, got[1].Path, MaxSubtreeSummaries)
	}
	for _, e := range got {
		if !e.Stale || len(e.Path) > MaxSubtreePathBytes || strings.Contains(e.Path, "gone") {
			t.Fatalf("entry %+v", e.ForwardedSummary)
		}
	}
	if subtreeKey(nil) != "" || subtreeKey(got) == subtreeKey(got[1:]) {
		t.Fatalf("subtree keys do not tell lists apart")
	}
}
