package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/replication/policy"
	"patchtree/store"
)

// fakeBackend implements Backend over a real store, applying writes directly with increasing
// indexes: no Raft, so handler tests are fast and deterministic.
type fakeBackend struct {
	mu  sync.Mutex
	s   *store.Store
	idx uint64
	// notReady and follower make the fake a starting server or a follower.
	notReady, follower bool
}

func newFake(t *testing.T) *fakeBackend {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{s: s}
	admin := store.Token{ID: "admin", SecretHash: store.HashSecret("s-admin"), Role: store.RoleAdmin}
	err = s.InitSite(f.next(), &store.SiteInfo{SiteID: "site1", Name: "hq", Role: node.RoleParent}, &admin, []string{"en"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.Role{store.RoleRollout, store.RoleAuditor, store.RoleAgent} {
		tok := store.Token{ID: string(r), SecretHash: store.HashSecret("s-" + string(r)), Role: r}
		if err := s.CreateToken(f.next(), &tok); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// bearer is the bearer string of the fake's token for role.
func bearer(r store.Role) string { return fmt.Sprintf("%s.s-%s", r, r) }

func (f *fakeBackend) next() uint64 { f.idx++; return f.idx }

func (f *fakeBackend) ID() string                          { return "fake" }
func (f *fakeBackend) State() *store.Store                 { return f.s }
func (f *fakeBackend) Ready() bool                         { return !f.notReady }
func (f *fakeBackend) WaitReady(ctx context.Context) error { return nil }
func (f *fakeBackend) NotReady() error {
	if f.notReady {
		return fmt.Errorf("%w: this server has not applied the site's log through the commit index it learned from the leader (the fake is starting)", node.ErrNotReady)
	}
	return nil
}
func (f *fakeBackend) IsLeader() bool { return !f.follower }
func (f *fakeBackend) WaitLeader(ctx context.Context) (string, error) {
	return "", fmt.Errorf("fake always leads")
}

func (f *fakeBackend) Status() (*node.Status, error) {
	return &node.Status{Name: "hq", Role: node.RoleParent, NodeID: "fake", Index: f.s.LatestIndex(), Ready: !f.notReady}, nil
}

func (f *fakeBackend) Servers() ([]node.ServerStatus, error) {
	rows, err := f.s.Servers(nil)
	out := []node.ServerStatus{}
	for _, r := range rows {
		out = append(out, node.ServerStatus{ID: r.ID, RaftAddr: r.RaftAddr, APIAddr: r.APIAddr})
	}
	return out, err
}

func (f *fakeBackend) CreateToken(_ store.Actor, role store.Role, name string) (*node.CreatedToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if role == store.RoleNode {
		return nil, fmt.Errorf("role node: %w", store.ErrInvalid)
	}
	id := fmt.Sprintf("t%d", f.idx+1)
	tok := store.Token{ID: id, SecretHash: store.HashSecret("x"), Role: role, Name: name, CreateTime: time.Unix(0, 0)}
	idx := f.next()
	if err := f.s.CreateToken(idx, &tok); err != nil {
		return nil, err
	}
	return &node.CreatedToken{Token: tok, Bearer: id + ".x", Index: idx}, nil
}

func (f *fakeBackend) DeleteToken(_ store.Actor, id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.DeleteToken(idx, id)
}

func (f *fakeBackend) SetLanguages(_ store.Actor, ranges []string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.SetLanguages(idx, store.LanguagesSite, ranges)
}

func (f *fakeBackend) AddServer(_ store.Actor, req node.JoinRequest, allowNew bool) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.UpsertServer(idx, &store.Server{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr})
}

func (f *fakeBackend) IssueServerTLS(id string) (*node.SiteTLS, error) {
	if id == "" {
		return nil, fmt.Errorf("server id is required: %w", store.ErrInvalid)
	}
	return &node.SiteTLS{CACertPEM: []byte("ca"), CAKeyPEM: []byte("ca key"), ServerCertPEM: []byte("cert " + id), ServerKeyPEM: []byte("key")}, nil
}

func (f *fakeBackend) RemoveServer(_ store.Actor, id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.DeleteServer(idx, id)
}

func (f *fakeBackend) ChangeSeverityLevels(_ store.Actor, c store.SeverityChange) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.ChangeSeverityLevels(idx, &c)
}

func (f *fakeBackend) SetBulletinAdmin(_ store.Actor, id string, sev *string, disabled *bool) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.SetBulletinAdmin(idx, id, sev, disabled)
}

// addBulletin puts one bulletin with one update into the fake's catalog.
func (f *fakeBackend) addBulletin(t *testing.T, id string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	run := "run-" + id
	b := &store.Bulletin{BulletinContent: store.BulletinContent{ID: id, Title: "t " + id, UpdateIDs: []string{id + "-u"}}, Feed: "f"}
	u := &store.Update{UpdateContent: store.UpdateContent{ID: id + "-u", Title: "u", Language: "de"}, Feed: "f"}
	raw, _ := store.EncodeBatch(&store.CatalogBatch{Bulletins: []*store.Bulletin{b}, Updates: []*store.Update{u}})
	if err := f.s.StageCatalog(f.next(), run, raw); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CommitCatalog(f.next(), &store.ImportRun{ID: run, State: store.ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeBackend) AddChild(_ store.Actor, name string) (*node.EnrolledChild, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := store.Child{Name: name, JoinTokenHash: store.HashSecret("join-" + name)}
	idx := f.next()
	return &node.EnrolledChild{Child: c, JoinToken: "j." + "join-" + name, Index: idx}, f.s.AddChild(idx, &c)
}

func (f *fakeBackend) RemoveChild(_ store.Actor, name string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.RemoveChild(idx, name)
}

func (f *fakeBackend) RotateChild(_ store.Actor, name string) (*node.RotatedChild, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return &node.RotatedChild{Name: name, JoinToken: "j.rotated-" + name, Index: idx}, f.s.RotateChild(idx, name, store.HashSecret("rotated-"+name))
}

func (f *fakeBackend) PutSetting(key string, v any) (uint64, error) {
	return f.PutSettingAs(store.Actor{}, "", key, v)
}

func (f *fakeBackend) PutSettingAs(_ store.Actor, _, key string, v any) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	buf, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	idx := f.next()
	return idx, f.s.PutSetting(idx, key, buf)
}

func (f *fakeBackend) CreatePolicy(actor store.Actor, in policy.Input) (*store.Policy, error) {
	v, err := f.s.CatalogView(nil)
	if err != nil {
		return nil, err
	}
	p, err := policy.Create(v, policy.NewID(), in, time.Now().UTC(), actor.String())
	if err != nil {
		return nil, err
	}
	return f.putPolicy(p)
}

func (f *fakeBackend) UpdatePolicy(actor store.Actor, id string, in policy.Input) (*store.Policy, error) {
	old, err := f.s.Policy(nil, id)
	if err != nil || old == nil {
		return nil, fmt.Errorf("policy %q: %w", id, store.ErrNotFound)
	}
	v, _ := f.s.CatalogView(nil)
	p, err := policy.Patch(v, old, in, time.Now().UTC(), actor.String())
	if err != nil {
		return nil, err
	}
	return f.putPolicy(p)
}

func (f *fakeBackend) putPolicy(p *store.Policy) (*store.Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.s.PutPolicy(f.next(), p, nil); err != nil {
		return nil, err
	}
	return f.s.Policy(nil, p.ID)
}

func (f *fakeBackend) DeletePolicy(actor store.Actor, id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.next()
	return idx, f.s.DeletePolicy(idx, id, nil)
}

func (f *fakeBackend) PutSettingDoc(actor store.Actor, name string, body []byte) (*store.SettingDoc, error) {
	canon, err := policy.ParseSettings(name, body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &store.SettingDoc{Name: name, Body: canon, Origin: store.OriginLocal}
	return d, f.s.PutSettingDoc(f.next(), d, nil)
}

func (f *fakeBackend) Audit(actor store.Actor, action, target string, detail any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s.AppendAudit(f.next(), []*store.AuditEntry{{Actor: actor, Action: action, Target: target}})
}

func (f *fakeBackend) ApplyScans(scans []store.Scan) (*store.ScanOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s.ApplyScans(f.next(), scans)
}

// fakeHierarchy answers the parent side of the protocol without children.
type fakeHierarchy struct{}

func (fakeHierarchy) Join(req hierarchy.JoinRequest) (*hierarchy.JoinResponse, error) {
	return &hierarchy.JoinResponse{NodeToken: "n.x"}, nil
}

func (fakeHierarchy) ReportLanguages(child string, rep hierarchy.LanguageReport) (*hierarchy.LanguageReportResponse, error) {
	if rep.Child != "" && rep.Child != child {
		return nil, hierarchy.ErrWrongChild
	}
	return &hierarchy.LanguageReportResponse{}, nil
}

func (fakeHierarchy) Pull(ctx context.Context, req hierarchy.PullRequest) (*hierarchy.RunPlan, error) {
	return nil, nil
}

func (fakeHierarchy) Ack(child string, ack hierarchy.Ack) (*hierarchy.AckResponse, error) {
	return &hierarchy.AckResponse{Verified: true}, nil
}

func (fakeHierarchy) Alerts() ([]hierarchy.Alert, error) { return nil, nil }

func (fakeHierarchy) ReplicateNow(req hierarchy.NowRequest) ([]string, error) {
	return req.Children, nil
}

func (fakeHierarchy) WaitRuns(ctx context.Context, children []string, since time.Time) (map[string]*store.ReplicationRun, error) {
	return nil, nil
}

func (fakeHierarchy) Status(only string) ([]hierarchy.ChildStatus, error) {
	return []hierarchy.ChildStatus{{Name: "c1"}}, nil
}

func (fakeHierarchy) RulesChanged() {}

func (fakeHierarchy) ChildRotated(child string) {}

func (fakeHierarchy) ReceiveSummary(child string, rep hierarchy.SummaryReport, wire, raw int64) (*hierarchy.SummaryAnswer, error) {
	if rep.Child != "" && rep.Child != child {
		return nil, hierarchy.ErrWrongChild
	}
	return &hierarchy.SummaryAnswer{Accepted: true, Seq: rep.Seq}, nil
}

// fakeImporter answers imports without running them.
type fakeImporter struct{}

func (fakeImporter) Start(req importer.Request) (*importer.Progress, error) {
	return &importer.Progress{ImportRun: store.ImportRun{ID: "run1", Source: req.Source, State: store.ImportRunning}}, nil
}

func (fakeImporter) Run(id string) (*importer.Progress, error) {
	return &importer.Progress{ImportRun: store.ImportRun{ID: id, State: store.ImportSucceeded}}, nil
}

func (fakeImporter) Runs() ([]*importer.Progress, error) { return nil, nil }

func (fakeImporter) Upload(req importer.Request, name string, _ int64, body io.Reader) (*importer.Progress, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, err
	}
	req.Source = "upload-" + name
	return fakeImporter{}.Start(req)
}

func (fakeImporter) Cancel(ctx context.Context, id string) (*importer.Progress, error) {
	return &importer.Progress{ImportRun: store.ImportRun{ID: id, State: store.ImportCancelled}}, nil
}

func (fakeHierarchy) RootRanges() ([]string, error) { return []string{"en"}, nil }

func (fakeHierarchy) Tree() (*hierarchy.Tree, error) {
	return &hierarchy.Tree{Sites: []hierarchy.TreeSite{}}, nil
}

func (fakeHierarchy) WaitCascade(ctx context.Context, id string, children []string) ([]hierarchy.SiteResult, error) {
	return []hierarchy.SiteResult{}, nil
}

func (fakeHierarchy) SitePath() (string, error) { return "hq", nil }
