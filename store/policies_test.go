package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// importBatch stages one batch for run.ID at stageIdx and commits the run at commitIdx, as an
// import (or a replication run on a child) does.
func importBatch(t *testing.T, s *Store, stageIdx, commitIdx uint64, run *ImportRun, b *CatalogBatch) {
	t.Helper()
	raw, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StageCatalog(stageIdx, run.ID, raw); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitCatalog(commitIdx, run, nil); err != nil {
		t.Fatal(err)
	}
}

func testBulletin(id string, updateIDs ...string) *Bulletin {
	return &Bulletin{BulletinContent: BulletinContent{ID: id, Title: "title " + id, UpdateIDs: updateIDs}, Feed: "f"}
}

func testUpdate(id, lang string, superseded bool) *Update {
	return &Update{UpdateContent: UpdateContent{ID: id, Title: "u " + id, Language: lang}, Feed: "f", Superseded: superseded}
}

func localPolicy(id string, bulletins []string, updates ...PolicyUpdate) *Policy {
	return &Policy{Origin: OriginLocal, PolicySpec: PolicySpec{
		ID: id, Name: "policy " + id, Folder: "Default", Bulletins: bulletins, Updates: updates,
		Enabled: true, Run: RunAgentDefault, Revision: 1,
	}}
}

func auditEntries(t *testing.T, s *Store, since string) []*AuditEntry {
	t.Helper()
	var out []*AuditEntry
	if err := s.Audit(nil, since, func(e *AuditEntry) bool { out = append(out, e); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func stateDigest(t *testing.T, s *Store) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

func mustPolicy(t *testing.T, s *Store, id string) *Policy {
	t.Helper()
	p, err := s.Policy(nil, id)
	if err != nil || p == nil {
		t.Fatalf("policy %s: %v, %v", id, p, err)
	}
	return p
}

func TestPutPolicyModifyIndex(t *testing.T) {
	s := newStore(t)
	p := localPolicy("p-1", []string{"B1"})
	if err := s.PutPolicy(5, p, &AuditEntry{Action: "policy.create", Target: "policy p-1"}); err != nil {
		t.Fatal(err)
	}
	if p.ModifyIndex != 0 {
		t.Fatalf("PutPolicy stamped the caller's policy: %+v", p.RaftIndex)
	}
	got := mustPolicy(t, s, "p-1")
	if got.CreateIndex != 5 || got.ModifyIndex != 5 || got.Name != "policy p-1" || s.PoliciesIndex(nil) != 5 {
		t.Fatalf("stored %+v, policies index %d", got, s.PoliciesIndex(nil))
	}

	// A write based on the current row succeeds.
	next := *got
	next.Revision = 2
	if err := s.PutPolicy(8, &next, nil); err != nil {
		t.Fatal(err)
	}
	if got := mustPolicy(t, s, "p-1"); got.CreateIndex != 5 || got.ModifyIndex != 8 || got.Revision != 2 {
		t.Fatalf("after update: %+v", got)
	}

	before := stateDigest(t, s)
	// A write based on the row at 5 (someone else wrote at 8) is refused, and so is a "create"
	// of an id that exists.
	for _, stale := range []uint64{5, 0, 9} {
		old := *got
		old.ModifyIndex = stale
		old.Name = "lost update"
		err := s.PutPolicy(10, &old, &AuditEntry{Action: "policy.update"})
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `policy "p-1" changed while this write was prepared; retry`) {
			t.Errorf("stale write based on %d: %v", stale, err)
		}
	}
	// An update of a policy that does not exist (deleted meanwhile) is not found.
	gone := localPolicy("p-2", []string{"B1"})
	gone.ModifyIndex = 3
	if err := s.PutPolicy(10, gone, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a missing policy: %v", err)
	}
	for _, bad := range []*Policy{localPolicy("", []string{"B1"}), {PolicySpec: PolicySpec{ID: "p-3", Name: "  "}}} {
		if err := s.PutPolicy(10, bad, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutPolicy(%+v): %v", bad.PolicySpec, err)
		}
	}
	if after := stateDigest(t, s); after != before {
		t.Fatal("refused writes changed the state")
	}
}

func TestParentPolicyIsReadOnly(t *testing.T) {
	s := newStore(t)
	parent := localPolicy("p-parent", []string{"B1"})
	importBatch(t, s, 1, 2, &ImportRun{ID: "rep-1", Source: "parent", State: ImportSucceeded},
		&CatalogBatch{Replica: true, Policies: []*Policy{parent}})
	got := mustPolicy(t, s, "p-parent")
	if got.Origin != OriginParent {
		t.Fatalf("replicated policy origin %q", got.Origin)
	}
	if err := s.PutPolicy(3, localPolicy("p-local", []string{"B1"}), nil); err != nil {
		t.Fatal(err)
	}
	before := stateDigest(t, s)

	// A local write over it, even based on the current row, is refused.
	local := *got
	local.Origin, local.Name = OriginLocal, "changed here"
	err := s.PutPolicy(4, &local, &AuditEntry{Action: "policy.update"})
	want := `policy "p-parent" was replicated from the parent site and is read-only here; change it at the parent: conflict`
	if !errors.Is(err, ErrConflict) || err.Error() != want {
		t.Fatalf("local write over a parent policy: %v", err)
	}
	local.Origin = ""
	if err := s.PutPolicy(4, &local, nil); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write without origin over a parent policy: %v", err)
	}
	err = s.DeletePolicy(4, "p-parent", &AuditEntry{Action: "policy.delete"})
	if !errors.Is(err, ErrConflict) || err.Error() != want {
		t.Fatalf("delete of a parent policy: %v", err)
	}
	if err := s.DeletePolicy(4, "p-none", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a missing policy: %v", err)
	}
	if after := stateDigest(t, s); after != before {
		t.Fatal("refused writes changed the state")
	}

	// A local policy deletes, with its audit entry.
	if err := s.DeletePolicy(6, "p-local", &AuditEntry{Action: "policy.delete", Target: "policy p-local"}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Policy(nil, "p-local"); p != nil {
		t.Fatalf("deleted policy still there: %+v", p)
	}
	es := auditEntries(t, s, "")
	if len(es) != 1 || es[0].Action != "policy.delete" || es[0].Key != fmt.Sprintf("%020d-0000", 6) || s.PoliciesIndex(nil) != 6 {
		t.Fatalf("audit %+v, policies index %d", es, s.PoliciesIndex(nil))
	}
}

func TestParentSettingDocIsReadOnly(t *testing.T) {
	s := newStore(t)
	doc := &SettingDoc{Name: "remediation", Body: json.RawMessage(`{"max_concurrent":2}`)}
	importBatch(t, s, 1, 2, &ImportRun{ID: "rep-1", State: ImportSucceeded}, &CatalogBatch{Replica: true, SettingDocs: []*SettingDoc{doc}})
	err := s.PutSettingDoc(3, &SettingDoc{Name: "remediation", Body: json.RawMessage(`{}`), Origin: OriginLocal}, nil)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("local write over a parent settings document: %v", err)
	}
	if err := s.PutSettingDoc(3, &SettingDoc{Name: "assessment", Body: json.RawMessage(`{`)}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid body: %v", err)
	}
	if err := s.PutSettingDoc(3, &SettingDoc{Name: "assessment", Body: json.RawMessage(`{}`), Origin: OriginLocal},
		&AuditEntry{Action: "settings.put", Target: "settings assessment"}); err != nil {
		t.Fatal(err)
	}
	d, _ := s.SettingDoc(nil, "assessment")
	if d == nil || d.Origin != OriginLocal || d.ModifyIndex != 3 || s.SettingDocsIndex(nil) != 3 {
		t.Fatalf("local settings document %+v, index %d", d, s.SettingDocsIndex(nil))
	}
}

func TestAuditOrder(t *testing.T) {
	s := newStore(t)
	at := time.Date(2019, 3, 22, 10, 0, 0, 0, time.UTC)
	alice := Actor{TokenID: "t1", Name: "alice", Role: RoleAdmin}
	if err := s.PutPolicy(3, localPolicy("p-b", []string{"B1"}), &AuditEntry{At: at, Actor: alice, Action: "policy.create", Target: "policy p-b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(7, []*AuditEntry{
		{At: at, Actor: alice, Action: "token.create", Target: "token t2"},
		nil,
		{At: at, Actor: alice, Action: "replicate.now", Detail: json.RawMessage(`{"scope":"policies"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSettingDoc(12, &SettingDoc{Name: "assessment", Body: json.RawMessage(`{}`), Origin: OriginLocal},
		&AuditEntry{At: at, Actor: alice, Action: "settings.put", Target: "settings assessment"}); err != nil {
		t.Fatal(err)
	}
	// An index above 9, 99, ... still sorts after the smaller ones.
	if err := s.DeletePolicy(100, "p-b", &AuditEntry{At: at, Actor: alice, Action: "policy.delete", Target: "policy p-b"}); err != nil {
		t.Fatal(err)
	}
	es := auditEntries(t, s, "")
	type row struct {
		key    string
		index  uint64
		action string
	}
	var got []row
	for _, e := range es {
		got = append(got, row{e.Key, e.ModifyIndex, e.Action})
		if e.Actor != alice || !e.At.Equal(at) {
			t.Errorf("entry %s: actor %+v at %v", e.Key, e.Actor, e.At)
		}
	}
	want := []row{
		{"00000000000000000003-0000", 3, "policy.create"},
		{"00000000000000000007-0000", 7, "token.create"},
		{"00000000000000000007-0002", 7, "replicate.now"},
		{"00000000000000000012-0000", 12, "settings.put"},
		{"00000000000000000100-0000", 100, "policy.delete"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit:\n got %+v\nwant %+v", got, want)
	}
	if string(es[2].Detail) != `{"scope":"policies"}` {
		t.Fatalf("detail %s", es[2].Detail)
	}
	if s.Index(tableAudit) != 100 {
		t.Fatalf("audit index %d", s.Index(tableAudit))
	}
	// Paging: entries after a key; fn returning false stops.
	if rest := auditEntries(t, s, "00000000000000000007-0000"); len(rest) != 3 || rest[0].Action != "replicate.now" {
		t.Fatalf("since: %+v", rest)
	}
	n := 0
	if err := s.Audit(nil, "", func(*AuditEntry) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("stop after 2: n=%d %v", n, err)
	}
}

func TestReplicaBatchPoliciesAndSettings(t *testing.T) {
	s := newStore(t)
	// The child's catalog, replicated from the parent.
	importBatch(t, s, 1, 2, &ImportRun{ID: "rep-1", Source: "parent", State: ImportSucceeded},
		&CatalogBatch{Replica: true, Bulletins: []*Bulletin{testBulletin("B1", "u1")}, Updates: []*Update{testUpdate("u1", "de", false)}})
	info, _ := s.Catalog(nil)
	if info.Version != 2 || info.Bulletins != 1 || info.Updates != 1 {
		t.Fatalf("catalog %+v", info)
	}
	if err := s.PutPolicy(3, localPolicy("p-local", []string{"B1"}), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSettingDoc(4, &SettingDoc{Name: "assessment", Body: json.RawMessage(`{}`), Origin: OriginLocal}, nil); err != nil {
		t.Fatal(err)
	}

	// A run carrying only policies and settings documents.
	p1 := localPolicy("p-1", []string{"B1"}, PolicyUpdate{ID: "u1", Bulletin: "B1", Language: "de", Enabled: true})
	p1.ParentIndex = 40
	p2 := localPolicy("p-2", []string{"B1"})
	p2.Origin = "" // whatever the sender says, the child records origin parent
	doc := &SettingDoc{Name: "remediation", Body: json.RawMessage(`{"max_concurrent":3}`), ParentIndex: 41}
	importBatch(t, s, 5, 6, &ImportRun{ID: "rep-2", Source: "parent", State: ImportSucceeded},
		&CatalogBatch{Replica: true, Policies: []*Policy{p1, p2}, SettingDocs: []*SettingDoc{doc}})

	for _, id := range []string{"p-1", "p-2"} {
		got := mustPolicy(t, s, id)
		if got.Origin != OriginParent || got.CreateIndex != 6 || got.ModifyIndex != 6 {
			t.Errorf("%s: origin %q raft %+v", id, got.Origin, got.RaftIndex)
		}
	}
	if got := mustPolicy(t, s, "p-1"); got.ParentIndex != 40 || !reflect.DeepEqual(got.PolicySpec, p1.PolicySpec) {
		t.Errorf("p-1 spec not kept: %+v", got)
	}
	d, _ := s.SettingDoc(nil, "remediation")
	if d == nil || d.Origin != OriginParent || d.ModifyIndex != 6 || d.ParentIndex != 41 || string(d.Body) != `{"max_concurrent":3}` {
		t.Fatalf("settings document %+v", d)
	}
	if info, _ := s.Catalog(nil); info.Version != 2 {
		t.Fatalf("catalog version %d after a run without catalog rows, want 2", info.Version)
	}
	if s.Index(tableBulletins, tableUpdates) != 2 {
		t.Fatalf("catalog tables written: %d", s.Index(tableBulletins, tableUpdates))
	}
	if s.PoliciesIndex(nil) != 6 || s.SettingDocsIndex(nil) != 6 {
		t.Fatalf("policies index %d, settings index %d", s.PoliciesIndex(nil), s.SettingDocsIndex(nil))
	}
	if r, _ := s.ImportRun(nil, "rep-2"); r == nil || r.CatalogVersion != 2 {
		t.Fatalf("run record %+v", r)
	}
	if runs, _ := s.StagedRuns(); len(runs) != 0 {
		t.Fatalf("staged runs left: %v", runs)
	}

	// Deletions touch only the parent's rows; the local ones and unknown ids are left alone.
	importBatch(t, s, 7, 8, &ImportRun{ID: "rep-3", Source: "parent", State: ImportSucceeded},
		&CatalogBatch{Replica: true, DeletePolicies: []string{"p-1", "p-local", "p-missing"},
			DeleteSettingDocs: []string{"remediation", "assessment", "plugin-policy"}})
	var ids []string
	ps, _ := s.Policies(nil)
	for _, p := range ps {
		ids = append(ids, p.ID+"/"+p.Origin)
	}
	if want := []string{"p-2/parent", "p-local/local"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("policies %v, want %v", ids, want)
	}
	docs, _ := s.SettingDocs(nil)
	if len(docs) != 1 || docs[0].Name != "assessment" || docs[0].Origin != OriginLocal {
		t.Fatalf("settings documents %+v", docs)
	}
	if s.PoliciesIndex(nil) != 8 || s.SettingDocsIndex(nil) != 8 {
		t.Fatalf("policies index %d, settings index %d", s.PoliciesIndex(nil), s.SettingDocsIndex(nil))
	}
	if info, _ := s.Catalog(nil); info.Version != 2 {
		t.Fatalf("catalog version %d", info.Version)
	}

	// Deleting only ids that are not the parent's writes nothing to the policies.
	importBatch(t, s, 9, 10, &ImportRun{ID: "rep-4", State: ImportSucceeded},
		&CatalogBatch{Replica: true, DeletePolicies: []string{"p-local"}})
	if s.PoliciesIndex(nil) != 8 {
		t.Fatalf("policies index %d after a no-op delete", s.PoliciesIndex(nil))
	}

	// A run with catalog rows and a policy that references them makes both visible at once.
	p3 := localPolicy("p-3", []string{"B2"}, PolicyUpdate{ID: "u2", Bulletin: "B2", Language: "de", Enabled: true})
	importBatch(t, s, 11, 12, &ImportRun{ID: "rep-5", State: ImportSucceeded},
		&CatalogBatch{Replica: true, Bulletins: []*Bulletin{testBulletin("B2", "u2")}, Updates: []*Update{testUpdate("u2", "de", false)},
			Policies: []*Policy{p3}})
	if info, _ := s.Catalog(nil); info.Version != 12 || info.Bulletins != 2 {
		t.Fatalf("catalog %+v", info)
	}
	if got := mustPolicy(t, s, "p-3"); got.ModifyIndex != 12 || got.Origin != OriginParent || s.PoliciesIndex(nil) != 12 {
		t.Fatalf("p-3 %+v", got)
	}
}

// A non-replica batch's policies are ignored: only replication writes parent policies.
func TestNonReplicaBatchIgnoresPolicies(t *testing.T) {
	s := newStore(t)
	importBatch(t, s, 1, 2, &ImportRun{ID: "run-1", State: ImportSucceeded},
		&CatalogBatch{Policies: []*Policy{localPolicy("p-1", []string{"B1"})},
			SettingDocs: []*SettingDoc{{Name: "assessment", Body: json.RawMessage(`{}`)}}})
	if ps, _ := s.Policies(nil); len(ps) != 0 {
		t.Fatalf("policies %+v", ps)
	}
	if docs, _ := s.SettingDocs(nil); len(docs) != 0 {
		t.Fatalf("settings documents %+v", docs)
	}
}

// reviseFixture: a catalog with B1 (u1) and B2 (v1), local policies on B1 (two) and B2, and a
// parent policy on B1. Returns the store; the next free index is 10.
func reviseFixture(t *testing.T) *Store {
	t.Helper()
	s := newStore(t)
	importBatch(t, s, 1, 2, &ImportRun{ID: "run-1", State: ImportSucceeded},
		&CatalogBatch{Bulletins: []*Bulletin{testBulletin("B1", "u1"), testBulletin("B2", "v1")},
			Updates: []*Update{testUpdate("u1", "de", false), testUpdate("v1", "fr", false)}})
	u1 := PolicyUpdate{ID: "u1", Bulletin: "B1", Language: "de", Enabled: true}
	if err := s.PutPolicy(3, localPolicy("p-a", []string{"B1"}, u1), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPolicy(4, localPolicy("p-b", []string{"B2"}, PolicyUpdate{ID: "v1", Bulletin: "B2", Language: "fr", Enabled: true}), nil); err != nil {
		t.Fatal(err)
	}
	// p-c has an update its operator turned off: the revision keeps that.
	v1off := PolicyUpdate{ID: "v1", Bulletin: "B2", Language: "fr", Enabled: false}
	if err := s.PutPolicy(5, localPolicy("p-c", []string{"B2", "B1"}, v1off, u1), nil); err != nil {
		t.Fatal(err)
	}
	importBatch(t, s, 6, 7, &ImportRun{ID: "rep-1", Source: "parent", State: ImportSucceeded},
		&CatalogBatch{Replica: true, Policies: []*Policy{localPolicy("p-parent", []string{"B1"}, u1)}})
	return s
}

// importNewUpdates commits an import at 10/11 that adds u2 (de-AT) and u3 (superseded) to B1.
func importNewUpdates(t *testing.T, s *Store, revise string, finished time.Time) {
	t.Helper()
	importBatch(t, s, 10, 11, &ImportRun{ID: "run-2", State: ImportSucceeded, FinishedAt: finished, RevisePolicies: revise},
		&CatalogBatch{Bulletins: []*Bulletin{testBulletin("B1", "u1", "u2", "u3")},
			Updates: []*Update{testUpdate("u2", "de-AT", false), testUpdate("u3", "en", true)}})
}

func TestRevisePolicies(t *testing.T) {
	finished := time.Date(2019, 3, 23, 4, 0, 0, 0, time.UTC)
	for _, mode := range []string{ReviseDisabled, ReviseEnabled} {
		t.Run(mode, func(t *testing.T) {
			s := reviseFixture(t)
			untouched := map[string]*Policy{}
			for _, id := range []string{"p-b", "p-parent"} {
				untouched[id] = mustPolicy(t, s, id)
			}
			importNewUpdates(t, s, mode, finished)
			if info, _ := s.Catalog(nil); info.Version != 11 {
				t.Fatalf("catalog version %d", info.Version)
			}

			enabled := mode == ReviseEnabled
			for _, id := range []string{"p-a", "p-c"} {
				p := mustPolicy(t, s, id)
				want := []PolicyUpdate{
					{ID: "u1", Bulletin: "B1", Language: "de", Enabled: true},
					{ID: "u2", Bulletin: "B1", Language: "de-AT", Enabled: enabled},
					{ID: "u3", Bulletin: "B1", Language: "en", Enabled: false}, // superseded: never added enabled
				}
				if id == "p-c" {
					want = append([]PolicyUpdate{{ID: "v1", Bulletin: "B2", Language: "fr", Enabled: false}}, want...)
				}
				if !reflect.DeepEqual(p.Updates, want) {
					t.Errorf("%s updates:\n got %+v\nwant %+v", id, p.Updates, want)
				}
				if p.Revision != 2 || p.ModifyIndex != 11 || !p.UpdatedAt.Equal(finished) || p.UpdatedBy != "catalog import run-2" || p.Origin != OriginLocal {
					t.Errorf("%s: revision %d modify %d updated %v by %q origin %q", id, p.Revision, p.ModifyIndex, p.UpdatedAt, p.UpdatedBy, p.Origin)
				}
			}
			for id, before := range untouched {
				if after := mustPolicy(t, s, id); !reflect.DeepEqual(after, before) {
					t.Errorf("%s revised:\n before %+v\n after  %+v", id, before, after)
				}
			}
			if s.PoliciesIndex(nil) != 11 {
				t.Errorf("policies index %d", s.PoliciesIndex(nil))
			}

			es := auditEntries(t, s, "")
			if len(es) != 2 {
				t.Fatalf("audit entries %+v", es)
			}
			for i, id := range []string{"p-a", "p-c"} {
				e := es[i]
				if e.Key != fmt.Sprintf("%020d-%04d", 11, i) || e.ModifyIndex != 11 || e.Action != "policy.revise" ||
					e.Target != "policy "+id || e.Actor != (Actor{Name: "catalog import run-2"}) || !e.At.Equal(finished) {
					t.Errorf("audit entry %d: %+v", i, e)
				}
				var detail struct {
					Added    []string `json:"added_updates"`
					Disabled []string `json:"disabled_superseded"`
					Enabled  bool     `json:"new_updates_enabled"`
					Revision int      `json:"revision"`
				}
				if err := json.Unmarshal(e.Detail, &detail); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(detail.Added, []string{"u2", "u3"}) || len(detail.Disabled) != 0 || detail.Enabled != enabled || detail.Revision != 2 {
					t.Errorf("audit detail %s", e.Detail)
				}
			}
		})
	}
}

func TestRevisePoliciesOff(t *testing.T) {
	for _, mode := range []string{ReviseOff, ""} {
		t.Run("mode="+mode, func(t *testing.T) {
			s := reviseFixture(t)
			before, _ := s.Policies(nil)
			importNewUpdates(t, s, mode, time.Now())
			after, _ := s.Policies(nil)
			if !reflect.DeepEqual(after, before) {
				t.Fatalf("policies revised with %q", mode)
			}
			if es := auditEntries(t, s, ""); len(es) != 0 {
				t.Fatalf("audit %+v", es)
			}
			if s.PoliciesIndex(nil) != 7 {
				t.Fatalf("policies index %d", s.PoliciesIndex(nil))
			}
			if b, _ := s.Bulletin(nil, "B1"); len(b.UpdateIDs) != 3 {
				t.Fatalf("import not committed: %+v", b)
			}
		})
	}
}

// With DisableSuperseded the revision also turns off updates the catalog now marks superseded.
func TestRevisePoliciesDisableSuperseded(t *testing.T) {
	s := reviseFixture(t)
	importBatch(t, s, 10, 11, &ImportRun{ID: "run-2", State: ImportSucceeded, RevisePolicies: ReviseDisabled, DisableSuperseded: true},
		&CatalogBatch{Updates: []*Update{testUpdate("u1", "de", true)}})
	p := mustPolicy(t, s, "p-a")
	if want := []PolicyUpdate{{ID: "u1", Bulletin: "B1", Language: "de", Enabled: false}}; !reflect.DeepEqual(p.Updates, want) || p.Revision != 2 {
		t.Fatalf("p-a %+v", p.PolicySpec)
	}
	if pp := mustPolicy(t, s, "p-parent"); !pp.Updates[0].Enabled || pp.Revision != 1 {
		t.Fatalf("parent policy revised: %+v", pp.PolicySpec)
	}
	es := auditEntries(t, s, "")
	if len(es) != 2 || !strings.Contains(string(es[0].Detail), `"disabled_superseded":["u1"]`) {
		t.Fatalf("audit %+v", es)
	}
	// Without the option a superseded update stays as it is.
	s = reviseFixture(t)
	importBatch(t, s, 10, 11, &ImportRun{ID: "run-2", State: ImportSucceeded, RevisePolicies: ReviseDisabled},
		&CatalogBatch{Updates: []*Update{testUpdate("u1", "de", true)}})
	if p := mustPolicy(t, s, "p-a"); !p.Updates[0].Enabled || p.Revision != 1 {
		t.Fatalf("p-a %+v", p.PolicySpec)
	}
}
