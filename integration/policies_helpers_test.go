package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the policy and settings replication tests (policies_test.go), prefixed pol* so that
// they do not collide with the other test files of the package. A child's expected policies are
// computed from the parent's policies (GET /v1/policies at the parent) with the test's own RFC
// 4647 matcher (hierKeeps); nothing is taken from the server's code.

// polUpdate is one entry of a policy's updates.
type polUpdate struct {
	ID       string `json:"id"`
	Bulletin string `json:"bulletin"`
	Language string `json:"language"`
	Enabled  bool   `json:"enabled"`
}

// polPolicy is a policy as GET/POST/PATCH /v1/policies answer it; Raw keeps every field.
type polPolicy struct {
	ID                         string      `json:"id"`
	Name                       string      `json:"name"`
	Description                string      `json:"description"`
	Folder                     string      `json:"folder"`
	Bulletins                  []string    `json:"bulletins"`
	Updates                    []polUpdate `json:"updates"`
	Enabled                    bool        `json:"enabled"`
	Run                        string      `json:"run"`
	OverrideMaintenanceWindows bool        `json:"override_maintenance_windows"`
	AllowImmediateRestart      bool        `json:"allow_immediate_restart"`
	Revision                   int         `json:"revision"`
	Origin                     string      `json:"origin"`
	CreatedAt                  time.Time   `json:"created_at"`
	UpdatedAt                  time.Time   `json:"updated_at"`
	CreatedBy                  string      `json:"created_by"`
	UpdatedBy                  string      `json:"updated_by"`
	Raw                        map[string]any
}

func (p polPolicy) String() string {
	return fmt.Sprintf("%s %q folder %q bulletins %v, %d updates, enabled %t, run %q, revision %d, origin %s",
		p.ID, p.Name, p.Folder, p.Bulletins, len(p.Updates), p.Enabled, p.Run, p.Revision, p.Origin)
}

// polDecode decodes one policy into both its typed and its raw form.
func polDecode(t *testing.T, what string, raw []byte) polPolicy {
	t.Helper()
	var p polPolicy
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("%s: decode policy %s: %v", what, raw, err)
	}
	if err := json.Unmarshal(raw, &p.Raw); err != nil {
		t.Fatalf("%s: decode policy %s: %v", what, raw, err)
	}
	return p
}

// polList is GET /v1/policies[?query] with token.
func polList(t *testing.T, p *proc, token, query string) []polPolicy {
	t.Helper()
	u := p.url + "/v1/policies"
	if query != "" {
		u += "?" + query
	}
	var l struct {
		Policies []json.RawMessage `json:"policies"`
	}
	doJSON(t, "GET", u, token, nil, 200, &l)
	out := make([]polPolicy, 0, len(l.Policies))
	for _, r := range l.Policies {
		out = append(out, polDecode(t, "GET "+u, r))
	}
	return out
}

// polByID indexes policies by id.
func polByID(ps []polPolicy) map[string]polPolicy {
	out := make(map[string]polPolicy, len(ps))
	for _, p := range ps {
		out[p.ID] = p
	}
	return out
}

// polWrite sends a policy write and requires status want; it returns the decoded policy.
func polWrite(t *testing.T, method, u, token string, body any, want int) polPolicy {
	t.Helper()
	raw := doJSONRaw(t, method, u, token, body, want, nil)
	return polDecode(t, method+" "+u, raw)
}

var polIDPattern = regexp.MustCompile(`^p-[0-9a-f]{12}$`)

// polFilter is a parent policy as a child managing ranges must hold it: the updates whose
// language the ranges match (language-neutral ones always), the bulletins with at least one of
// them in the parent's order, every other field as it is.
func polFilter(raw map[string]any, ranges []string) map[string]any {
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		out[k] = v
	}
	keptU := []any{}
	keepB := map[string]bool{}
	ups, _ := raw["updates"].([]any)
	for _, u := range ups {
		m, _ := u.(map[string]any)
		lang, _ := m["language"].(string)
		if hierKeeps(ranges, lang) {
			keptU = append(keptU, u)
			b, _ := m["bulletin"].(string)
			keepB[b] = true
		}
	}
	keptB := []any{}
	bs, _ := raw["bulletins"].([]any)
	for _, b := range bs {
		if s, _ := b.(string); keepB[s] {
			keptB = append(keptB, b)
		}
	}
	out["updates"], out["bulletins"] = keptU, keptB
	return out
}

// polSiteFields are the fields a site stamps for itself and the comparison ignores.
var polSiteFields = []string{"origin", "create_index", "modify_index", "parent_index"}

// polCanon is a record's canonical JSON without the site's own fields; absent or null
// updates/bulletins count as empty lists.
func polCanon(raw map[string]any) string {
	m := make(map[string]any, len(raw))
	for k, v := range raw {
		m[k] = v
	}
	for _, k := range polSiteFields {
		delete(m, k)
	}
	for _, k := range []string{"updates", "bulletins"} {
		if m[k] == nil {
			m[k] = []any{}
		}
	}
	return string(hierJSON(m))
}

// polFieldDiff names the fields (other than the site's own) where two records differ.
func polFieldDiff(want, got map[string]any) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for _, k := range polSiteFields {
		delete(keys, k)
	}
	var diffs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		w, g := string(hierJSON(want[k])), string(hierJSON(got[k]))
		if (k == "updates" || k == "bulletins") && (w == "null" || w == "[]") && (g == "null" || g == "[]") {
			continue
		}
		if w != g {
			if len(w) > 300 {
				w = w[:300] + "…"
			}
			if len(g) > 300 {
				g = g[:300] + "…"
			}
			diffs = append(diffs, fmt.Sprintf("%s: want %s, got %s", k, w, g))
		}
	}
	return strings.Join(diffs, "; ")
}

// polCheckChild compares a child's replicated policies with the parent's, filtered to the
// child's ranges. It returns whether they agree and, if not, why.
func polCheckChild(t *testing.T, parent, child *proc, ranges []string) (bool, string) {
	t.Helper()
	want := map[string]map[string]any{}
	for _, p := range polList(t, parent, parent.token, "") {
		if p.Origin != "local" {
			return false, fmt.Sprintf("parent lists policy %s with origin %q, want local", p.ID, p.Origin)
		}
		want[p.ID] = polFilter(p.Raw, ranges)
	}
	got := map[string]polPolicy{}
	for _, p := range polList(t, child, child.token, "origin=parent") {
		if p.Origin != "parent" {
			return false, fmt.Sprintf("%s: GET /v1/policies?origin=parent lists %s with origin %q", child.name, p.ID, p.Origin)
		}
		got[p.ID] = p
	}
	var missing, extra, differ []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case polCanon(w) != polCanon(g.Raw):
			differ = append(differ, id+" ("+polFieldDiff(w, g.Raw)+")")
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(extra)+len(differ) == 0 {
		return true, ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	return false, fmt.Sprintf("%s %v: %d parent policies, %d replicated; missing %d %v; unexpected %d %v; different %d, e.g. %v",
		child.name, ranges, len(want), len(got), len(missing), missing[:min(5, len(missing))], len(extra), extra[:min(5, len(extra))],
		len(differ), differ[:min(2, len(differ))])
}

// polEventually polls cond every interval until it holds; on timeout it reports the last reason
// with t.Errorf and returns false.
func polEventually(t *testing.T, timeout, interval time.Duration, cond func() (bool, string)) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, reason := cond()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("not reached within %v: %s", timeout, reason)
			return false
		}
		time.Sleep(interval)
	}
}

// polSection is the policies or settings section of a replication run.
type polSection struct {
	Mode        string   `json:"mode"`
	Trigger     string   `json:"trigger"`
	Folders     []string `json:"folders"`
	IDs         []string `json:"ids"`
	From        uint64   `json:"from"`
	To          uint64   `json:"to"`
	Records     int      `json:"records"`
	Deletes     int      `json:"deletes"`
	Verified    bool     `json:"verified"`
	Digest      string   `json:"digest"`
	ChildDigest string   `json:"child_digest"`
}

// polRun is a replication run with its policies and settings sections.
type polRun struct {
	ID        string      `json:"id"`
	Child     string      `json:"child"`
	Scope     string      `json:"scope"`
	Mode      string      `json:"mode"`
	Trigger   string      `json:"trigger"`
	From      uint64      `json:"from"`
	To        uint64      `json:"to"`
	Records   int         `json:"records"`
	Deletes   int         `json:"deletes"`
	StartedAt time.Time   `json:"started_at"`
	Verified  bool        `json:"verified"`
	Error     string      `json:"error"`
	Policies  *polSection `json:"policies"`
	Settings  *polSection `json:"settings"`
}

func (r polRun) String() string {
	s := fmt.Sprintf("run %s to %s: scope %q, catalog %s/%s %d→%d %d records %d deletes, verified %t",
		r.ID, r.Child, r.Scope, r.Mode, r.Trigger, r.From, r.To, r.Records, r.Deletes, r.Verified)
	if r.Policies != nil {
		s += fmt.Sprintf("; policies %+v", *r.Policies)
	}
	if r.Settings != nil {
		s += fmt.Sprintf("; settings %+v", *r.Settings)
	}
	if r.Error != "" {
		s += "; error " + r.Error
	}
	return s
}

// polScopes splits a run's scope ("catalog+policies+settings").
func (r polRun) polScopes() []string {
	if r.Scope == "" {
		return nil
	}
	return strings.Split(r.Scope, "+")
}

// polRuns is GET /v1/replication/runs?child=NAME.
func polRuns(t *testing.T, parent *proc, child string) []polRun {
	t.Helper()
	var l struct {
		Runs []polRun `json:"runs"`
	}
	doJSON(t, "GET", parent.url+"/v1/replication/runs?limit=100000&child="+url.QueryEscape(child), parent.token, nil, 200, &l)
	return l.Runs
}

// polNowResp is POST /v1/replication/now.
type polNowResp struct {
	Children []string `json:"children"`
	Results  []struct {
		Child    string  `json:"child"`
		Done     bool    `json:"done"`
		Verified bool    `json:"verified"`
		Run      *polRun `json:"run"`
		Error    string  `json:"error"`
	} `json:"results"`
}

// polPost sends a request that may take long (replicate now with wait) with the long client.
func polPost(t *testing.T, method, u, token string, body any) (int, []byte) {
	t.Helper()
	buf := hierJSON(body)
	req, _ := http.NewRequest(method, u, bytes.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hierLongClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", method, u, buf, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s %s: read body: %v", method, u, buf, err)
	}
	return resp.StatusCode, raw
}

// polReplicateNow is POST /v1/replication/now with wait: every targeted child must apply and
// verify its run. It returns the runs by child.
func polReplicateNow(t *testing.T, parent *proc, token string, body map[string]any) map[string]polRun {
	t.Helper()
	body["wait"] = true
	if _, ok := body["timeout"]; !ok {
		body["timeout"] = "60s"
	}
	start := time.Now()
	st, raw := polPost(t, "POST", parent.url+"/v1/replication/now", token, body)
	var ans polNowResp
	if st != 200 || json.Unmarshal(raw, &ans) != nil || len(ans.Children) == 0 || len(ans.Results) != len(ans.Children) {
		t.Fatalf("POST /v1/replication/now %s: status %d, body %s; want 200 with a result per targeted child", hierJSON(body), st, raw)
	}
	out := map[string]polRun{}
	for _, r := range ans.Results {
		if !r.Done || !r.Verified || r.Run == nil || r.Error != "" {
			t.Fatalf("replicate now %s: child %s: done %t verified %t error %q run %+v; want done and verified",
				hierJSON(body), r.Child, r.Done, r.Verified, r.Error, r.Run)
		}
		if r.Run.Child != r.Child || !r.Run.Verified {
			t.Errorf("replicate now %s: child %s: %v; want a verified run of that child", hierJSON(body), r.Child, *r.Run)
		}
		out[r.Child] = *r.Run
		t.Logf("replicate now → %v", *r.Run)
	}
	t.Logf("replicate now %s answered in %v", hierJSON(body), time.Since(start).Round(time.Millisecond))
	return out
}

// polAuditEntry is one entry of GET /v1/audit.
type polAuditEntry struct {
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Actor struct {
		TokenID string `json:"token_id"`
		Name    string `json:"name"`
		Role    string `json:"role"`
	} `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail"`
}

func (e polAuditEntry) String() string {
	return fmt.Sprintf("%s %s %s %q by %s/%s", e.Key, e.At.Format(time.RFC3339), e.Action, e.Target, e.Actor.Role, e.Actor.Name)
}

// polAudit reads the whole audit log (paged with since/next) with token.
func polAudit(t *testing.T, p *proc, token string) []polAuditEntry {
	t.Helper()
	var out []polAuditEntry
	since := ""
	for page := 0; page < 1000; page++ {
		var l struct {
			Entries []polAuditEntry `json:"entries"`
			Next    string          `json:"next"`
		}
		doJSON(t, "GET", p.url+"/v1/audit?limit=500&since="+url.QueryEscape(since), token, nil, 200, &l)
		out = append(out, l.Entries...)
		if len(l.Entries) == 0 || l.Next == "" || l.Next == since {
			return out
		}
		since = l.Next
	}
	t.Fatalf("GET /v1/audit: more than 1000 pages")
	return nil
}

// polExpect is an audited action the test did: who (role; "*" for any), what (kind) and on
// what (target; "" for any non-empty one).
type polExpect struct {
	Role, Kind, Target string
}

// polAuditBook collects the actions the test expects in the audit log.
type polAuditBook struct {
	mu  sync.Mutex
	exp []polExpect
}

func (b *polAuditBook) add(role, kind, target string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.exp = append(b.exp, polExpect{role, kind, target})
}

// polActionKind classifies an audit action: policy-create, policy-update, policy-delete,
// settings, replicate, or "" for anything else.
func polActionKind(action string) string {
	a := strings.ToLower(action)
	switch {
	case strings.Contains(a, "replicat"):
		return "replicate"
	case strings.Contains(a, "setting"):
		return "settings"
	case strings.Contains(a, "polic") && strings.Contains(a, "revis"):
		return "policy-revise"
	case strings.Contains(a, "polic") && strings.Contains(a, "creat"):
		return "policy-create"
	case strings.Contains(a, "polic") && (strings.Contains(a, "delet") || strings.Contains(a, "remov")):
		return "policy-delete"
	case strings.Contains(a, "polic"):
		return "policy-update"
	}
	return ""
}

// polTargets reports whether an audit target names want (a policy id or a settings name): equal,
// or containing it as a word.
func polTargets(target, want string) bool {
	if want == "" {
		return target != ""
	}
	if target == want {
		return true
	}
	return regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(want) + `($|[^A-Za-z0-9-])`).MatchString(target)
}

// polMatchAudit finds the first entry matching e that is not used yet (-1: none).
func polMatchAudit(entries []polAuditEntry, used []bool, e polExpect) int {
	for i, a := range entries {
		if used[i] || e.Role != "*" && a.Actor.Role != e.Role || polActionKind(a.Action) != e.Kind || !polTargets(a.Target, e.Target) {
			continue
		}
		return i
	}
	return -1
}

// ---- feeds ----

// polNewUpdate is a feed update record for a test-made update.
func polNewUpdate(id, lang string) *hierRecU {
	u := &hierRecU{ID: id, Title: "Testfox " + id, Language: lang}
	rec := map[string]any{"id": id, "title": u.Title, "language": lang, "restart_required": true}
	if lang != "" {
		rec["file_name"], rec["url"], rec["command_line"] = "Testfox Setup.exe", "https://example.invalid/"+id, "/S"
	}
	u.raw = hierJSON(rec)
	return u
}

// polAddBulletin appends a bulletin with new updates {id, language} to the feed.
func polAddBulletin(f *hierFeed, id, title string, updates [][2]string) {
	b := &hierRecB{ID: id}
	for _, u := range updates {
		f.U = append(f.U, polNewUpdate(u[0], u[1]))
		b.UpdateIDs = append(b.UpdateIDs, u[0])
	}
	b.raw = hierJSON(map[string]any{"id": id, "vendor": "Mozilla", "title": title, "severity": "High",
		"released": "2026-01-01", "revised": "2026-01-01", "cves": []string{"CVE-2026-0001"}, "update_ids": b.UpdateIDs})
	f.B = append(f.B, b)
}

// polAddUpdate adds a new update to an existing bulletin of the feed (and to its update_ids).
func polAddUpdate(t *testing.T, f *hierFeed, bulletin, id, lang string) {
	t.Helper()
	for _, b := range f.B {
		if b.ID == bulletin {
			f.U = append(f.U, polNewUpdate(id, lang))
			b.UpdateIDs = append(slices.Clone(b.UpdateIDs), id)
			b.raw = hierSetField(b.raw, "update_ids", b.UpdateIDs)
			return
		}
	}
	t.Fatalf("feed has no bulletin %s", bulletin)
}

// polFeedIndex is what the tests look up in a feed: update languages, bulletins' update ids
// and titles.
type polFeedIndex struct {
	Lang    map[string]string
	Updates map[string][]string
	Title   map[string]string
	Order   []string // bulletin ids in feed order
}

func polIndex(t *testing.T, f *hierFeed) *polFeedIndex {
	t.Helper()
	x := &polFeedIndex{Lang: map[string]string{}, Updates: map[string][]string{}, Title: map[string]string{}}
	for _, u := range f.U {
		x.Lang[u.ID] = u.Language
	}
	for _, b := range f.B {
		var r struct {
			Title string `json:"title"`
		}
		if err := json.Unmarshal(b.raw, &r); err != nil {
			t.Fatal(err)
		}
		x.Updates[b.ID], x.Title[b.ID] = b.UpdateIDs, r.Title
		x.Order = append(x.Order, b.ID)
	}
	return x
}

// polExpectedUpdates are a policy's updates as the contract builds them from its bulletins:
// every update of every bulletin in order, enabled unless flags says otherwise.
func (x *polFeedIndex) polExpectedUpdates(bulletins []string, flag func(bulletin, id string) bool) []polUpdate {
	out := []polUpdate{}
	for _, b := range bulletins {
		for _, id := range x.Updates[b] {
			out = append(out, polUpdate{ID: id, Bulletin: b, Language: x.Lang[id], Enabled: flag(b, id)})
		}
	}
	return out
}

// polUniq drops repeated strings, keeping the first of each.
func polUniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// polSharedPair finds two bulletins (of ids) that list a common update.
func polSharedPair(t *testing.T, x *polFeedIndex, ids []string) []string {
	t.Helper()
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			if slices.ContainsFunc(x.Updates[a], func(u string) bool { return slices.Contains(x.Updates[b], u) }) {
				return []string{a, b}
			}
		}
	}
	t.Fatalf("no two bulletins of %v share an update", ids)
	return nil
}

// polUpdatesDiff describes how got differs from want (count and the first differing entries).
func polUpdatesDiff(want, got []polUpdate) string {
	var d []string
	for i := 0; i < max(len(want), len(got)) && len(d) < 5; i++ {
		var w, g any = "none", "none"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			d = append(d, fmt.Sprintf("#%d got %+v want %+v", i, g, w))
		}
	}
	return fmt.Sprintf("%d entries, want %d; %s", len(got), len(want), strings.Join(d, "; "))
}
