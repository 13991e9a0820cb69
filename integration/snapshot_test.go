package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapStartParent starts a one-server parent on a fixed API port (so that a child still finds
// it after its data dir was wiped) whose catalog rule does not fire during the test.
func snapStartParent(t *testing.T, name string) *proc {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startSite(t, siteOpts{Name: name, Languages: []string{"*"}, Extra: []string{"--listen", listen}})
	doJSON(t, "PUT", p.url+"/v1/replication/rules", p.token, map[string]any{"catalog": "12h", "verify_percent": 5}, 200, nil)
	return p
}

// snapSameState reports every table that differs between two digests, except the audit log,
// the index table (which records the audit log's last write) and the servers table (a wiped
// site's server has a new id): a restore writes its own audit entry after the state it installs.
func snapSameState(t *testing.T, what string, want, got catDigest) {
	t.Helper()
	skip := map[string]bool{"audit": true, "index": true, "servers": true}
	for table, d := range want.Tables {
		if !skip[table] && got.Tables[table] != d {
			t.Errorf("%s: table %s is %+v, the backup's was %+v", what, table, got.Tables[table], d)
		}
	}
	for table := range got.Tables {
		if _, ok := want.Tables[table]; !ok && !skip[table] {
			t.Errorf("%s: table %s appeared", what, table)
		}
	}
}

// snapCLI runs a patchtree snapshot command against p with token and fails the test unless it
// exits 0.
func snapCLI(t *testing.T, p *proc, token string, args ...string) string {
	t.Helper()
	args = append(args, "--server", p.url, "--token", token)
	r := catRunCLI(t, t.TempDir(), nil, append([]string{"snapshot"}, args...)...)
	if r.code != 0 {
		t.Fatalf("patchtree snapshot %s: %s", strings.Join(args[:2], " "), r)
	}
	return r.stdout
}

// snapLatestRun is the newest replication run to child.
func snapLatestRun(t *testing.T, parent *proc, child string) hierRun {
	t.Helper()
	runs := hierRuns(t, parent, child)
	if len(runs) == 0 {
		t.Fatalf("no replication run to %s", child)
	}
	return runs[0]
}

// TestSnapshotBackupRestore: a parent with the Mozilla catalog, a policy and a child is saved
// with `patchtree snapshot save`. Extra rows (a changed catalog that the child then receives, a
// policy, a token) are removed by the restore, which leaves every table as the backup held it;
// the child, whose cursor is now ahead of its parent, converges back with a complete run. Then
// the parent's data dir is wiped, the backup restored onto the new empty site, and the state is
// the backup's again, with the backup's admin token, and the child keeps its view. The parent is
// one server; the restore on a three-server site takes the same raft.Restore path, which installs
// the snapshot on the followers.
func TestSnapshotBackupRestore(t *testing.T) {
	t.Parallel()
	src := hierMozillaFeed(t)
	dir := t.TempDir()
	feedPath := filepath.Join(dir, "mozilla.catalog.json")
	orig := hierParseFeed(t, src)
	orig.write(t, feedPath)
	ranges := []string{"de", "fr"}

	parent := snapStartParent(t, "hq")
	hierImport(t, parent, map[string]any{"source": feedPath})
	var list catList
	doJSON(t, "GET", parent.url+"/v1/catalog/bulletins?per_page=2", parent.token, nil, 200, &list)
	if len(list.Bulletins) < 2 {
		t.Fatalf("catalog lists %d bulletins, want at least 2", len(list.Bulletins))
	}
	kept := polWrite(t, "POST", parent.url+"/v1/policies", parent.token,
		map[string]any{"bulletins": []string{list.Bulletins[0].ID}, "folder": "backup"}, 201)
	child := hierStartChild(t, parent, "emea", ranges)
	hierReplicateNow(t, parent, "emea", "")
	oldView := orig.view(ranges)
	hierCheckView(t, child, oldView, 10)

	saved := catGetDigest(t, parent)
	backupPath := filepath.Join(dir, "hq.snap")
	out := snapCLI(t, parent, parent.token, "save", backupPath)
	t.Logf("save: %s", strings.TrimSpace(out))
	r := catRunCLI(t, dir, nil, "snapshot", "inspect", backupPath)
	if r.code != 0 || !strings.Contains(r.stdout, "(OK)") || !strings.Contains(r.stdout, "bulletins") {
		t.Fatalf("snapshot inspect: %s", r)
	}
	if fi, err := os.Stat(backupPath); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}

	// Extra rows after the backup: a changed catalog the child receives, a policy, a token.
	next := hierModifyFeed(t, orig, 7, 0.01, 10, 20, ranges)
	next.write(t, feedPath)
	hierImport(t, parent, map[string]any{"source": feedPath})
	extra := polWrite(t, "POST", parent.url+"/v1/policies", parent.token,
		map[string]any{"bulletins": []string{list.Bulletins[1].ID}, "folder": "after"}, 201)
	var tok struct {
		Token string `json:"token"`
	}
	doJSON(t, "POST", parent.url+"/v1/tokens", parent.token, map[string]any{"role": "auditor", "name": "after-backup"}, 201, &tok)
	hierReplicateNow(t, parent, "emea", "")
	hierCheckView(t, child, next.view(ranges), 10)
	aheadCursor := hierChildren(t, parent)["emea"].Cursor

	t.Run("restore removes extra rows", func(t *testing.T) {
		out := snapCLI(t, parent, parent.token, "restore", backupPath)
		t.Logf("restore: %s", strings.TrimSpace(out))
		snapSameState(t, "after the restore", saved, catGetDigest(t, parent))
		doJSON(t, "GET", parent.url+"/v1/policies/"+extra.ID, parent.token, nil, 404, nil)
		doJSON(t, "GET", parent.url+"/v1/policies/"+kept.ID, parent.token, nil, 200, nil)
		if st, _, raw := do(t, "GET", parent.url+"/v1/status", tok.Token, nil); st != 401 {
			t.Errorf("token created after the backup: status %d %s, want 401", st, raw)
		}
		restored := false
		for _, e := range polAudit(t, parent, parent.token) {
			restored = restored || e.Action == "snapshot.restore"
		}
		if !restored {
			t.Errorf("the restore is not in the audit log")
		}
	})

	t.Run("child converges", func(t *testing.T) {
		if v := catGetInfo(t, parent).Version; v >= aheadCursor {
			t.Fatalf("restored catalog version %d is not behind the child's cursor %d", v, aheadCursor)
		}
		hierReplicateNow(t, parent, "emea", "")
		run := snapLatestRun(t, parent, "emea")
		if run.Mode != "complete" || run.Trigger != "cursor-ahead" || run.Error != "" {
			t.Errorf("run after the restore: %v, want complete/cursor-ahead (the child's cursor was ahead)", run)
		}
		hierCheckView(t, child, oldView, 10)
	})

	t.Run("wipe and restore", func(t *testing.T) {
		backupToken := parent.token
		parent.stop(t)
		entries, err := os.ReadDir(parent.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(parent.dataDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		parent.restart(t)
		freshToken := readAdminToken(t, parent.dataDir)
		if st, _, _ := do(t, "GET", parent.url+"/v1/status", backupToken, nil); st != 401 {
			t.Fatalf("the wiped site accepts the backup's admin token before the restore (%d)", st)
		}
		snapCLI(t, parent, freshToken, "restore", backupPath)
		parent.token = backupToken
		snapSameState(t, "after wipe and restore", saved, catGetDigest(t, parent))
		if st, _, _ := do(t, "GET", parent.url+"/v1/status", freshToken, nil); st != 401 {
			t.Errorf("the wiped site's own admin token still works after the restore (%d), want the backup's only", st)
		}
		hierReplicateNow(t, parent, "emea", "")
		if run := snapLatestRun(t, parent, "emea"); run.Error != "" {
			t.Errorf("run to the child after wipe and restore: %v", run)
		}
		hierCheckView(t, child, oldView, 10)
	})
}

// snapDigests returns every server's GET /v1/digest.
func snapDigests(t *testing.T, nodes []*proc, token string) []catDigest {
	t.Helper()
	out := make([]catDigest, len(nodes))
	for i, n := range nodes {
		doJSON(t, "GET", n.url+"/v1/digest", token, nil, 200, &out[i])
	}
	return out
}

// TestSnapshotRestoreSite3: on a three-server site, truncated and altered uploads are refused
// with 400 and change nothing; a backup saved and restored through followers (forwarded to the
// leader) reaches every server: all three digests are equal and are
// the backup's, a token created after the backup is refused everywhere, and a follower restarted
// afterwards comes back from the restored snapshot with the same digest.
func TestSnapshotRestoreSite3(t *testing.T) {
	t.Parallel()
	nodes := uffSite3(t, "vault", "parent", []string{"en"}, nil, nil)
	admin := nodes[0].token
	leader := waitAgreement(t, nodes, admin, 3)
	followers := uffOthers(nodes, leader)
	putLanguages(t, leader.url, admin, []string{"en", "fr"})
	waitFor(t, 15*time.Second, func() (bool, string) {
		ds := snapDigests(t, nodes, admin)
		return ds[0].Digest == ds[1].Digest && ds[1].Digest == ds[2].Digest, "servers differ before the backup"
	})
	saved := snapDigests(t, []*proc{leader}, admin)[0]
	backupPath := filepath.Join(t.TempDir(), "vault.snap")
	snapCLI(t, followers[0], admin, "save", backupPath)

	later := createToken(t, leader.url, admin, "auditor", "after-backup")
	putLanguages(t, leader.url, admin, []string{"de"})
	uffWaitToken(t, nodes, later.Token, "/v1/status")

	raw, err := os.ReadFile(backupPath)
	if err != nil {
		t.Fatal(err)
	}
	before := snapDigests(t, []*proc{leader}, admin)[0]
	for name, body := range map[string][]byte{"truncated": raw[:len(raw)/2], "altered": append(bytes.Clone(raw[:len(raw)-1]), raw[len(raw)-1]^1)} {
		st, _, answer := do(t, "PUT", followers[1].url+"/v1/snapshot", admin, body)
		if st != 400 {
			t.Errorf("%s backup: %d %s, want 400", name, st, answer)
		}
	}
	if after := snapDigests(t, []*proc{leader}, admin)[0]; after.Digest != before.Digest {
		t.Errorf("refused restores changed the state")
	}

	out := snapCLI(t, followers[1], admin, "restore", backupPath)
	t.Logf("restore through follower %s: %s", followers[1].name, strings.TrimSpace(out))
	var ds []catDigest
	if !eventually(t, 30*time.Second, func() (bool, string) {
		ds = snapDigests(t, nodes, admin)
		return ds[0].Digest == ds[1].Digest && ds[1].Digest == ds[2].Digest,
			fmt.Sprintf("digests %s %s %s", ds[0].Digest, ds[1].Digest, ds[2].Digest)
	}) {
		t.Fatalf("the servers' digests differ after the restore")
	}
	for i, n := range nodes {
		snapSameState(t, n.name+" after the restore", saved, ds[i])
		if st, _, raw := do(t, "GET", n.url+"/v1/status", later.Token, nil); st != 401 {
			t.Errorf("%s: token created after the backup: %d %s, want 401", n.name, st, raw)
		}
	}

	f := followers[0]
	f.stop(t)
	f.restart(t)
	waitFor(t, 30*time.Second, func() (bool, string) {
		d := snapDigests(t, []*proc{f, leader}, admin)
		return d[0].Digest == d[1].Digest, fmt.Sprintf("%s restarted: digest %s, leader %s", f.name, d[0].Digest, d[1].Digest)
	})
}
