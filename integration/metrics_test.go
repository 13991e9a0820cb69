package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetrics: a real Prometheus server scrapes a parent and two children (the parent and one
// child with --metrics-public, the other with an auditor's bearer token). Through Prometheus's
// query API it finds, for each site, the Raft applied index, the compliance gauges, and at the
// parent each link's lag, run counts and health, equal to what the sites' own API reports; and
// promtool check metrics passes on every site's exposition.
func TestMetrics(t *testing.T) {
	t.Parallel()
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not on PATH (the Debian prometheus package; .ci/run installs it)")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (the Debian prometheus package; .ci/run installs it)")
	}
	requireBinary(t)
	start := time.Now()
	dir := t.TempDir()

	feed := catGenerate(t, dir, "gen.json", "--bulletins", "12", "--languages", "16", "--seed", "41")
	// A link is degraded after its first failure, so that one tampered replica shows it.
	parent := startSite(t, siteOpts{Name: "hq", Languages: []string{"*"},
		Extra: []string{"--metrics-public", "--link-degraded-after", "1", "--link-failed-after", "5"}})
	doJSON(t, "PUT", parent.url+"/v1/replication/rules", parent.token, map[string]any{"catalog": "12h"}, 200, nil)
	north := hierStartChild(t, parent, "north", []string{"de"})
	south := hierStartChild(t, parent, "south", []string{"en"}, "--metrics-public", "--test-hooks")
	hierImport(t, parent, map[string]any{"source": feed})
	hierReplicateNow(t, parent, "", "")

	// Who may scrape: without --metrics-public a token of admin or auditor, nobody else.
	auditor := createToken(t, north.url, north.token, "auditor", "scraper").Token
	agent := createToken(t, north.url, north.token, "agent", "agent-north").Token
	for _, c := range []struct {
		who, token string
		want       int
	}{{"no token", "", 401}, {"agent", agent, 403}, {"auditor", auditor, 200}} {
		if st, _, raw := do(t, "GET", north.url+"/metrics", c.token, nil); st != c.want {
			t.Errorf("north: GET /metrics as %s: %d %s, want %d", c.who, st, raw, c.want)
		}
	}
	tokenFile := filepath.Join(dir, "north.token")
	if err := os.WriteFile(tokenFile, []byte(auditor), 0o600); err != nil {
		t.Fatal(err)
	}

	// One computer per child, then each child's summary goes up.
	for _, k := range []*proc{north, south} {
		ids := cmpReadCatalog(t, k).updateIDs()
		if len(ids) < 2 {
			t.Fatalf("%s holds %d updates, want at least 2", k.name, len(ids))
		}
		scan := map[string]any{"computer_id": "pc-" + k.name, "scanned_at": time.Now().UTC().Format(time.RFC3339),
			"results": map[string]string{ids[0]: "installed", ids[1]: "required"}}
		doJSON(t, "POST", k.url+"/v1/scans", k.token, scan, 200, nil)
		cmpComplianceNow(t, k)
	}

	m := metStartPrometheus(t, prom, []metTarget{{job: "hq", p: parent}, {job: "north", p: north, tokenFile: tokenFile}, {job: "south", p: south}})
	waitFor(t, 20*time.Second, func() (bool, string) {
		up, err := m.query(`up == 1`)
		return err == nil && len(up) == 3, fmt.Sprintf("targets up: %v %v", up, err)
	})
	t.Logf("setup: 3 sites, catalog replicated, Prometheus scraping, in %v", time.Since(start).Round(time.Millisecond))

	sites := []*proc{parent, north, south}
	t.Run("RaftAppliedIndex", func(t *testing.T) {
		for _, p := range sites {
			waitFor(t, 15*time.Second, func() (bool, string) {
				var st struct {
					Raft struct {
						FSMAppliedIndex uint64 `json:"fsm_applied_index"`
					} `json:"raft"`
				}
				doJSON(t, "GET", p.url+"/v1/status", p.token, nil, 200, &st)
				got, err := m.scalar(fmt.Sprintf(`patchtree_raft_fsm_applied_index{job=%q}`, p.name))
				return err == nil && got == float64(st.Raft.FSMAppliedIndex),
					fmt.Sprintf("%s: Prometheus has fsm applied index %v (%v), GET /v1/status %d", p.name, got, err, st.Raft.FSMAppliedIndex)
			})
		}
	})
	t.Run("Compliance", func(t *testing.T) {
		for _, p := range sites {
			reports := metCompliance(t, p)
			if p == parent && len(reports) != 2 {
				t.Fatalf("hq: GET /v1/compliance reports %d sites, want its 2 children (hq has no computer): %+v", len(reports), reports)
			}
			for _, r := range reports {
				if !r.Local && r.Computers != 1 {
					t.Errorf("%s: GET /v1/compliance: site %s has %d computers, want the 1 scanned", p.name, r.Path, r.Computers)
				}
				want := map[string]float64{
					"patchtree_compliance_computers":                   float64(r.Computers),
					"patchtree_compliance_compliant_computers":         float64(r.Compliant),
					`patchtree_compliance_cells{state="installed"}`:    float64(r.Cells.Installed),
					`patchtree_compliance_cells{state="required"}`:     float64(r.Cells.Required),
					`patchtree_compliance_cells{state="not_required"}`: float64(r.Cells.NotRequired),
					`patchtree_compliance_cells{state="unknown"}`:      float64(r.Cells.Unknown),
				}
				for family, v := range want {
					q := metSelect(family, fmt.Sprintf(`job=%q,site=%q`, p.name, r.Path))
					waitFor(t, 10*time.Second, func() (bool, string) {
						got, err := m.scalar(q)
						return err == nil && got == v, fmt.Sprintf("%s: %s = %v (%v), GET /v1/compliance says %v", p.name, q, got, err, v)
					})
				}
			}
		}
	})
	t.Run("Links", func(t *testing.T) {
		for name, c := range metChildren(t, parent) {
			if c.Health != "active" || c.ConsecutiveFailures != 0 {
				t.Errorf("hq: GET /v1/children: %s has health %q after %d failures, want active after 0", name, c.Health, c.ConsecutiveFailures)
			}
			checks := map[string]float64{
				fmt.Sprintf(`patchtree_link_lag_index{job="hq",child=%q,stream="catalog"}`, name):   float64(c.LagIndex),
				fmt.Sprintf(`patchtree_link_lag_index{job="hq",child=%q,stream="policies"}`, name):  float64(c.PolicyLag),
				fmt.Sprintf(`patchtree_link_lag_seconds{job="hq",child=%q,stream="catalog"}`, name): c.LagSeconds,
				fmt.Sprintf(`patchtree_link_health{job="hq",child=%q,health="active"}`, name):       1,
				fmt.Sprintf(`patchtree_link_consecutive_failures{job="hq",child=%q}`, name):         0,
			}
			for stream, n := range metRunCounts(metRuns(t, parent, name)) {
				checks[fmt.Sprintf(`sum(patchtree_link_runs{job="hq",child=%q,stream=%q})`, name, stream)] = float64(n)
			}
			if checks[fmt.Sprintf(`sum(patchtree_link_runs{job="hq",child=%q,stream="catalog"})`, name)] == 0 {
				t.Errorf("hq: GET /v1/replication/runs lists no catalog run of %s", name)
			}
			metWaitValues(t, m, checks)
		}
		for _, k := range []*proc{north, south} {
			q := fmt.Sprintf(`patchtree_parent_link_health{job=%q,health="active"}`, k.name)
			waitFor(t, 10*time.Second, func() (bool, string) {
				got, err := m.scalar(q)
				return err == nil && got == 1, fmt.Sprintf("%s = %v (%v), want 1", q, got, err)
			})
		}
	})
	t.Run("Health", func(t *testing.T) {
		// A tampered replica: the next run does not verify (degraded after 1), the repair run
		// that follows by itself does (active again); each change logged once.
		fltSetDisabled(t, south, fltFirstBulletin(t, south), true)
		if verified, run, _ := fltReplicateWait(t, parent, "south", "differential"); verified {
			t.Fatalf("the run after tampering with south's replica verified: %s", run)
		}
		waitFor(t, 30*time.Second, func() (bool, string) {
			c := metChildren(t, parent)["south"]
			back := fltLogContaining(parent, "link health changed", "link=south", "to=active")
			return c.Health == "active" && len(back) == 1, fmt.Sprintf("south: health %q after %d failures, %d changes back to active logged", c.Health, c.ConsecutiveFailures, len(back))
		})
		if down := fltLogContaining(parent, "link health changed", "link=south", "from=active", "to=degraded"); len(down) != 1 {
			t.Errorf("hq logged %d changes of south's link to degraded, want 1: %q", len(down), down)
		}
		runs := metRuns(t, parent, "south")
		unverified := metUnverified(runs)
		if unverified == 0 {
			t.Errorf("hq: GET /v1/replication/runs lists no unverified run of south")
		}
		checks := map[string]float64{
			`patchtree_link_verification_failures{job="hq",child="south"}`:  float64(unverified),
			`patchtree_link_health{job="hq",child="south",health="active"}`: 1,
		}
		for stream, n := range metRunCounts(runs) {
			checks[fmt.Sprintf(`sum(patchtree_link_runs{job="hq",child="south",stream=%q})`, stream)] = float64(n)
		}
		metWaitValues(t, m, checks)
	})
	t.Run("Promtool", func(t *testing.T) {
		for _, s := range []struct {
			p     *proc
			token string
		}{{parent, ""}, {north, auditor}, {south, ""}} {
			exposition := metScrape(t, s.p, s.token)
			for _, family := range []string{"patchtree_build_info", "patchtree_http_requests_total", "patchtree_raft_apply_duration_seconds_bucket", "patchtree_store_rows"} {
				if !strings.Contains(string(exposition), family) {
					t.Errorf("%s: GET /metrics has no %s", s.p.name, family)
				}
			}
			metPromtool(t, promtool, s.p.name, exposition)
		}
	})
	t.Logf("TestMetrics took %v", time.Since(start).Round(time.Millisecond))
}

// metSelect adds label matchers to a family that may already carry some.
func metSelect(family, matchers string) string {
	if i := strings.Index(family, "{"); i >= 0 {
		return family[:i+1] + matchers + "," + family[i+1:]
	}
	return family + "{" + matchers + "}"
}
