package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The parent link as site state: it runs on whichever server of a child site leads, and goes
// through whichever server of the parent site answers. Real processes, SIGKILL, a small
// generated feed (12 bulletins in 6 languages).

// TestLinkFailoverChildLeaderKilled: a 3-server child site where only kid-a was started with
// --parent and --join-token (kid-b and kid-c joined the site with --join-site only) keeps
// replicating while its leader is SIGKILLed 5 times (20 with PATCHTREE_SOAK=1): after each
// kill the parent's catalog changes, and every live server of the child must report the link
// running at the new version with the last run verified (the followers from the replicated
// status).
func TestLinkFailoverChildLeaderKilled(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	feed, feedPath := lfFeed(t)
	parent := startSite(t, siteOpts{Name: "lf-hq", Languages: []string{"*"}})
	doJSON(t, "PUT", parent.url+"/v1/replication/rules", parent.token, map[string]any{"catalog": "continuous"}, 200, nil)
	hierImport(t, parent, map[string]any{"source": feedPath})
	join := hierEnrol(t, parent, "kid")
	kids := uffSite3(t, "kid", "child", uffRanges, nil, []string{"--parent", parent.url, "--join-token", join})
	version := lfCatalogVersion(t, []*proc{parent})
	d := lfWaitHolds(t, kids, version, 60*time.Second)
	t.Logf("setup in %v: the child site of 3 holds catalog version %d (%v after its servers agreed)",
		time.Since(start).Round(time.Millisecond), version, d.Round(time.Millisecond))

	kills := 5
	if soak() {
		kills = 20
	}
	led := map[string]int{}
	var took []time.Duration
	for round := 1; round <= kills; round++ {
		leader := lfLeader(t, kids)
		leader.kill9(t)
		killed := time.Now()
		next := hierModifyFeed(t, feed, uint64(round), 0.05, 1, 1, uffRanges)
		next.write(t, feedPath)
		hierImport(t, parent, map[string]any{"source": feedPath})
		feed = next
		version = lfCatalogVersion(t, []*proc{parent})
		lfWaitHolds(t, kids, version, 60*time.Second)
		took = append(took, time.Since(killed))
		now := lfLeader(t, kids)
		led[now.name]++
		s, err := lfTryStatus(now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.LeaderLoops, "hierarchy-child") {
			t.Errorf("round %d: new leader %s runs leader loops %v, want hierarchy-child among them", round, now.name, s.LeaderLoops)
		}
		t.Logf("round %d: SIGKILL of leader %s; %s leads and every live server reports catalog version %d verified, %v after the kill",
			round, leader.name, now.name, version, took[len(took)-1].Round(time.Millisecond))
		leader.restart(t)
	}
	if led["kid-b"]+led["kid-c"] == 0 {
		t.Errorf("the link never ran on a server started without --parent (leaders after the kills: %v)", led)
	}
	lfWaitHolds(t, kids, version, 30*time.Second) // the restarted server reports it too
	hierCheckView(t, kids[0], feed.view(uffRanges), 6)
	for _, r := range lfRuns(t, []*proc{parent}, "kid") {
		if !r.Verified {
			t.Errorf("run not verified: %v", r)
		}
	}
	slices.Sort(took)
	t.Logf("%d leader kills: from each kill to the new version held and verified on every live server: median %v, max %v; leaders %v; %v in all",
		kills, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), led, time.Since(start).Round(time.Millisecond))
}

// TestLinkFailoverParentSite: a child configured with one server of a 3-server parent site
// (its leader) learns the other two. 200 policy writes from four writers, spread over about
// two seconds while the policies replicate continuously, produce no run that fails
// verification. Restarted to hold each acknowledgement back (--test-ack-delay), the child
// acknowledges a run while the parent's leader is SIGKILLed: the next leader records it from
// the run's ticket, a replicate-now --wait asked of a follower sees it done, and every run the
// child applied is recorded. Then the server the child was
// configured with is gone, and the child carries on through another.
func TestLinkFailoverParentSite(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	feed, feedPath := lfFeed(t)
	hq := uffSite3(t, "hq", "parent", []string{"*"}, nil, nil)
	leader := lfLeader(t, hq)
	hierImport(t, leader, map[string]any{"source": feedPath})
	join := hierEnrol(t, leader, "emea")
	configured := leader
	child := startSite(t, siteOpts{Name: "emea", Role: "child", Languages: uffRanges,
		Extra: []string{"--parent", configured.url, "--join-token", join}})
	version := lfCatalogVersion(t, hq)
	waitFor(t, 60*time.Second, func() (bool, string) {
		s, err := lfTryStatus(child)
		if err != nil {
			return false, err.Error()
		}
		if p := s.Parent; p == nil || p.State != "running" || len(p.Addresses) != 3 || p.Cursor != version || !p.LastVerified {
			return false, fmt.Sprintf("child's link %+v: want running with the 3 addresses of the parent site, at cursor %d, verified", s.Parent, version)
		}
		return true, ""
	})
	t.Logf("setup in %v: child configured with %s, learned the parent site's 3 addresses, holds version %d",
		time.Since(start).Round(time.Millisecond), configured.name, version)

	// 1. Policy writes while the policies replicate (the policies rule is continuous).
	phase := time.Now()
	var ids []string
	for _, b := range feed.B {
		ids = append(ids, b.ID)
	}
	const writers, perWriter = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for w := range writers {
		wg.Go(func() {
			var mine []string
			for i := range perWriter {
				time.Sleep(20 * time.Millisecond) // spread the writes over the runs
				via := hq[(w+i)%len(hq)]
				var st int
				var raw []byte
				var err error
				var p polPolicy
				if i%5 < 3 || len(mine) == 0 {
					st, raw, err = tryDo(t.Context(), "POST", via.url+"/v1/policies", via.token, map[string]any{
						"name": fmt.Sprintf("w%d-%d", w, i), "folder": fmt.Sprintf("f%d", i%3), "bulletins": []string{ids[(w*perWriter+i)%len(ids)]}})
					if err == nil && st == 201 && json.Unmarshal(raw, &p) == nil && p.ID != "" {
						mine = append(mine, p.ID)
						continue
					}
				} else {
					st, raw, err = tryDo(t.Context(), "PATCH", via.url+"/v1/policies/"+mine[i%len(mine)], via.token, map[string]any{"enabled": i%2 == 0})
					if err == nil && st == 200 {
						continue
					}
				}
				mu.Lock()
				problems = append(problems, fmt.Sprintf("writer %d write %d through %s: %d %v %s", w, i, via.name, st, err, raw))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, p := range problems {
		t.Errorf("policy write failed: %s", p)
	}
	writes := time.Since(phase)
	leader = lfLeader(t, hq)
	waitFor(t, 60*time.Second, func() (bool, string) { return polCheckChild(t, leader, child, uffRanges) })
	policyRuns, policiesSent, during, failed := 0, 0, 0, 0
	for _, r := range lfRuns(t, hq, "emea") {
		if r.Policies == nil {
			continue
		}
		policyRuns++
		policiesSent += r.Policies.Records
		if r.StartedAt.After(phase) && r.StartedAt.Before(phase.Add(writes)) {
			during++
		}
		if !r.Verified || !r.Policies.Verified || r.Policies.Trigger == "repair" || strings.Contains(r.Error, "verification failed") {
			failed++
			t.Errorf("a policy run under concurrent writes did not verify: %v", r)
		}
	}
	t.Logf("%d policy writes by %d writers in %v; the child holds every policy %v after the writes began; %d policy runs (%d started during the writes), %d policies sent, %d failed verification or repaired",
		writers*perWriter, writers, writes.Round(time.Millisecond), time.Since(phase).Round(time.Millisecond), policyRuns, during, policiesSent, failed)
	if during < 3 {
		t.Errorf("only %d policy runs started during the writes: the writes did not race the runs", during)
	}

	// The child holds each acknowledgement back from now on, long enough to kill the parent's
	// leader in between.
	child.args = append(child.args, "--test-hooks", "--test-ack-delay", "1s")
	child.stop(t)
	child.restart(t)

	// 2. The parent's leader is killed while the child holds an acknowledgement back; a
	// replicate-now --wait asked of a follower sees the run done.
	survivors := uffOthers(hq, leader)
	held := len(fltLog(child, "holding the acknowledgement back (test hook)"))
	waited := make(chan string, 1)
	var answer hierNowResp
	go func() {
		buf := hierJSON(map[string]any{"child": "emea", "scope": "catalog", "mode": "complete", "wait": true, "timeout": "90s"})
		req, _ := http.NewRequest("POST", survivors[0].url+"/v1/replication/now", bytes.NewReader(buf))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+survivors[0].token)
		resp, err := hierLongClient.Do(req)
		if err != nil {
			waited <- err.Error()
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || json.Unmarshal(raw, &answer) != nil {
			waited <- fmt.Sprintf("status %d, %v: %s", resp.StatusCode, err, raw)
			return
		}
		waited <- ""
	}()
	var run string
	waitFor(t, 30*time.Second, func() (bool, string) {
		if e := fltLog(child, "holding the acknowledgement back (test hook)"); len(e) > held {
			run = e[len(e)-1]["run"]
			return true, ""
		}
		return false, "the child has not applied the replicate-now run yet"
	})
	leader.kill9(t)
	killed := time.Now()
	waitFor(t, 60*time.Second, func() (bool, string) {
		for _, r := range lfRuns(t, survivors, "emea") {
			if r.ID == run {
				return r.Verified, fmt.Sprintf("run %s recorded: %v", run, r)
			}
		}
		return false, fmt.Sprintf("run %s, acknowledged across the SIGKILL of the parent's leader %s, is not recorded yet", run, leader.name)
	})
	t.Logf("run %s: acknowledgement sent after the SIGKILL of the parent's leader %s, recorded and verified %v after the kill",
		run, leader.name, time.Since(killed).Round(time.Millisecond))
	select {
	case problem := <-waited:
		if problem != "" {
			t.Fatalf("replicate-now --wait asked of follower %s across the kill: %s", survivors[0].name, problem)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("replicate-now --wait asked of follower %s did not answer within 90 s of the kill", survivors[0].name)
	}
	if len(answer.Results) != 1 || !answer.Results[0].Done || !answer.Results[0].Verified || answer.Results[0].Run == nil {
		t.Errorf("replicate-now --wait asked of follower %s across the kill answered %+v; want the run done and verified", survivors[0].name, answer)
	} else {
		t.Logf("replicate-now --wait asked of follower %s answered %v after the kill: run %s (the held one: %t), verified",
			survivors[0].name, time.Since(killed).Round(time.Millisecond), answer.Results[0].Run.ID, answer.Results[0].Run.ID == run)
	}
	now := lfLeader(t, hq)
	if len(fltLog(now, "recording a run another leader handed out, from its ticket")) == 0 {
		t.Errorf("new parent leader %s did not log recording run %s from its ticket", now.name, run)
	}
	// The child applies a run, then acknowledges it (retrying until recorded): the newest run it
	// applied may still be on its way to the parent.
	var applied []string
	eventually(t, 15*time.Second, func() (bool, string) {
		recorded := map[string]bool{}
		for _, r := range lfRuns(t, survivors, "emea") {
			recorded[r.ID] = true
		}
		applied = lfAppliedRuns(child)
		for _, id := range applied {
			if !recorded[id] {
				return false, fmt.Sprintf("the child applied run %s and the parent never recorded it", id)
			}
		}
		return true, ""
	})
	t.Logf("every one of the %d runs the child applied is recorded at the parent", len(applied))

	// 3. The server the child was configured with is gone: the child carries on through another.
	if !configured.exited() {
		leader.restart(t)
		lfLeader(t, hq)
		configured.kill9(t)
	}
	now = lfLeader(t, hq)
	next := hierModifyFeed(t, feed, 7, 0.05, 1, 2, uffRanges)
	next.write(t, feedPath)
	hierImport(t, now, map[string]any{"source": feedPath})
	r := hierReplicateNow(t, now, "emea", "")["emea"]
	// The parent answers once it verified the run; the child records it as its last run when
	// its own acknowledgement returns, a moment later.
	var s *lfStatus
	waitFor(t, 10*time.Second, func() (bool, string) {
		var err error
		s, err = lfTryStatus(child)
		return err == nil && s != nil && s.Parent != nil && s.Parent.LastRun == r.ID, fmt.Sprintf("child's last run is not %s yet: %v", r.ID, err)
	})
	if s.Parent == nil || s.Parent.State != "running" || strings.EqualFold(s.Parent.URL, configured.url) || s.Parent.LastRun != r.ID || !s.Parent.LastVerified {
		t.Errorf("child's link after the configured server %s (%s) died: %+v; want running through another server, last run %s verified",
			configured.name, configured.url, s.Parent, r.ID)
	}
	hierCheckView(t, child, next.view(uffRanges), 6)
	t.Logf("configured server %s gone: the child replicates through %s (run %s verified); %v in all",
		configured.name, s.Parent.URL, r.ID, time.Since(start).Round(time.Millisecond))
}
