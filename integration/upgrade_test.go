package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRollingUpgradeUnknownEntry stands a 3-server site where a leader of a newer version writes
// an entry type the others do not know (a test-only type no version gives a meaning to, written
// through a --test-hooks route). Marked ignorable, every server skips it, counts it, and goes on
// applying the log; not ignorable, every server stops with a message that says to upgrade,
// instead of applying the log wrongly or printing a panic trace.
func TestRollingUpgradeUnknownEntry(t *testing.T) {
	t.Parallel()
	hooks := []string{"--test-hooks"}
	a := startSite(t, siteOpts{Name: "up-a", Site: "upgrade3", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Extra: hooks})
	nodes := []*proc{a}
	for _, name := range []string{"up-b", "up-c"} {
		nodes = append(nodes, startSite(t, siteOpts{Name: name, Site: "upgrade3", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			JoinSite: a.url, Token: a.token, Extra: hooks}))
	}
	admin := a.token
	leader := waitAgreement(t, nodes, admin, 3)

	doJSON(t, "POST", leader.url+"/v1/test/raft-entry", admin, map[string]any{"ignorable": true}, 200, nil)
	createToken(t, leader.url, admin, "auditor", "after-the-new-entry")
	waitFor(t, 20*time.Second, func() (bool, string) {
		var why []string
		for _, n := range nodes {
			var st struct {
				Raft struct {
					Skipped uint64 `json:"skipped_entries"`
				} `json:"raft"`
			}
			s, raw, err := tryDo(context.Background(), "GET", n.url+"/v1/status", admin, nil)
			if err != nil || s != 200 || json.Unmarshal(raw, &st) != nil || st.Raft.Skipped != 1 {
				why = append(why, fmt.Sprintf("%s: %d %v skipped %d", n.name, s, err, st.Raft.Skipped))
			}
		}
		return len(why) == 0, strings.Join(why, "; ")
	})
	waitAgreement(t, nodes, admin, 3) // every server applied the write after the skipped entry
	t.Logf("an ignorable entry of an unknown type: skipped and counted by all 3 servers, which went on applying the log")

	// Not ignorable: the leader's write never answers (the leader stops too, applying it).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	tryDo(ctx, "POST", leader.url+"/v1/test/raft-entry", admin, map[string]any{"ignorable": false})
	cancel()
	// The entry commits on a majority, which applies it and stops; a server the dying leader had
	// not sent it to yet never sees it, and waits without a quorum.
	var stopped []*proc
	waitFor(t, 30*time.Second, func() (bool, string) {
		stopped = stopped[:0]
		for _, n := range nodes {
			if n.exited() {
				stopped = append(stopped, n)
			}
		}
		return len(stopped) >= 2, fmt.Sprintf("%d of 3 servers stopped after a non-ignorable unknown entry", len(stopped))
	})
	for _, n := range nodes {
		log, err := os.ReadFile(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(string(log), "upgrade it to the leader's version")
		switch {
		case strings.Contains(string(log), "goroutine "):
			t.Errorf("%s printed a trace: %s", n.name, lastLines(string(log), 5))
		case n.exited() && !said:
			t.Errorf("%s stopped without saying to upgrade: %s", n.name, lastLines(string(log), 5))
		case !n.exited() && said:
			t.Errorf("%s said it cannot apply the log but is still running", n.name)
		}
	}
	t.Logf("a non-ignorable entry of an unknown type: the %d servers that received it stopped, each saying to upgrade", len(stopped))
}
