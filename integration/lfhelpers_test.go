package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Helpers of the link failover tests (linkfailover_test.go), prefixed lf*.

// lfLink is the "parent" section of a child server's GET /v1/status, with the link's addresses.
type lfLink struct {
	hierParentLink
	Addresses   []string  `json:"addresses"`
	Problem     string    `json:"problem"`
	LastContact time.Time `json:"last_contact"`
}

// lfStatus is what the link tests read of GET /v1/status.
type lfStatus struct {
	statusResp
	Parent *lfLink `json:"parent"`
}

// lfFeed is a small generated feed, parsed and written to a file the parent may import.
func lfFeed(t *testing.T) (*hierFeed, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "feed.json")
	feed := hierParseFeed(t, uffFeed(t, dir))
	feed.write(t, path)
	return feed, path
}

// lfTryStatus reads a server's status without failing the test (the server may be down).
func lfTryStatus(p *proc) (*lfStatus, error) {
	st, raw, err := tryDo(context.Background(), "GET", p.url+"/v1/status", p.token, nil)
	if err != nil {
		return nil, err
	}
	if st != 200 {
		return nil, fmt.Errorf("GET /v1/status on %s: %d %s", p.name, st, raw)
	}
	var s lfStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("GET /v1/status on %s: %w: %s", p.name, err, raw)
	}
	return &s, nil
}

// lfCatalogVersion is a site's catalog version (GET /v1/catalog through any live server).
func lfCatalogVersion(t *testing.T, nodes []*proc) uint64 {
	t.Helper()
	var v uint64
	waitFor(t, 30*time.Second, func() (bool, string) {
		var why []string
		for _, n := range nodes {
			if n.exited() {
				continue
			}
			var info catInfo
			st, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/catalog", n.token, nil)
			if err == nil && st == 200 && json.Unmarshal(raw, &info) == nil {
				v = info.Version
				return true, ""
			}
			why = append(why, fmt.Sprintf("%s: %d %v %s", n.name, st, err, raw))
		}
		return false, "no server answered GET /v1/catalog: " + strings.Join(why, "; ")
	})
	return v
}

// lfWaitHolds waits until every live server of the child site reports the link running with
// the catalog at version (its cursor) and the last run verified, and returns how long it took.
func lfWaitHolds(t *testing.T, kids []*proc, version uint64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, func() (bool, string) {
		for _, k := range kids {
			if k.exited() {
				continue
			}
			s, err := lfTryStatus(k)
			if err != nil {
				return false, err.Error()
			}
			if s.Parent == nil || s.Parent.State != "running" || s.Parent.Cursor != version || !s.Parent.LastVerified || s.Parent.LastRun == "" {
				return false, fmt.Sprintf("%s (%s): parent link %+v, want running at cursor %d with the last run verified", k.name, s.Raft.State, s.Parent, version)
			}
		}
		return true, ""
	})
	return time.Since(start)
}

// lfLeader is the live server that leads the site, once the live servers agree.
func lfLeader(t *testing.T, nodes []*proc) *proc {
	t.Helper()
	var live []*proc
	for _, n := range nodes {
		if !n.exited() {
			live = append(live, n)
		}
	}
	return waitAgreement(t, live, nodes[0].token, len(nodes))
}

// lfRuns is every run the parent site records for a child (all scopes), through any live server.
func lfRuns(t *testing.T, parents []*proc, child string) []polRun {
	t.Helper()
	var runs []polRun
	waitFor(t, 30*time.Second, func() (bool, string) {
		var why []string
		for _, p := range parents {
			if p.exited() {
				continue
			}
			var l struct {
				Runs []polRun `json:"runs"`
			}
			st, raw, err := tryDo(context.Background(), "GET", p.url+"/v1/replication/runs?limit=100000&child="+url.QueryEscape(child), p.token, nil)
			if err == nil && st == 200 && json.Unmarshal(raw, &l) == nil {
				runs = l.Runs
				return true, ""
			}
			why = append(why, fmt.Sprintf("%s: %d %v %s", p.name, st, err, raw))
		}
		return false, "no parent server listed the runs: " + strings.Join(why, "; ")
	})
	return runs
}

// lfAppliedRuns are the ids of the runs a child server logged as applied.
func lfAppliedRuns(kids ...*proc) []string {
	var out []string
	for _, k := range kids {
		for _, e := range fltLog(k, "applied replication run") {
			out = append(out, e["run"])
		}
	}
	return out
}
