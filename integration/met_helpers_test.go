package integration

// Helpers of the metrics test (metrics_test.go): a real Prometheus server scraping the sites,
// and its HTTP query API. Everything here is prefixed met*.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metTarget is one site Prometheus scrapes: its job name is the site's name; tokenFile, if
// set, holds the bearer token it scrapes with (empty: the site serves --metrics-public).
type metTarget struct {
	job       string
	p         *proc
	tokenFile string
}

// metProm is a running Prometheus server.
type metProm struct {
	url string
}

// metStartPrometheus writes a prometheus.yml with one job per target, scraped every second,
// starts Prometheus on a free port and waits until it is ready.
func metStartPrometheus(t *testing.T, prom string, targets []metTarget) *metProm {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, tg := range targets {
		u, err := url.Parse(tg.p.url)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    metrics_path: /metrics\n    static_configs:\n      - targets: [%q]\n", tg.job, u.Host)
		if tg.tokenFile != "" {
			fmt.Fprintf(&b, "    authorization:\n      credentials_file: %q\n", tg.tokenFile)
		}
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed by the context: its exit status says only that
		logFile.Close()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(logPath, 30))
		}
	})
	m := &metProm{url: "http://" + addr}
	waitFor(t, 20*time.Second, func() (bool, string) {
		st, _, err := tryDo(context.Background(), "GET", m.url+"/-/ready", "", nil)
		return err == nil && st == 200, fmt.Sprintf("prometheus at %s not ready: %d %v", addr, st, err)
	})
	return m
}

// metSample is one series of a query's answer.
type metSample struct {
	Labels map[string]string
	Value  float64
}

// query runs an instant query; an error is returned, not fatal, for waitFor loops.
func (m *metProm) query(q string) ([]metSample, error) {
	st, raw, err := tryDo(context.Background(), "GET", m.url+"/api/v1/query?query="+url.QueryEscape(q), "", nil)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("query %s: status %d, body %s: %w", q, st, raw, err)
	}
	if ans.Status != "success" || ans.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: status %q (%s), result type %q", q, ans.Status, ans.Error, ans.Data.ResultType)
	}
	out := make([]metSample, 0, len(ans.Data.Result))
	for _, r := range ans.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, r.Value, err)
		}
		out = append(out, metSample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// scalar runs a query that must answer exactly one series.
func (m *metProm) scalar(q string) (float64, error) {
	s, err := m.query(q)
	if err != nil {
		return 0, err
	}
	if len(s) != 1 {
		return 0, fmt.Errorf("query %s: %d series, want 1: %v", q, len(s), s)
	}
	return s[0].Value, nil
}

// metScrape reads a site's /metrics as a scraper does (token "" for a public endpoint).
func metScrape(t *testing.T, p *proc, token string) []byte {
	t.Helper()
	st, raw, err := tryDo(context.Background(), "GET", p.url+"/metrics", token, nil)
	if err != nil || st != 200 {
		t.Fatalf("%s: GET /metrics: %d %v %s", p.name, st, err, raw)
	}
	return raw
}

// metPromtool runs `promtool check metrics` over a site's exposition.
func metPromtool(t *testing.T, promtool, site string, exposition []byte) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(exposition))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: promtool check metrics: %v\n%s", site, err, out)
	}
}

// metSiteReport is one site of GET /v1/compliance, by path.
type metSiteReport struct {
	Path      string   `json:"path"`
	Local     bool     `json:"local"`
	Computers int64    `json:"computers"`
	Compliant int64    `json:"compliant"`
	Cells     cmpCells `json:"cells"`
}

// metCompliance is GET /v1/compliance's sites.
func metCompliance(t *testing.T, p *proc) []metSiteReport {
	t.Helper()
	var o struct {
		Sites []metSiteReport `json:"sites"`
	}
	doJSON(t, "GET", p.url+"/v1/compliance", p.token, nil, 200, &o)
	return o.Sites
}

// metChild is one child of GET /v1/children, with its link health.
type metChild struct {
	Name                string  `json:"name"`
	LagIndex            uint64  `json:"lag_index"`
	LagSeconds          float64 `json:"lag_seconds"`
	PolicyLag           uint64  `json:"policy_lag"`
	Health              string  `json:"health"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
}

func metChildren(t *testing.T, p *proc) map[string]metChild {
	t.Helper()
	var l struct {
		Children []metChild `json:"children"`
	}
	doJSON(t, "GET", p.url+"/v1/children", p.token, nil, 200, &l)
	out := map[string]metChild{}
	for _, c := range l.Children {
		out[c.Name] = c
	}
	return out
}

// metRuns is GET /v1/replication/runs of a child at the parent.
func metRuns(t *testing.T, parent *proc, child string) []cmpRun {
	t.Helper()
	var l struct {
		Runs []cmpRun `json:"runs"`
	}
	doJSON(t, "GET", parent.url+"/v1/replication/runs?limit=100000&child="+url.QueryEscape(child), parent.token, nil, 200, &l)
	return l.Runs
}

// metRunCounts counts runs per stream: each stream a run's scope names counts once.
func metRunCounts(runs []cmpRun) map[string]int {
	out := map[string]int{}
	for _, r := range runs {
		for _, s := range strings.Split(r.Scope, "+") {
			out[s]++
		}
	}
	return out
}

// metUnverified counts the runs that did not verify.
func metUnverified(runs []cmpRun) int {
	n := 0
	for _, r := range runs {
		if !r.Verified {
			n++
		}
	}
	return n
}

// metWaitValues waits until every query answers its value (Prometheus scrapes every second).
func metWaitValues(t *testing.T, m *metProm, want map[string]float64) {
	t.Helper()
	for q, v := range want {
		waitFor(t, 10*time.Second, func() (bool, string) {
			got, err := m.scalar(q)
			return err == nil && got == v, fmt.Sprintf("%s = %v (%v), the API says %v", q, got, err, v)
		})
	}
}
