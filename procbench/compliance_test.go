package procbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"patchtree/replication/compliance"
	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// BenchmarkComplianceRollup200 reads the rolled-up compliance reports of a real `patchtree
// serve` parent while 200 children's summaries arrive. The children are light clients of the
// protocol: each enrols, joins, reports its languages and sends a summary of 5,000 computers
// over (up to) 1,000 bulletins of the Mozilla catalog every few seconds, numbers that change
// every time (so each is stored: a Raft entry at the parent). One reader meanwhile asks, in
// turn, for the full rollup (GET /v1/compliance), the per-bulletin report across every site
// (GET /v1/compliance/bulletins), one bulletin across sites, and GET /v1/health as the baseline.
//
// PATCHTREE_BENCH_SITES (default 200), PATCHTREE_BENCH_COMPUTERS (default 5,000) and
// PATCHTREE_BENCH_SECONDS (how long summaries arrive, default 30) change the scale.
func BenchmarkComplianceRollup200(b *testing.B) {
	feed := sharedData(b, "catalogs/mozilla-2005-2019.catalog.json")
	sites, computers, seconds := envInt("PATCHTREE_BENCH_SITES", 200), envInt("PATCHTREE_BENCH_COMPUTERS", 5000), envInt("PATCHTREE_BENCH_SECONDS", 30)
	srv := StartServer(b, ServerOpts{Name: "hq", Languages: []string{"*"},
		Extra: []string{"--import-allow", filepath.Dir(feed), "--join-rate", "0"}})
	srv.Import(b, map[string]any{"source": feed}, 5*time.Minute)
	bulletins := catalogBulletins(b, srv, 1000)
	children := make([]*summaryChild, sites)
	for i := range children {
		children[i] = enrolSummaryChild(b, srv, fmt.Sprintf("site%03d", i))
		// Every site has a summary at the parent before the reports are measured.
		if err := children[i].send(context.Background(), srv, bulletins, computers); err != nil {
			b.Fatalf("first summary of %s: %v", children[i].name, err)
		}
	}
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
		var sent, refused atomic.Int64
		var wg sync.WaitGroup
		// Each child sends a summary every `every`, the children spread over it: 200 children
		// every 5 s is 40 summaries a second at the parent.
		every := 5 * time.Second
		for i, c := range children {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * every / time.Duration(len(children)))
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					if err := c.send(ctx, srv, bulletins, computers); err != nil {
						if ctx.Err() != nil {
							return
						}
						refused.Add(1)
						b.Logf("child %s: %v", c.name, err)
					} else {
						sent.Add(1)
					}
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			}()
		}
		bid := url.QueryEscape(bulletins[0])
		queries := []string{"/v1/health", "/v1/compliance", "/v1/compliance/bulletins", "/v1/compliance/bulletins?bulletin=" + bid}
		lat := make([][]float64, len(queries))
		start := srv.Stats(b)
		for round := 0; ctx.Err() == nil; round++ {
			for k := range queries {
				q := (round + k) % len(queries)
				t0 := time.Now()
				if _, err := srv.Do(context.Background(), "GET", queries[q], nil, nil); err != nil {
					b.Fatalf("GET %s: %v", queries[q], err)
				}
				lat[q] = append(lat[q], float64(time.Since(t0).Microseconds())/1000)
			}
			time.Sleep(20 * time.Millisecond)
		}
		wg.Wait()
		cancel()
		end := srv.Stats(b)
		if refused.Load() > 0 {
			b.Fatalf("%d of %d summaries refused", refused.Load(), sent.Load()+refused.Load())
		}
		var o compliance.Overview
		if _, err := srv.Do(context.Background(), "GET", "/v1/compliance", nil, &o); err != nil {
			b.Fatal(err)
		}
		if o.Totals.Sites != sites || o.Totals.Computers != int64(sites*computers) {
			b.Fatalf("rollup counts %d sites and %d computers, want %d and %d", o.Totals.Sites, o.Totals.Computers, sites, sites*computers)
		}
		names := []string{"health", "rollup", "bulletins", "bulletin"}
		for q := range queries {
			slices.Sort(lat[q])
			b.ReportMetric(rollupPct(lat[q], 50), names[q]+"-p50-ms")
			b.ReportMetric(rollupPct(lat[q], 99), names[q]+"-p99-ms")
			b.Logf("%-9s %5d samples  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms", names[q], len(lat[q]), rollupPct(lat[q], 50), rollupPct(lat[q], 99), lat[q][len(lat[q])-1])
		}
		b.ReportMetric(float64(sent.Load())/float64(seconds), "summaries/s")
		b.ReportMetric(MiB(end.PeakRSS), "peak-rss-MiB")
		b.Logf("%d sites × %d computers, %d bulletins each: %d summaries stored in %d s (%.1f/s); server CPU %v, peak RSS %.0f MiB",
			sites, computers, len(bulletins), sent.Load(), seconds, float64(sent.Load())/float64(seconds), end.CPU-start.CPU, MiB(end.PeakRSS))
	}
}

// summaryChild is a light child: its node credential and the sequence of its last summary.
type summaryChild struct {
	name  string
	token string
	seq   uint64
}

// enrolSummaryChild enrols a child at srv, joins it and reports its ranges ("*").
func enrolSummaryChild(tb testing.TB, srv *Server, name string) *summaryChild {
	tb.Helper()
	ctx := context.Background()
	var enrolled struct {
		JoinToken string `json:"join_token"`
	}
	if _, err := srv.Do(ctx, "POST", "/v1/children", map[string]string{"name": name}, &enrolled); err != nil {
		tb.Fatal(err)
	}
	var joined hierarchy.JoinResponse
	if _, err := srv.DoToken(ctx, "", "POST", hierarchy.ProtocolPath+"/join", hierarchy.JoinRequest{Name: name, JoinToken: enrolled.JoinToken}, &joined); err != nil {
		tb.Fatal(err)
	}
	c := &summaryChild{name: name, token: joined.NodeToken}
	if _, err := srv.DoToken(ctx, c.token, "PUT", hierarchy.ProtocolPath+"/languages", hierarchy.LanguageReport{Child: name, Ranges: []string{"*"}}, nil); err != nil {
		tb.Fatal(err)
	}
	return c
}

// send posts the child's next summary: computers computers, each counted for every bulletin
// (70 % installed, 10 % required, 15 % not required, the rest unknown), over one update per
// bulletin; the compliant count moves with the sequence, so every summary is new.
func (c *summaryChild) send(ctx context.Context, srv *Server, bulletins []string, computers int) error {
	n := int64(computers)
	c.seq++
	row := [4]int64{}
	row[store.StateInstalled], row[store.StateRequired], row[store.StateNotRequired] = n*7/10, n/10, n*15/100
	row[store.StateUnknown] = n - row[0] - row[1] - row[2]
	sum := compliance.Summary{Site: c.name, AsOf: time.Now().UTC(), Computers: n,
		Compliant: n/2 - int64(c.seq%100), ViewUpdates: int64(len(bulletins))}
	for i := range sum.Cells {
		sum.Cells[i] = row[i] * int64(len(bulletins))
	}
	var sev [4]int64
	for _, id := range bulletins {
		sum.Bulletins = append(sum.Bulletins, compliance.BulletinCounts{ID: id, C: row})
		for i := range sev {
			sev[i] += row[i]
		}
	}
	sum.Severities = []compliance.SeverityCounts{{Severity: "", C: sev}}
	body, err := json.Marshal(&sum)
	if err != nil {
		return err
	}
	rep := hierarchy.SummaryReport{Child: c.name, Seq: c.seq, Digest: sum.Digest(), Trigger: "schedule", Interval: "5s", Summary: body}
	var ans hierarchy.SummaryAnswer
	if _, err := srv.DoToken(ctx, c.token, "POST", hierarchy.ProtocolPath+"/compliance", rep, &ans); err != nil {
		return err
	}
	if !ans.Accepted {
		return fmt.Errorf("summary %d not stored: %s", c.seq, ans.Reason)
	}
	return nil
}

// catalogBulletins lists up to max bulletin ids of srv's catalog.
func catalogBulletins(tb testing.TB, srv *Server, max int) []string {
	tb.Helper()
	var page struct {
		Bulletins []struct {
			ID string `json:"id"`
		} `json:"bulletins"`
	}
	if _, err := srv.Do(context.Background(), "GET", "/v1/catalog/bulletins?per_page="+strconv.Itoa(max), nil, &page); err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, b := range page.Bulletins {
		ids = append(ids, b.ID)
	}
	if len(ids) == 0 {
		tb.Fatal("the catalog has no bulletins")
	}
	return ids
}

// rollupPct is the p-th percentile of sorted values.
func rollupPct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[i]
}
