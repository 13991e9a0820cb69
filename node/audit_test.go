package node

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// auditAt returns the audit entries written by the Raft entry idx.
func auditAt(t *testing.T, s *store.Store, idx uint64) []*store.AuditEntry {
	t.Helper()
	var out []*store.AuditEntry
	if err := s.Audit(nil, "", func(e *store.AuditEntry) bool {
		if e.CreateIndex == idx {
			out = append(out, e)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// writesOwnAudit are the types whose request carries audit entries itself; their steps' checks
// count the audit log, which the wrapper's entry adds to.
var writesOwnAudit = map[MessageType]bool{
	PolicyPutRequestType: true, PolicyDeleteRequestType: true, SettingDocPutRequestType: true, AuditAppendRequestType: true,
}

// TestFSMAuditedEveryMessageType wraps each message type's request in an AuditedRequest and
// applies it: the change (the step's own check at that index) and its audit entry are both
// written by that one entry.
func TestFSMAuditedEveryMessageType(t *testing.T) {
	f := testFSM(t)
	by := store.Actor{TokenID: "admin1", Name: "alice", Role: store.RoleAdmin}
	for i, step := range fsmSteps() {
		idx := uint64(i + 1)
		if step.mt&^IgnoreUnknownTypeFlag == AuditedRequestType {
			continue // an audited entry does not wrap another
		}
		if _, binary := step.req.(binaryEntry); binary {
			// Nor a binary body (an import is audited by its run, not by a wrapper): applied
			// as it is, for the steps after it.
			if resp, isErr := f.Apply(makeLog(t, idx, step.mt, step.req)).(error); isErr && resp != nil {
				t.Fatalf("step %d (%s): %v", i, step.mt, resp)
			}
			continue
		}
		body, err := json.Marshal(step.req)
		if err != nil {
			t.Fatal(err)
		}
		action := "test." + step.mt.String()
		env := &AuditedRequest{Type: step.mt, Body: body, Audit: auditEntry(by, time.Unix(int64(idx), 0).UTC(), action, "target", nil)}
		if resp, isErr := f.Apply(makeLog(t, idx, AuditedRequestType, env)).(error); isErr && resp != nil {
			t.Fatalf("step %d (%s): %v", i, step.mt, resp)
		}
		if step.check != nil && !writesOwnAudit[step.mt] {
			step.check(t, f.State(), idx)
		}
		var mine []*store.AuditEntry
		for _, e := range auditAt(t, f.State(), idx) {
			if e.Action == action && e.Actor == by && e.Target == "target" {
				mine = append(mine, e)
			}
		}
		if len(mine) != 1 {
			t.Fatalf("step %d (%s): %d audit entries %q by %v at %d, want 1", i, step.mt, len(mine), action, by, idx)
		}
		if ai := f.State().Index("audit"); ai != idx {
			t.Fatalf("step %d (%s): audit table index %d, want %d", i, step.mt, ai, idx)
		}
	}
}

// TestFSMAuditedRefusedWriteRecordsNothing: a change the state refuses writes neither the
// change nor its audit entry; a wrapped wrapper is a corrupt log.
func TestFSMAuditedRefusedWriteRecordsNothing(t *testing.T) {
	f := testFSM(t)
	applySteps(t, f)
	before := digest(t, f.State())
	next := uint64(len(fsmSteps()) + 1)
	body, _ := json.Marshal(&TokenDeleteRequest{ID: "nope"})
	by := store.Actor{TokenID: "admin1", Name: "alice", Role: store.RoleAdmin}
	env := &AuditedRequest{Type: TokenDeleteRequestType, Body: body, Audit: auditEntry(by, time.Now().UTC(), "token.revoke", "token nope", nil)}
	if _, ok := f.Apply(makeLog(t, next, AuditedRequestType, env)).(error); !ok {
		t.Fatal("a refused audited write answered no error")
	}
	if after := digest(t, f.State()); after != before {
		t.Fatal("a refused audited write changed the state")
	}
	nested, _ := json.Marshal(env)
	wrapper := &AuditedRequest{Type: AuditedRequestType, Body: nested, Audit: env.Audit}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "audited entry wraps") {
			t.Fatalf("nested audited entry: recover() = %v", r)
		}
	}()
	f.Apply(makeLog(t, next+1, AuditedRequestType, wrapper))
}

// TestNodeAdminWritesAuditInTheSameEntry makes every administrator's write through the Node
// and finds, for each, its change and its audit entry (naming the actor and the target) written
// by the same Raft entry.
func TestNodeAdminWritesAuditInTheSameEntry(t *testing.T) {
	nodes, trans := testCluster(t, 2, &loopProbe{running: map[string]int{}})
	n := nodes[0]
	waitFor(t, 10*time.Second, func() (bool, string) { return n.Ready(), "not ready" })
	by := store.Actor{TokenID: "tok-1", Name: "alice", Role: store.RoleAdmin}
	var tokenID string
	one := func(a, b string) string { return a + " " + b }
	cases := []struct {
		action, target string
		write          func() (uint64, error)
		changedAt      func(s *store.Store) uint64 // the last entry that wrote the changed table
	}{
		{"token.create", "", func() (uint64, error) {
			c, err := n.CreateToken(by, store.RoleAuditor, "auditor-1")
			if c != nil {
				tokenID = c.Token.ID
			}
			return idxOf(c, err)
		}, func(s *store.Store) uint64 { return s.Index("tokens") }},
		{"token.revoke", "", func() (uint64, error) { return n.DeleteToken(by, tokenID) },
			func(s *store.Store) uint64 { return s.Index("tokens") }},
		{"languages.set", "site", func() (uint64, error) { return n.SetLanguages(by, []string{"de", "en"}) },
			func(s *store.Store) uint64 { return s.Index("languages") }},
		{"replication.rules-set", "setting rules", func() (uint64, error) {
			return n.PutSettingAs(by, "replication.rules-set", "rules", map[string]string{"catalog": "23:00"})
		}, func(s *store.Store) uint64 { return s.Index("settings") }},
		{"site.server-join", one("server", n.ID()), func() (uint64, error) {
			return n.AddServer(by, JoinRequest{ID: n.ID(), RaftAddr: string(trans[0].LocalAddr()), APIAddr: "http://api-new", Name: "hq", Role: RoleParent}, false)
		}, func(s *store.Store) uint64 { return s.Index("servers") }},
		{"site.server-remove", one("server", nodes[1].ID()), func() (uint64, error) { return n.RemoveServer(by, nodes[1].ID()) },
			func(s *store.Store) uint64 { return s.Index("servers") }},
		{"catalog.severity-add", "severity Urgent", func() (uint64, error) {
			return n.ChangeSeverityLevels(by, store.SeverityChange{Op: "add", Name: "Urgent"})
		}, func(s *store.Store) uint64 { return s.Index("severities") }},
		{"catalog.severities-set", "severities", func() (uint64, error) {
			return n.ChangeSeverityLevels(by, store.SeverityChange{Op: "set", Names: []string{"Urgent", "Later"}})
		}, func(s *store.Store) uint64 { return s.Index("severities") }},
		{"catalog.severity-delete", "severity Later", func() (uint64, error) {
			return n.ChangeSeverityLevels(by, store.SeverityChange{Op: "delete", Name: "Later"})
		}, func(s *store.Store) uint64 { return s.Index("severities") }},
		{"child.add", "child emea", func() (uint64, error) { c, err := n.AddChild(by, "emea"); return idxOf(c, err) },
			func(s *store.Store) uint64 { return s.Index("children") }},
		{"child.rotate", "child emea", func() (uint64, error) { c, err := n.RotateChild(by, "emea"); return idxOf(c, err) },
			func(s *store.Store) uint64 { return s.Index("children") }},
		{"child.remove", "child emea", func() (uint64, error) { return n.RemoveChild(by, "emea") },
			func(s *store.Store) uint64 { return s.Index("children") }},
	}
	for _, tc := range cases {
		idx, err := tc.write()
		if err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		s := n.State()
		if got := tc.changedAt(s); got != idx {
			t.Fatalf("%s: the change was written at index %d, the write answered %d", tc.action, got, idx)
		}
		entries := auditAt(t, s, idx)
		if len(entries) != 1 || entries[0].Action != tc.action || entries[0].Actor != by {
			t.Fatalf("%s: audit entries of entry %d = %+v", tc.action, idx, entries)
		}
		if want := tc.target; want != "" && entries[0].Target != want {
			t.Fatalf("%s: audit target %q, want %q", tc.action, entries[0].Target, want)
		}
		if strings.HasPrefix(tc.action, "token.") && (entries[0].Target != "token "+tokenID || !strings.Contains(string(entries[0].Detail), `"auditor-1"`)) {
			t.Fatalf("%s: token entry names %q %s, want the token's id, role and name", tc.action, entries[0].Target, entries[0].Detail)
		}
	}
	// The site's own writes (no actor) write no audit entry.
	idx, err := n.SetLanguages(store.Actor{}, []string{"en"})
	if err != nil {
		t.Fatal(err)
	}
	if got := auditAt(t, n.State(), idx); len(got) != 0 {
		t.Fatalf("a write without an actor was audited: %+v", got)
	}
}

// idxOf returns the index of a created token, enrolled or rotated child.
func idxOf[T *CreatedToken | *EnrolledChild | *RotatedChild](v T, err error) (uint64, error) {
	if err != nil {
		return 0, err
	}
	switch r := any(v).(type) {
	case *CreatedToken:
		return r.Index, nil
	case *EnrolledChild:
		return r.Index, nil
	case *RotatedChild:
		return r.Index, nil
	}
	return 0, nil
}
