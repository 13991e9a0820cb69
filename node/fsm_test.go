package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"

	"patchtree/store"
)

func makeLog(t *testing.T, idx uint64, mt MessageType, req any) *raft.Log {
	t.Helper()
	buf, err := Encode(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: buf}
}

func testFSM(t *testing.T) *FSM {
	t.Helper()
	f, err := NewFSM(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testToken(id string, role store.Role) store.Token {
	return store.Token{ID: id, SecretHash: store.HashSecret("secret-" + id), Role: role, Name: id,
		CreateTime: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
}

// applyAll applies one entry of every message type, in an order where each succeeds, and returns
// the FSM. It is the state the snapshot tests start from.
type fsmStep struct {
	mt    MessageType
	req   any
	check func(t *testing.T, s *store.Store, idx uint64)
}

func fsmSteps() []fsmStep {
	return []fsmStep{
		{SiteInitRequestType, &SiteInitRequest{
			Site:       store.SiteInfo{SiteID: "s1", Name: "hq", Role: RoleParent, CreatedAt: time.Unix(0, 0).UTC()},
			AdminToken: testToken("admin1", store.RoleAdmin), Languages: []string{"en"},
		}, func(t *testing.T, s *store.Store, idx uint64) {
			site, _ := s.Site(nil)
			if site == nil || site.Name != "hq" || site.AdminTokenID != "admin1" {
				t.Fatalf("site = %+v", site)
			}
			if tok, _ := s.Token(nil, "admin1"); tok == nil || tok.CreateIndex != idx {
				t.Fatalf("admin token = %+v", tok)
			}
		}},
		{TokenCreateRequestType, &TokenCreateRequest{Token: testToken("aud1", store.RoleAuditor)},
			func(t *testing.T, s *store.Store, idx uint64) {
				tok, _ := s.Token(nil, "aud1")
				if tok == nil || tok.Role != store.RoleAuditor || tok.CreateIndex != idx || tok.ModifyIndex != idx {
					t.Fatalf("token = %+v", tok)
				}
				if !tok.SecretMatches("secret-aud1") || tok.SecretMatches("secret-aud2") {
					t.Fatal("secret comparison wrong")
				}
			}},
		{TokenCreateRequestType, &TokenCreateRequest{Token: testToken("gone", store.RoleAgent)}, nil},
		{TokenDeleteRequestType, &TokenDeleteRequest{ID: "gone"},
			func(t *testing.T, s *store.Store, idx uint64) {
				if tok, _ := s.Token(nil, "gone"); tok != nil {
					t.Fatal("token not deleted")
				}
				if got := s.Index("tokens"); got != idx {
					t.Fatalf("tokens index = %d, want %d", got, idx)
				}
			}},
		{LanguagesSetRequestType, &LanguagesSetRequest{ID: store.LanguagesSite, Ranges: []string{"de", "fr"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				l, _ := s.Languages(nil, store.LanguagesSite)
				if l == nil || strings.Join(l.Ranges, ",") != "de,fr" || l.ModifyIndex != idx || l.CreateIndex >= idx {
					t.Fatalf("languages = %+v", l)
				}
			}},
		{SettingPutRequestType, &SettingPutRequest{Key: "rules", Value: json.RawMessage(`{"catalog":"23:00"}`)},
			func(t *testing.T, s *store.Store, idx uint64) {
				row, _ := s.Setting(nil, "rules")
				if row == nil || string(row.Value) != `{"catalog":"23:00"}` {
					t.Fatalf("setting = %+v", row)
				}
			}},
		{ServerUpsertRequestType, &ServerUpsertRequest{Server: store.Server{ID: "n1", RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:2"}}, nil},
		{ServerUpsertRequestType, &ServerUpsertRequest{Server: store.Server{ID: "n2", RaftAddr: "127.0.0.1:3", APIAddr: "http://127.0.0.1:4"}}, nil},
		{ServerDeleteRequestType, &ServerDeleteRequest{ID: "n2"},
			func(t *testing.T, s *store.Store, idx uint64) {
				servers, _ := s.Servers(nil)
				if len(servers) != 1 || servers[0].ID != "n1" {
					t.Fatalf("servers = %+v", servers)
				}
			}},
		{CatalogStageRequestType, &CatalogStageRequest{RunID: "r1", Batch: mustJSONBatch(store.CatalogBatch{
			Bulletins: []*store.Bulletin{{BulletinContent: store.BulletinContent{ID: "B1", Title: "b", UpdateIDs: []string{"U1"}}, Feed: "f", Hash: "h1"}},
			Updates:   []*store.Update{{UpdateContent: store.UpdateContent{ID: "U1", Title: "u", Language: "de"}, Feed: "f", Hash: "h2"}},
		})}, func(t *testing.T, s *store.Store, idx uint64) {
			if b, _ := s.Bulletin(nil, "B1"); b != nil {
				t.Fatal("staged bulletin visible before commit")
			}
		}},
		{CatalogCommitRequestType, &CatalogCommitRequest{Run: store.ImportRun{ID: "r1", State: store.ImportSucceeded},
			Source: &store.SourceState{ID: "file.json", Feed: "f"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				b, _ := s.Bulletin(nil, "B1")
				info, _ := s.Catalog(nil)
				run, _ := s.ImportRun(nil, "r1")
				if b == nil || info.Version != idx || info.Bulletins != 1 || info.Updates != 1 || run.CatalogVersion != idx {
					t.Fatalf("bulletin %+v info %+v run %+v", b, info, run)
				}
			}},
		{CatalogStageRequestType, &CatalogStageRequest{RunID: "r2", Batch: mustBatch(store.CatalogBatch{DeleteBulletins: []string{"B1"}})}, nil},
		{CatalogAbortRequestType, &CatalogAbortRequest{RunID: "r2"},
			func(t *testing.T, s *store.Store, idx uint64) {
				if runs, _ := s.StagedRuns(); len(runs) != 0 {
					t.Fatalf("staged runs after abort: %v", runs)
				}
				if b, _ := s.Bulletin(nil, "B1"); b == nil {
					t.Fatal("aborted delete took effect")
				}
			}},
		{SeverityChangeRequestType, &SeverityChangeRequest{Change: store.SeverityChange{Op: "set", Names: []string{"Urgent", "Later"}}},
			func(t *testing.T, s *store.Store, idx uint64) {
				levels, _ := s.SeverityLevels(nil)
				if len(levels) != 2 || levels[0].Name != "Urgent" {
					t.Fatalf("levels = %+v", levels)
				}
			}},
		{BulletinAdminRequestType, &BulletinAdminRequest{ID: "B1", CustomSeverity: ptr("Urgent"), Disabled: ptr(true)},
			func(t *testing.T, s *store.Store, idx uint64) {
				b, _ := s.Bulletin(nil, "B1")
				if b.CustomSeverity != "Urgent" || !b.Disabled || b.ModifyIndex != idx {
					t.Fatalf("bulletin = %+v", b)
				}
			}},
		{ChildAddRequestType, &ChildAddRequest{Child: store.Child{Name: "emea", JoinTokenHash: store.HashSecret("join")}}, nil},
		{ChildAddRequestType, &ChildAddRequest{Child: store.Child{Name: "apac", JoinTokenHash: store.HashSecret("join2")}}, nil},
		{ChildJoinRequestType, &ChildJoinRequest{Name: "emea", JoinHash: store.HashSecret("join"),
			NodeToken: store.Token{ID: "node1", SecretHash: store.HashSecret("n"), Role: store.RoleNode, Child: "emea"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				c, _ := s.Child(nil, "emea")
				tok, _ := s.Token(nil, "node1")
				if c.JoinTokenHash != "" || c.NodeTokenID != "node1" || tok == nil || tok.Child != "emea" {
					t.Fatalf("child %+v token %+v", c, tok)
				}
			}},
		{ChildUpdateRequestType, &ChildUpdateRequest{Name: "emea", Update: store.ChildUpdate{Ranges: &[]string{"de"}}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if c, _ := s.Child(nil, "emea"); !c.RangesReported || c.Ranges[0] != "de" {
					t.Fatalf("child %+v", c)
				}
			}},
		{ReplicationRunRequestType, &ReplicationRunRequest{Run: store.ReplicationRun{ID: "run1", Child: "emea", To: 9},
			Update: store.ChildUpdate{Cursor: ptr(uint64(9))}},
			func(t *testing.T, s *store.Store, idx uint64) {
				runs, _ := s.ReplicationRuns(nil)
				if c, _ := s.Child(nil, "emea"); c.Cursor != 9 || len(runs) != 1 {
					t.Fatalf("child %+v runs %d", c, len(runs))
				}
			}},
		{ChildRotateRequestType, &ChildRotateRequest{Name: "emea", JoinHash: store.HashSecret("join2")},
			func(t *testing.T, s *store.Store, idx uint64) {
				c, _ := s.Child(nil, "emea")
				tok, _ := s.Token(nil, "node1")
				if c.JoinTokenHash != store.HashSecret("join2") || c.NodeTokenID != "" || tok != nil || c.Cursor != 9 {
					t.Fatalf("after rotation: child %+v token %+v; want a new join token, no credential, the cursor kept", c, tok)
				}
			}},
		{ChildRemoveRequestType, &ChildRemoveRequest{Name: "emea"},
			func(t *testing.T, s *store.Store, idx uint64) {
				if tok, _ := s.Token(nil, "node1"); tok != nil {
					t.Fatal("node credential survived its child's removal")
				}
			}},
		{TombstonesCollectRequestType, &TombstonesCollectRequest{UpTo: 5}, nil},
		{PolicyPutRequestType, &PolicyPutRequest{Policy: testPolicy("p-1"), Audit: &store.AuditEntry{Action: "policy.create", Target: "policy p-1"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				p, _ := s.Policy(nil, "p-1")
				if p == nil || p.Origin != store.OriginLocal || p.CreateIndex != idx || s.PoliciesIndex(nil) != idx {
					t.Fatalf("policy %+v", p)
				}
				var audit []*store.AuditEntry
				s.Audit(nil, "", func(e *store.AuditEntry) bool { audit = append(audit, e); return true })
				if len(audit) != 1 || audit[0].Action != "policy.create" || audit[0].ModifyIndex != idx {
					t.Fatalf("audit %+v", audit)
				}
			}},
		{PolicyPutRequestType, &PolicyPutRequest{Policy: testPolicy("p-2")}, nil},
		{PolicyDeleteRequestType, &PolicyDeleteRequest{ID: "p-2", Audit: &store.AuditEntry{Action: "policy.delete"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if p, _ := s.Policy(nil, "p-2"); p != nil || s.PoliciesIndex(nil) != idx {
					t.Fatalf("deleted policy %+v, index %d", p, s.PoliciesIndex(nil))
				}
			}},
		{SettingDocPutRequestType, &SettingDocPutRequest{Doc: store.SettingDoc{Name: "assessment", Body: json.RawMessage(`{"scan_interval":"24h"}`), Origin: store.OriginLocal}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if d, _ := s.SettingDoc(nil, "assessment"); d == nil || s.SettingDocsIndex(nil) != idx {
					t.Fatalf("settings doc %+v", d)
				}
			}},
		{AuditAppendRequestType, &AuditAppendRequest{Entries: []*store.AuditEntry{{Action: "replicate-now", Target: "all children"}}},
			func(t *testing.T, s *store.Store, idx uint64) {
				n := 0
				s.Audit(nil, "", func(e *store.AuditEntry) bool { n++; return true })
				if n != 3 {
					t.Fatalf("audit entries = %d, want 3", n)
				}
			}},
		{ScansApplyRequestType, &ScansApplyRequest{Batch: mustScans([]store.Scan{
			{ComputerID: "pc-1", ScannedAt: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Cells: []store.ScanCell{{Update: "U1", State: store.StateRequired}}},
			{ComputerID: "pc-2", ScannedAt: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Cells: []store.ScanCell{{Update: "U1", State: store.StateInstalled}}},
		})}, func(t *testing.T, s *store.Store, idx uint64) {
			cv, _ := s.Compliance(nil)
			if cv.Site.Computers != 2 || cv.Site.Compliant != 1 || cv.Bulletin("B1") != (store.Counts{1, 1, 0, 0}) {
				t.Fatalf("compliance %+v, B1 %v", cv.Site, cv.Bulletin("B1"))
			}
		}},
		{RunsPruneRequestType, &RunsPruneRequest{Child: "emea", Keep: 1}, nil},
		{ChildSummaryPutRequestType, &ChildSummaryPutRequest{Summary: store.ChildSummary{Child: "apac", Seq: 1, Digest: "d1",
			Summary: json.RawMessage(`{"site":"apac"}`)}, Run: &store.ReplicationRun{ID: "sum1", Child: "apac", Scope: "compliance"}},
			func(t *testing.T, s *store.Store, idx uint64) {
				sums, _ := s.ChildSummaries(nil)
				if len(sums) != 1 || sums[0].Seq != 1 {
					t.Fatalf("summaries %+v", sums)
				}
			}},
		{SubtreeSummariesPutRequestType | IgnoreUnknownTypeFlag, &SubtreeSummariesPutRequest{Child: "apac", Keep: []string{"apac/jp"}, Prune: true,
			Rows: []*store.SubtreeSummary{{Path: "apac/jp", Child: "apac", Seq: 2, Digest: "d2", Summary: []byte(`{"site":"jp"}`)}}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if rows, _ := s.SubtreeSummaries(nil, "apac"); len(rows) != 1 || rows[0].Seq != 2 || rows[0].ModifyIndex != idx {
					t.Fatalf("subtree summaries %+v", rows)
				}
			}},
		{AuditedRequestType, &AuditedRequest{Type: TokenCreateRequestType, Body: mustJSON(&TokenCreateRequest{Token: testToken("aud2", store.RoleAuditor)}),
			Audit: &store.AuditEntry{Action: "token.create", Target: "token aud2", Actor: store.Actor{TokenID: "admin1", Role: store.RoleAdmin}}},
			func(t *testing.T, s *store.Store, idx uint64) {
				tok, _ := s.Token(nil, "aud2")
				var last *store.AuditEntry
				s.Audit(nil, "", func(e *store.AuditEntry) bool { last = e; return true })
				if tok == nil || tok.CreateIndex != idx || last == nil || last.Action != "token.create" || last.CreateIndex != idx {
					t.Fatalf("token %+v, last audit entry %+v: want both written by entry %d", tok, last, idx)
				}
			}},
		{CatalogStageRequestType, &CatalogStageRequest{RunID: "r3", Batch: mustJSONBatch(store.CatalogBatch{Tombstones: true,
			Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "U9", Title: "u9", Language: "de"}, Feed: "f", Hash: "h9"}},
		})}, nil},
		{CatalogPublishRequestType, &CatalogPublishRequest{RunID: "r3"}, publishedCheck("r3", false)},
		{CatalogUnpublishRequestType, &CatalogPublishRequest{RunID: "r3"}, publishedCheck("", false)},
		{CatalogPublishRequestType, &CatalogPublishRequest{RunID: "r3"}, publishedCheck("r3", false)},
		{CatalogSwitchRequestType, &CatalogCommitRequest{Run: store.ImportRun{ID: "r3", State: store.ImportSucceeded}},
			publishedCheck("", true)},
		// The row codec's entries: binary bodies, batches in the row codec.
		{CatalogPublishRowsRequestType, &runBatchEntry{RunID: "r4", Batch: mustBatch(store.CatalogBatch{Tombstones: true,
			Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: "U10", Title: "u10", Language: "de"}, Feed: "f", Hash: "h10"}},
		})}, func(t *testing.T, s *store.Store, idx uint64) {
			run, _ := s.Publishing()
			if u, _ := s.Update(nil, "U10"); run != "r4" || u != nil {
				t.Fatalf("publishing %q, U10 %+v: want r4 publishing, U10 hidden", run, u)
			}
		}},
		{CatalogSwitchRequestType, &CatalogCommitRequest{Run: store.ImportRun{ID: "r4", State: store.ImportSucceeded}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if u, _ := s.Update(nil, "U10"); u == nil || u.Title != "u10" || u.Hash != "h10" {
					t.Fatalf("U10 after the switch: %+v", u)
				}
			}},
		{CatalogStageRowsRequestType, &runBatchEntry{RunID: "r5", Batch: mustBatch(store.CatalogBatch{DeleteUpdates: []string{"U10"}})},
			func(t *testing.T, s *store.Store, idx uint64) {
				if runs, _ := s.StagedRuns(); len(runs) != 1 || runs[0] != "r5" {
					t.Fatalf("staged runs %v, want r5", runs)
				}
			}},
		{CatalogCommitRequestType, &CatalogCommitRequest{Run: store.ImportRun{ID: "r5", State: store.ImportSucceeded}},
			func(t *testing.T, s *store.Store, idx uint64) {
				if u, _ := s.Update(nil, "U10"); u != nil {
					t.Fatalf("U10 after its removal was committed: %+v", u)
				}
			}},
	}
}

// publishedCheck checks the publish of run r3 (U9): which run is publishing, and whether U9 is
// visible (only after the switch, which sets the catalog version).
func publishedCheck(publishing string, visible bool) func(*testing.T, *store.Store, uint64) {
	return func(t *testing.T, s *store.Store, idx uint64) {
		run, _ := s.Publishing()
		u, _ := s.Update(nil, "U9")
		info, _ := s.Catalog(nil)
		// The version is the first publish entry's index, which stamps U9.
		if run != publishing || (u != nil) != visible || (visible && (info.Version != idx-1 || u.ModifyIndex != info.Version)) {
			t.Fatalf("publishing %q, U9 %+v, catalog %+v at %d: want publishing %q, visible %v", run, u, info, idx, publishing, visible)
		}
	}
}

func mustScans(scans []store.Scan) []byte {
	buf, err := store.EncodeScans(scans)
	if err != nil {
		panic(err)
	}
	return buf
}

func testPolicy(id string) store.Policy {
	return store.Policy{Origin: store.OriginLocal, PolicySpec: store.PolicySpec{ID: id, Name: "n " + id, Folder: "Default",
		Bulletins: []string{"B1"}, Updates: []store.PolicyUpdate{{ID: "U1", Bulletin: "B1", Language: "de", Enabled: true}}, Run: store.RunAgentDefault}}
}

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) json.RawMessage {
	buf, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return buf
}

func mustBatch(b store.CatalogBatch) []byte {
	buf, err := store.EncodeBatch(&b)
	if err != nil {
		panic(err)
	}
	return buf
}

// mustJSONBatch encodes a batch as releases before the row codec did: zstd over JSON.
func mustJSONBatch(b store.CatalogBatch) []byte {
	js, err := json.Marshal(&b)
	if err != nil {
		panic(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(js, nil)
}

func applySteps(t *testing.T, f *FSM) {
	t.Helper()
	for i, step := range fsmSteps() {
		idx := uint64(i + 1)
		if resp, isErr := f.Apply(makeLog(t, idx, step.mt, step.req)).(error); isErr && resp != nil {
			t.Fatalf("step %d (%s): %v", i, step.mt, resp)
		}
		if step.check != nil {
			step.check(t, f.State(), idx)
		}
	}
}

func TestFSMAppliesEveryMessageType(t *testing.T) {
	f := testFSM(t)
	applySteps(t, f)

	covered := map[MessageType]bool{}
	for _, s := range fsmSteps() {
		covered[s.mt&^IgnoreUnknownTypeFlag] = true
	}
	for mt := MessageType(1); !strings.HasPrefix(mt.String(), "message-type-"); mt++ {
		if !covered[mt] {
			t.Errorf("message type %s has no FSM test step", mt)
		}
	}
	if got := f.State().LatestIndex(); got != uint64(len(fsmSteps())) {
		t.Fatalf("latest index = %d, want %d", got, len(fsmSteps()))
	}
}

func TestFSMRejectedRequestChangesNothing(t *testing.T) {
	f := testFSM(t)
	applySteps(t, f)
	before := digest(t, f.State())
	next := uint64(len(fsmSteps()) + 1)
	bad := []struct {
		name string
		mt   MessageType
		req  any
	}{
		{"second site init", SiteInitRequestType, &SiteInitRequest{
			Site:       store.SiteInfo{SiteID: "s2", Name: "other", Role: RoleChild},
			AdminToken: testToken("admin2", store.RoleAdmin)}},
		{"duplicate token", TokenCreateRequestType, &TokenCreateRequest{Token: testToken("aud1", store.RoleAuditor)}},
		{"unknown role", TokenCreateRequestType, &TokenCreateRequest{Token: testToken("x", store.Role("root"))}},
		{"delete missing token", TokenDeleteRequestType, &TokenDeleteRequest{ID: "nope"}},
		{"policy from a stale read", PolicyPutRequestType, func() *PolicyPutRequest {
			p := testPolicy("p-1")
			p.ModifyIndex = 1
			return &PolicyPutRequest{Policy: p}
		}()},
		{"delete missing policy", PolicyDeleteRequestType, &PolicyDeleteRequest{ID: "p-404"}},
		{"setting without key", SettingPutRequestType, &SettingPutRequest{Value: json.RawMessage(`1`)}},
		{"server without api", ServerUpsertRequestType, &ServerUpsertRequest{Server: store.Server{ID: "n3"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.Apply(makeLog(t, next, tc.mt, tc.req))
			if _, ok := resp.(error); !ok {
				t.Fatalf("response = %v, want an error", resp)
			}
			if after := digest(t, f.State()); after != before {
				t.Fatal("state changed by a rejected request")
			}
		})
	}
}

// testOnlyType is a message type no build knows, standing for one a newer leader writes.
const testOnlyType MessageType = 127

func TestFSMUnknownTypes(t *testing.T) {
	t.Run("ignorable is skipped", func(t *testing.T) {
		f := testFSM(t)
		applySteps(t, f)
		before, index := digest(t, f.State()), f.State().LatestIndex()
		next := f.AppliedIndex() + 1
		resp := f.Apply(makeLog(t, next, testOnlyType|IgnoreUnknownTypeFlag, map[string]any{"new": "field"}))
		if resp != nil {
			t.Fatalf("response = %v, want nil", resp)
		}
		if digest(t, f.State()) != before || f.State().LatestIndex() != index {
			t.Fatal("a skipped entry changed the state")
		}
		if f.SkippedEntries() != 1 {
			t.Fatalf("skipped = %d, want 1", f.SkippedEntries())
		}
		if f.AppliedIndex() != next {
			t.Fatalf("applied index = %d, want %d", f.AppliedIndex(), next)
		}
		// The next known entry applies as usual.
		tok := testToken("after", store.RoleAuditor)
		if resp := f.Apply(makeLog(t, next+1, TokenCreateRequestType, &TokenCreateRequest{Token: tok})); resp != nil {
			t.Fatal(resp)
		}
	})
	t.Run("not ignorable stops the server", func(t *testing.T) {
		f := testFSM(t)
		var stopped error
		f.stop = func(err error) { stopped = err; panic("stopped") }
		func() {
			defer func() {
				if r := recover(); r != "stopped" {
					t.Fatalf("recovered %v, want the stop hook to run", r)
				}
			}()
			f.Apply(makeLog(t, 7, testOnlyType, map[string]any{}))
		}()
		if !errors.Is(stopped, ErrUnknownEntryType) {
			t.Fatalf("stop error = %v, want ErrUnknownEntryType", stopped)
		}
		for _, want := range []string{"raft log 7", "type 127", "upgrade it"} {
			if !strings.Contains(stopped.Error(), want) {
				t.Errorf("message %q lacks %q", stopped, want)
			}
		}
		if f.SkippedEntries() != 0 || f.AppliedIndex() != 0 {
			t.Fatalf("skipped %d, applied %d after a refused entry", f.SkippedEntries(), f.AppliedIndex())
		}
	})
	t.Run("known types never carry the flag", func(t *testing.T) {
		for mt := MessageType(1); mt <= ChildRotateRequestType; mt++ {
			if mt&IgnoreUnknownTypeFlag != 0 || strings.HasPrefix(mt.String(), "message-type-") {
				t.Errorf("type %d (%s)", mt, mt)
			}
		}
	})
}

func TestFSMCorruptEntryPanics(t *testing.T) {
	f := testFSM(t)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an undecodable entry")
		}
	}()
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(TokenCreateRequestType), '['}})
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func snapshotOf(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func digest(t *testing.T, s *store.Store) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

func TestFSMSnapshotRestoreRoundTrip(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	buf := snapshotOf(t, src)
	if bytes.Contains(buf, []byte("secret_hash")) {
		t.Fatal("snapshot is not compressed")
	}

	dst := testFSM(t)
	old := dst.State()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(buf))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.AbandonCh():
	default:
		t.Fatal("old store not abandoned on restore")
	}
	want, _ := src.State().Digest()
	got, _ := dst.State().Digest()
	if got.Digest != want.Digest {
		t.Fatalf("digest after restore differs:\n got %+v\nwant %+v", got.Tables, want.Tables)
	}
	// Every table round-trips row for row, Raft indexes included.
	for name, table := range want.Tables {
		if got.Tables[name] != table {
			t.Errorf("table %s: got %+v, want %+v", name, got.Tables[name], table)
		}
	}
	tok, _ := dst.State().Token(nil, "aud1")
	if tok == nil || tok.CreateIndex != 2 || !tok.SecretMatches("secret-aud1") {
		t.Fatalf("restored token = %+v", tok)
	}
	if dst.AppliedIndex() != src.AppliedIndex() || dst.AppliedIndex() == 0 {
		t.Fatalf("applied index after restore = %d, want %d", dst.AppliedIndex(), src.AppliedIndex())
	}
}

// A snapshot from a build without the applied-index frame still restores; the applied index is
// then the state's latest index.
func TestFSMRestoreWithoutAppliedFrame(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	buf := snapshotOf(t, src)[8+appliedFrameSize:]
	dst := testFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(buf))); err != nil {
		t.Fatal(err)
	}
	if digest(t, dst.State()) != digest(t, src.State()) {
		t.Fatal("digest differs")
	}
	if dst.AppliedIndex() != src.State().LatestIndex() {
		t.Fatalf("applied index = %d, want %d", dst.AppliedIndex(), src.State().LatestIndex())
	}
}

func TestFSMRestoreRemovesExtraRows(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	buf := snapshotOf(t, src)

	dst := testFSM(t)
	extra := []fsmStep{
		{TokenCreateRequestType, &TokenCreateRequest{Token: testToken("extra", store.RoleAdmin)}, nil},
		{LanguagesSetRequestType, &LanguagesSetRequest{ID: "other", Ranges: []string{"ja"}}, nil},
		{SettingPutRequestType, &SettingPutRequest{Key: "extra", Value: json.RawMessage(`1`)}, nil},
		{ServerUpsertRequestType, &ServerUpsertRequest{Server: store.Server{ID: "x", RaftAddr: "a", APIAddr: "b"}}, nil},
	}
	for i, step := range extra {
		if resp := dst.Apply(makeLog(t, uint64(100+i), step.mt, step.req)); resp != nil {
			t.Fatal(resp)
		}
	}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(buf))); err != nil {
		t.Fatal(err)
	}
	if got, want := digest(t, dst.State()), digest(t, src.State()); got != want {
		t.Fatal("restore did not replace the whole state")
	}
	if tok, _ := dst.State().Token(nil, "extra"); tok != nil {
		t.Fatal("extra token survived restore")
	}
	if got := dst.State().LatestIndex(); got != src.State().LatestIndex() {
		t.Fatalf("index after restore = %d, want %d", got, src.State().LatestIndex())
	}
}

func TestFSMRestoreRejectsCorruptSnapshots(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	good := snapshotOf(t, src)
	cases := map[string][]byte{
		"empty":     {},
		"not zstd":  []byte("PTSNAP1\nhello"),
		"truncated": good[:len(good)/2],
	}
	for name, buf := range cases {
		t.Run(name, func(t *testing.T) {
			dst := testFSM(t)
			applySteps(t, dst)
			before := digest(t, dst.State())
			if err := dst.Restore(io.NopCloser(bytes.NewReader(buf))); err == nil {
				t.Fatal("corrupt snapshot restored")
			}
			if digest(t, dst.State()) != before {
				t.Fatal("failed restore changed the state")
			}
		})
	}
}

// A build that predates the applied-index frame restores by handing the stream straight to zstd;
// the decoder must skip the frame, so such a server can take a snapshot from a newer leader.
func TestFSMSnapshotReadableWithoutFrameSupport(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	dec, err := zstd.NewReader(bytes.NewReader(snapshotOf(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	restored, err := store.Restore(dec)
	if err != nil {
		t.Fatalf("previous build's restore path: %v", err)
	}
	if digest(t, restored) != digest(t, src.State()) {
		t.Fatal("digest differs")
	}
}
