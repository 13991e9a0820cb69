package hierarchy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"patchtree/langalert"
	"patchtree/store"
)

// newTreeSite is a site of the given role and ranges with enrolled children, and its parent
// side over it.
func newTreeSite(t *testing.T, name, role string, ranges []string, children ...string) (*memSite, *Parent) {
	t.Helper()
	site := newMemSite(t)
	admin := &store.Token{ID: "a", SecretHash: store.HashSecret("s"), Role: store.RoleAdmin, Name: "admin"}
	if err := site.s.InitSite(site.next(), &store.SiteInfo{SiteID: "s-" + name, Name: name, Role: role}, admin, ranges, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		if err := site.s.AddChild(site.next(), &store.Child{Name: c, JoinTokenHash: store.HashSecret("j")}); err != nil {
			t.Fatal(err)
		}
	}
	p := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.SetBackend(fakeParentBackend{site})
	return site, p
}

// TestRelayReportAlertsByPath: a relay's report carries its subtree; every ancestor raises
// one alert per (site path, range) the root does not cover, and none once the root covers it.
func TestRelayReportAlertsByPath(t *testing.T) {
	root, hq := newTreeSite(t, "hq", "parent", []string{"en", "de"}, "emea")
	rep := LanguageReport{Ranges: []string{"de", "en", "pt-BR"}, OwnRanges: []string{"en"}, Role: "relay",
		Subtree: []store.Descendant{{Path: "emea/emea-de", Role: "relay", Ranges: []string{"de"}},
			{Path: "emea/emea-de/berlin", Role: "child", Ranges: []string{"de", "pt-BR"}}}}
	resp, err := hq.ReportLanguages("emea", rep)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Path != "hq/emea" || !sameRanges(resp.RootRanges, []string{"de", "en"}) || len(resp.Uncovered) != 0 {
		t.Fatalf("answer %+v: want path hq/emea, root ranges [de en], nothing of emea's own uncovered", resp)
	}
	c, err := root.s.Child(nil, "emea")
	if err != nil || c == nil {
		t.Fatal(c, err)
	}
	if !slices.Equal(c.Ranges, []string{"de", "en", "pt-BR"}) || !slices.Equal(c.OwnRanges, []string{"en"}) || len(c.Subtree) != 2 {
		t.Fatalf("stored child: ranges %v own %v subtree %d", c.Ranges, c.OwnRanges, len(c.Subtree))
	}
	alerts, err := hq.languageAlerts()
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Path != "hq/emea/emea-de/berlin" || alerts[0].Range != "pt-BR" || alerts[0].Child != "emea" {
		t.Fatalf("alerts at the root: %+v, want one for hq/emea/emea-de/berlin pt-BR via emea", alerts)
	}

	// The relay below learns the root's ranges and its path from the answer, and raises the
	// same alert for the same site.
	relay, emea := newTreeSite(t, "emea", "relay", []string{"en"}, "emea-de")
	if _, err := relay.PutSetting(SettingUpstream, Upstream{Path: resp.Path, RootRanges: resp.RootRanges, ParentRanges: resp.ParentRanges}); err != nil {
		t.Fatal(err)
	}
	sub := LanguageReport{Ranges: []string{"de", "pt-BR"}, OwnRanges: []string{"de"}, Role: "relay",
		Subtree: []store.Descendant{{Path: "emea-de/berlin", Ranges: []string{"de", "pt-BR"}}}}
	if _, err := emea.ReportLanguages("emea-de", sub); err != nil {
		t.Fatal(err)
	}
	alerts, err = emea.languageAlerts()
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Path != "hq/emea/emea-de/berlin" || alerts[0].Range != "pt-BR" {
		t.Fatalf("alerts at the relay: %+v", alerts)
	}
	// A relay that has not heard the root's ranges raises none (it cannot tell).
	_, lone := newTreeSite(t, "apac", "relay", []string{"en"}, "apac-jp")
	if _, err := lone.ReportLanguages("apac-jp", LanguageReport{Ranges: []string{"ja"}}); err != nil {
		t.Fatal(err)
	}
	if alerts, err := lone.languageAlerts(); err != nil || len(alerts) != 0 {
		t.Fatalf("alerts at a relay that does not know the root: %+v %v", alerts, err)
	}

	// The root covers pt-BR: the alerts clear.
	if err := root.s.SetLanguages(root.next(), store.LanguagesSite, []string{"en", "de", "pt-BR"}); err != nil {
		t.Fatal(err)
	}
	if alerts, err := hq.languageAlerts(); err != nil || len(alerts) != 0 {
		t.Fatalf("alerts after the root covers pt-BR: %+v %v", alerts, err)
	}
}

// TestRelayReportRefused: a report whose subtree lies outside the child, names no site, repeats
// a path or lacks a range its sites manage is refused and changes nothing.
func TestRelayReportRefused(t *testing.T) {
	root, hq := newTreeSite(t, "hq", "parent", []string{"en"}, "emea")
	for name, rep := range map[string]LanguageReport{
		"outside":    {Ranges: []string{"en"}, Subtree: []store.Descendant{{Path: "apac/x", Ranges: []string{"en"}}}},
		"bad name":   {Ranges: []string{"en"}, Subtree: []store.Descendant{{Path: "emea/../x", Ranges: []string{"en"}}}},
		"twice":      {Ranges: []string{"en"}, Subtree: []store.Descendant{{Path: "emea/x", Ranges: []string{"en"}}, {Path: "emea/x", Ranges: []string{"en"}}}},
		"lacks":      {Ranges: []string{"en"}, Subtree: []store.Descendant{{Path: "emea/x", Ranges: []string{"fr"}}}},
		"bad range":  {Ranges: []string{"en"}, Subtree: []store.Descendant{{Path: "emea/x", Ranges: []string{"e n"}}}},
		"bad role":   {Ranges: []string{"en"}, Role: "root"},
		"too many":   {Ranges: []string{"en"}, Subtree: make([]store.Descendant, MaxSubtree+1)},
		"own absent": {Ranges: []string{"en"}, OwnRanges: []string{"fr"}},
	} {
		before := root.idx
		if _, err := hq.ReportLanguages("emea", rep); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, langalert.ErrInvalidRange) {
			t.Errorf("%s: %v, want ErrInvalid or ErrInvalidRange", name, err)
		}
		if root.idx != before {
			t.Errorf("%s: a refused report wrote to the store", name)
		}
	}
}

// TestWaitCascade: a replicate-now is done below a child once every site its report lists has
// it among the cascades it verified.
func TestWaitCascade(t *testing.T) {
	_, hq := newTreeSite(t, "hq", "parent", []string{"en"}, "emea")
	rep := LanguageReport{Ranges: []string{"en"}, Role: "relay", Subtree: []store.Descendant{
		{Path: "emea/a", Ranges: []string{"en"}}, {Path: "emea/a/b", Ranges: []string{"en"}, Cascades: []string{"c1"}}}}
	if _, err := hq.ReportLanguages("emea", rep); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	res, err := hq.WaitCascade(ctx, "c1", []string{"emea"})
	cancel()
	if err != nil || len(res) != 2 || res[0].Done || !res[1].Done || res[1].Path != "hq/emea/a/b" || res[1].Depth != 3 {
		t.Fatalf("before a reports it: %+v %v", res, err)
	}
	done := make(chan []SiteResult)
	go func() {
		res, _ := hq.WaitCascade(context.Background(), "c1", []string{"emea"})
		done <- res
	}()
	rep.Subtree[0].Cascades = []string{"c0", "c1"}
	if _, err := hq.ReportLanguages("emea", rep); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if len(res) != 2 || !res[0].Done || !res[1].Done {
			t.Fatalf("after: %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitCascade did not wake on the child's report")
	}
}

// TestTreeView: the tree lists this site, its children and their subtrees with depth, lag in
// root versions and alerts.
func TestTreeView(t *testing.T) {
	root, hq := newTreeSite(t, "hq", "parent", []string{"en"}, "emea")
	model := &parentModel{site: root, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	u := &store.Update{UpdateContent: store.UpdateContent{ID: "u1", Language: "en"}, Feed: "f", Hash: "h1"}
	model.commit(t, &store.CatalogBatch{Updates: []*store.Update{u}})
	rep := LanguageReport{Ranges: []string{"en", "ja"}, OwnRanges: []string{"en"}, Role: "relay",
		Subtree: []store.Descendant{{Path: "emea/x", Role: "child", Ranges: []string{"ja"}, RootVersion: 0}}}
	if _, err := hq.ReportLanguages("emea", rep); err != nil {
		t.Fatal(err)
	}
	tree, err := hq.Tree()
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Sites) != 3 {
		t.Fatalf("tree: %+v", tree.Sites)
	}
	self, emea, x := tree.Sites[0], tree.Sites[1], tree.Sites[2]
	if self.Path != "hq" || self.Depth != 0 || emea.Path != "hq/emea" || emea.Depth != 1 || emea.Role != "relay" ||
		x.Path != "hq/emea/x" || x.Depth != 2 || x.Via != "emea" {
		t.Fatalf("paths and depths: %+v", tree.Sites)
	}
	if tree.RootVersion == 0 || x.LagIndex != tree.RootVersion || !slices.Equal(x.Alerts, []string{"ja"}) || len(emea.Alerts) != 0 {
		t.Fatalf("root version %d, x lag %d alerts %v, emea alerts %v", tree.RootVersion, x.LagIndex, x.Alerts, emea.Alerts)
	}
}
