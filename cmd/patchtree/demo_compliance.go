package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"patchtree/replication/hierarchy"
)

// demoComputers is how many computers the demo simulates at each child.
const demoComputers = 25

// demoSeed fixes the simulated scans: the same catalog gives the same states.
const demoSeed = 2026

// demoCompliance feeds simulated scans at every child, fires each child's compliance summary
// rule at once, waits for the parent to hold every summary, and prints the rolled-up table.
func demoCompliance(parent *demoSite, children []*demoSite) error {
	fmt.Printf("patchtree demo: simulated scans at every child (%d computers each, every update of the child's catalog)\n", demoComputers)
	seqs := map[string]uint64{}
	for i, s := range children {
		admin := &apiClient{base: s.url, token: s.token, http: &http.Client{Timeout: time.Minute}}
		updates, bulletins, err := demoChildCatalog(admin)
		if err != nil {
			return fmt.Errorf("catalog of %s: %w", s.name, err)
		}
		var tok struct {
			Token string `json:"token"`
		}
		if _, err := admin.do(http.MethodPost, "/v1/tokens", map[string]string{"role": "agent", "name": "demo agents"}, &tok); err != nil {
			return fmt.Errorf("agent token at %s: %w", s.name, err)
		}
		body, err := demoScans(s.name, updates, uint64(i+1), time.Now())
		if err != nil {
			return err
		}
		agent := &apiClient{base: s.url, token: tok.Token, http: &http.Client{Timeout: time.Minute}}
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/scans?format=ndjson", bytes.NewReader(body))
		if err != nil {
			return err
		}
		var res scanResult
		if _, err := agent.send(req, "application/x-ndjson", &res); err != nil {
			return fmt.Errorf("scans at %s: %w", s.name, err)
		}
		fmt.Printf("  %-5s %d scans of %d updates in %d bulletins: %d stored, %d results, %d rejected\n",
			s.name, res.Received, len(updates), bulletins, res.Stored, res.ResultsStored, res.Rejected)
		if res.Rejected > 0 {
			return fmt.Errorf("%s rejected %d simulated results: %s", s.name, res.Rejected, res.Errors[0].Error)
		}
		var now struct {
			Summary hierarchy.SummaryResult `json:"summary"`
		}
		if _, err := admin.do(http.MethodPost, "/v1/replication/now", map[string]string{"scope": hierarchy.ScopeCompliance}, &now); err != nil {
			return fmt.Errorf("compliance summary of %s: %w", s.name, err)
		}
		sum := &now.Summary
		fmt.Printf("  %-5s %s\n", s.name, summarySent(sum))
		seqs[s.name] = sum.Seq
	}

	parentAdmin := &apiClient{base: parent.url, token: parent.token, http: &http.Client{Timeout: 10 * time.Second}}
	o, err := demoWaitCompliance(parentAdmin, seqs)
	if err != nil {
		return err
	}
	fmt.Printf("\npatchtree demo: compliance rolled up at %s (patchtree compliance)\n", parent.name)
	return printSiteTable(os.Stdout, o, true)
}

// demoWaitCompliance waits until the parent's report lists every child with at least the
// summary sequence it sent, and returns that report.
func demoWaitCompliance(c *apiClient, seqs map[string]uint64) (*complianceOverview, error) {
	deadline := time.Now().Add(demoStartTimeout)
	for {
		var o complianceOverview
		if _, err := c.do(http.MethodGet, "/v1/compliance", nil, &o); err != nil {
			return nil, err
		}
		have := 0
		for _, s := range o.Sites {
			if seq, ok := seqs[s.Site]; ok && !s.Local && s.Seq >= seq {
				have++
			}
		}
		if have == len(seqs) {
			return &o, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the parent's compliance report lacks the children's summaries after %s", demoStartTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// demoChildCatalog lists the update ids of a site's catalog (sorted) and counts its bulletins.
func demoChildCatalog(c *apiClient) ([]string, int, error) {
	var ids []string
	for page := 1; ; page++ {
		var list struct {
			Total     int `json:"total"`
			Bulletins []struct {
				ID      string `json:"id"`
				Updates int    `json:"updates"`
			} `json:"bulletins"`
		}
		q := url.Values{"page": {fmt.Sprint(page)}, "per_page": {"1000"}}
		if _, err := c.do(http.MethodGet, "/v1/catalog/bulletins?"+q.Encode(), nil, &list); err != nil {
			return nil, 0, err
		}
		for _, b := range list.Bulletins {
			if b.Updates > 0 {
				ids = append(ids, b.ID)
			}
		}
		if len(list.Bulletins) == 0 || page*1000 >= list.Total {
			break
		}
	}
	seen := map[string]bool{}
	var updates []string
	for _, id := range ids {
		var b struct {
			Updates []struct {
				ID string `json:"id"`
			} `json:"updates"`
		}
		if _, err := c.do(http.MethodGet, "/v1/catalog/bulletins/"+url.PathEscape(id), nil, &b); err != nil {
			return nil, 0, err
		}
		for _, u := range b.Updates {
			if !seen[u.ID] {
				seen[u.ID] = true
				updates = append(updates, u.ID)
			}
		}
	}
	slices.Sort(updates)
	return updates, len(ids), nil
}

// demoScans writes one simulated scan per computer as NDJSON. Each computer reports every update:
// about half the computers are up to date (every update installed or not required), the others
// need about a quarter of their applicable updates. The seed fixes the states.
func demoScans(site string, updates []string, seed uint64, now time.Time) ([]byte, error) {
	rng := rand.New(rand.NewPCG(demoSeed, seed))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range demoComputers {
		behind := rng.IntN(100) < 50
		results := make(map[string]string, len(updates))
		for _, u := range updates {
			r := rng.IntN(100)
			switch {
			case r < 20:
				results[u] = "not_required"
			case behind && r < 40:
				results[u] = "required"
			default:
				results[u] = "installed"
			}
		}
		scan := struct {
			ComputerID string            `json:"computer_id"`
			ScannedAt  string            `json:"scanned_at"`
			Results    map[string]string `json:"results"`
		}{fmt.Sprintf("%s-pc-%03d", site, i+1), now.Add(-time.Duration(i) * time.Minute).UTC().Format(time.RFC3339), results}
		if err := enc.Encode(&scan); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
