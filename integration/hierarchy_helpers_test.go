package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Helpers of the parent/child hierarchy tests (hierarchy_test.go). Everything here is prefixed
// hier* so that it does not collide with the other test files of the package. Expected views are
// computed from the feed files themselves, with the test's own RFC 4647 matcher: nothing is taken
// from the server's code.

// hierRun is a replication run as GET /v1/replication/runs and POST /v1/replication/now report it.
type hierRun struct {
	ID           string    `json:"id"`
	Child        string    `json:"child"`
	Mode         string    `json:"mode"`
	Trigger      string    `json:"trigger"`
	From         uint64    `json:"from"`
	To           uint64    `json:"to"`
	Records      int       `json:"records"`
	Deletes      int       `json:"deletes"`
	BytesWire    int64     `json:"bytes_wire"`
	BytesRaw     int64     `json:"bytes_raw"`
	StartedAt    time.Time `json:"started_at"`
	DurationMS   int64     `json:"duration_ms"`
	Verified     bool      `json:"verified"`
	ParentDigest string    `json:"parent_digest"`
	ChildDigest  string    `json:"child_digest"`
	Error        string    `json:"error"`
}

func (r hierRun) String() string {
	return fmt.Sprintf("%s %s/%s %d→%d: %d records, %d deletes, %d bytes wire / %d raw, %d ms, verified %t %s",
		r.Child, r.Mode, r.Trigger, r.From, r.To, r.Records, r.Deletes, r.BytesWire, r.BytesRaw, r.DurationMS, r.Verified, r.Error)
}

// hierChildStatus is one child of GET /v1/children.
type hierChildStatus struct {
	Name           string   `json:"name"`
	Joined         bool     `json:"joined"`
	Connected      bool     `json:"connected"`
	Ranges         []string `json:"ranges"`
	RangesReported bool     `json:"ranges_reported"`
	Cursor         uint64   `json:"cursor"`
	LagIndex       uint64   `json:"lag_index"`
	LastRun        *hierRun `json:"last_run"`
	Status         string   `json:"status"`
}

// hierAlert is one language alert of GET /v1/alerts.
type hierAlert struct {
	Child        string   `json:"child"`
	Range        string   `json:"range"`
	ParentRanges []string `json:"parent_ranges"`
	Message      string   `json:"message"`
}

// hierParentLink is the "parent" object of a child's GET /v1/status.
type hierParentLink struct {
	URL            string   `json:"url"`
	State          string   `json:"state"`
	Joined         bool     `json:"joined"`
	Connected      bool     `json:"connected"`
	Cursor         uint64   `json:"cursor"`
	RangesReported bool     `json:"ranges_reported"`
	Uncovered      []string `json:"uncovered_ranges"`
	LastRun        string   `json:"last_run"`
	LastVerified   bool     `json:"last_verified"`
	Error          string   `json:"error"`
}

// hierStatus is the hierarchy part of GET /v1/status.
type hierStatus struct {
	Parent   *hierParentLink   `json:"parent"`
	Children []hierChildStatus `json:"children"`
	Alerts   []hierAlert       `json:"alerts"`
}

// hierNowResp is POST /v1/replication/now with wait.
type hierNowResp struct {
	Children []string `json:"children"`
	Results  []struct {
		Child    string   `json:"child"`
		Done     bool     `json:"done"`
		Verified bool     `json:"verified"`
		Run      *hierRun `json:"run"`
		Error    string   `json:"error"`
	} `json:"results"`
}

// hierBulletinResp is GET /v1/catalog/bulletins/{id} with the updates' indexes.
type hierBulletinResp struct {
	Bulletin struct {
		ID        string   `json:"id"`
		UpdateIDs []string `json:"update_ids"`
	} `json:"bulletin"`
	Updates []struct {
		ID          string `json:"id"`
		Title       string `json:"title"`
		Language    string `json:"language"`
		ModifyIndex uint64 `json:"modify_index"`
	} `json:"updates"`
}

// hierLongClient serves replicate-now with wait, which may take longer than httpClient allows.
var hierLongClient = &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

// hierEnrol enrols a child at the parent (POST /v1/children) and returns its join token.
func hierEnrol(t *testing.T, parent *proc, name string) string {
	t.Helper()
	var c struct {
		Name      string `json:"name"`
		JoinToken string `json:"join_token"`
	}
	doJSON(t, "POST", parent.url+"/v1/children", parent.token, map[string]any{"name": name}, 201, &c)
	if c.Name != name || c.JoinToken == "" {
		t.Fatalf("POST /v1/children %q: want {name, join_token}, got %+v", name, c)
	}
	return c.JoinToken
}

// hierJoin enrols a child and exchanges its join token over the API for a node credential: the
// test holds a real credential of that child, as a child process would.
func hierJoin(t *testing.T, parent *proc, name string) string {
	t.Helper()
	tok := hierEnrol(t, parent, name)
	var j struct {
		NodeToken string `json:"node_token"`
	}
	doJSON(t, "POST", parent.url+"/v1/hierarchy/v1/join", "", map[string]any{"name": name, "join_token": tok}, 200, &j)
	if j.NodeToken == "" {
		t.Fatalf("join of %q gave no node token", name)
	}
	return j.NodeToken
}

// hierStartChild enrols a child and starts it with its join token; it waits until the parent
// has the child's language report.
func hierStartChild(t *testing.T, parent *proc, name string, langs []string, extra ...string) *proc {
	t.Helper()
	tok := hierEnrol(t, parent, name)
	c := startSite(t, siteOpts{Name: name, Role: "child", Languages: langs,
		Extra: append([]string{"--parent", parent.url, "--join-token", tok}, extra...)})
	hierWaitReported(t, parent, name, langs)
	return c
}

// hierWaitReported waits until GET /v1/children shows name joined with ranges reported = langs.
func hierWaitReported(t *testing.T, parent *proc, name string, langs []string) {
	t.Helper()
	want := hierSorted(langs)
	waitFor(t, 30*time.Second, func() (bool, string) {
		c, ok := hierChildren(t, parent)[name]
		if !ok || !c.Joined || !c.RangesReported || !equalStrings(hierSorted(c.Ranges), want) {
			return false, fmt.Sprintf("child %s at the parent: %+v, want joined with ranges %v reported", name, c, want)
		}
		return true, ""
	})
}

// hierChildren is GET /v1/children by name.
func hierChildren(t *testing.T, parent *proc) map[string]hierChildStatus {
	t.Helper()
	var l struct {
		Children []hierChildStatus `json:"children"`
	}
	doJSON(t, "GET", parent.url+"/v1/children", parent.token, nil, 200, &l)
	out := map[string]hierChildStatus{}
	for _, c := range l.Children {
		out[c.Name] = c
	}
	return out
}

func hierGetStatus(t *testing.T, p *proc) hierStatus {
	t.Helper()
	var s hierStatus
	doJSON(t, "GET", p.url+"/v1/status", p.token, nil, 200, &s)
	return s
}

// hierRuns is GET /v1/replication/runs?child=NAME&scope=catalog (newest first): the runs that
// carried the catalog (not, for example, compliance summaries coming up).
func hierRuns(t *testing.T, parent *proc, child string) []hierRun {
	t.Helper()
	var l struct {
		Runs []hierRun `json:"runs"`
	}
	doJSON(t, "GET", parent.url+"/v1/replication/runs?limit=100000&scope=catalog&child="+url.QueryEscape(child), parent.token, nil, 200, &l)
	for _, r := range l.Runs {
		if r.Child != child {
			t.Errorf("GET /v1/replication/runs?child=%s lists a run of child %q", child, r.Child)
		}
	}
	for i := 1; i < len(l.Runs); i++ {
		if l.Runs[i].StartedAt.After(l.Runs[i-1].StartedAt) {
			t.Errorf("runs of %s not newest first: %s started after %s", child, l.Runs[i].ID, l.Runs[i-1].ID)
			break
		}
	}
	return l.Runs
}

// hierReplicateNow is POST /v1/replication/now with wait; every targeted child must apply and
// verify its run. It returns the runs by child.
func hierReplicateNow(t *testing.T, parent *proc, child, mode string) map[string]hierRun {
	t.Helper()
	body := map[string]any{"wait": true, "timeout": "60s"}
	if child != "" {
		body["child"] = child
	}
	if mode != "" {
		body["mode"] = mode
	}
	buf := hierJSON(body)
	req, _ := http.NewRequest("POST", parent.url+"/v1/replication/now", bytes.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+parent.token)
	start := time.Now()
	resp, err := hierLongClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/replication/now %s: %v", buf, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ans hierNowResp
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(raw, &ans) != nil || len(ans.Children) == 0 || len(ans.Results) != len(ans.Children) ||
		(child != "" && !equalStrings(ans.Children, []string{child})) {
		t.Fatalf("POST /v1/replication/now %s: status %d, body %s (read error %v); want 200 with a result per targeted child", buf, resp.StatusCode, raw, err)
	}
	out := map[string]hierRun{}
	for _, r := range ans.Results {
		if !r.Done || !r.Verified || r.Run == nil || r.Error != "" {
			t.Fatalf("replicate now %s: child %s: done %t verified %t error %q run %+v; want done and verified",
				buf, r.Child, r.Done, r.Verified, r.Error, r.Run)
		}
		if !r.Run.Verified || r.Run.Child != r.Child || r.Run.ParentDigest == "" || r.Run.ParentDigest != r.Run.ChildDigest {
			t.Errorf("replicate now: run %+v of %s: want verified with equal parent and child digests", *r.Run, r.Child)
		}
		out[r.Child] = *r.Run
		t.Logf("replicate now → %v", *r.Run)
	}
	t.Logf("replicate now (%s) answered in %v", buf, time.Since(start).Round(time.Millisecond))
	return out
}

// hierDropJoinToken removes --join-token and its value from a child's command line, so that
// the next restart proves that the child needs only its stored credential.
func hierDropJoinToken(t *testing.T, p *proc) {
	t.Helper()
	var args []string
	for i := 0; i < len(p.args); i++ {
		if p.args[i] == "--join-token" {
			i++
			continue
		}
		args = append(args, p.args[i])
	}
	if len(args) != len(p.args)-2 {
		t.Fatalf("%s was not started with --join-token: %v", p.name, p.args)
	}
	p.args = args
}

// ---- feeds and expected views ----

// hierRecB is a feed bulletin: its id and update ids decoded, the record kept verbatim.
type hierRecB struct {
	ID        string   `json:"id"`
	UpdateIDs []string `json:"update_ids"`
	raw       json.RawMessage
}

// hierRecU is a feed update: id, title and language decoded, the record kept verbatim.
type hierRecU struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Language string `json:"language"`
	raw      json.RawMessage
}

// hierFeed is a patchtree.catalog/v1 document whose records are kept verbatim, so that a
// rewritten feed differs from the original exactly where the test changed it.
type hierFeed struct {
	head map[string]json.RawMessage
	B    []*hierRecB
	U    []*hierRecU
}

func hierParseFeed(t *testing.T, path string) *hierFeed {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	var bs, us []json.RawMessage
	err = json.Unmarshal(buf, &doc)
	if err == nil {
		err = errors.Join(json.Unmarshal(doc["bulletins"], &bs), json.Unmarshal(doc["updates"], &us))
	}
	delete(doc, "bulletins")
	delete(doc, "updates")
	f := &hierFeed{head: doc}
	for _, r := range bs {
		b := &hierRecB{raw: r}
		err = errors.Join(err, json.Unmarshal(r, b))
		f.B = append(f.B, b)
	}
	for _, r := range us {
		u := &hierRecU{raw: r}
		err = errors.Join(err, json.Unmarshal(r, u))
		f.U = append(f.U, u)
	}
	if err != nil {
		t.Fatalf("decode feed %s: %v", path, err)
	}
	return f
}

func (f *hierFeed) write(t *testing.T, path string) {
	t.Helper()
	doc := maps.Clone(f.head)
	var bs, us []json.RawMessage
	for _, b := range f.B {
		bs = append(bs, b.raw)
	}
	for _, u := range f.U {
		us = append(us, u.raw)
	}
	doc["bulletins"], doc["updates"] = hierJSON(bs), hierJSON(us)
	if err := os.WriteFile(path, hierJSON(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hierSetField returns a record with one field replaced (the others kept verbatim).
func hierSetField(raw json.RawMessage, field string, v any) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m) // raw was decoded from the feed already
	m[field] = hierJSON(v)
	return hierJSON(m)
}

// hierJSON encodes a value that always encodes (strings, maps and slices of them).
func hierJSON(v any) json.RawMessage {
	out, _ := json.Marshal(v)
	return out
}

// hierKeeps reports whether a site managing ranges keeps an update with language tag:
// language-neutral updates always; others when a range matches by RFC 4647 basic filtering,
// case-insensitively ("*" matches every tag; a range matches a tag equal to it or starting with
// it followed by "-": de matches de-AT, not dsb).
func hierKeeps(ranges []string, tag string) bool {
	return tag == "" || slices.ContainsFunc(ranges, func(r string) bool {
		return r == "*" || len(tag) >= len(r) && strings.EqualFold(tag[:len(r)], r) && (len(tag) == len(r) || tag[len(r)] == '-')
	})
}

// hierView is the filtered view a site should hold.
type hierView struct {
	U map[string]*hierRecU // updates by id
	B map[string][]string  // bulletins by id: their filtered update ids, in feed order
	R map[string]*hierRecB // bulletins by id: the feed record
	L map[string]int       // updates per language tag (verbatim)
}

// view filters the feed through every set of ranges in turn (a parent's, then its child's).
func (f *hierFeed) view(rangeSets ...[]string) *hierView {
	v := &hierView{U: map[string]*hierRecU{}, B: map[string][]string{}, R: map[string]*hierRecB{}, L: map[string]int{}}
	for _, u := range f.U {
		keep := true
		for _, rs := range rangeSets {
			keep = keep && hierKeeps(rs, u.Language)
		}
		if keep {
			v.U[u.ID] = u
			v.L[u.Language]++
		}
	}
	for _, b := range f.B {
		var ids []string
		for _, id := range b.UpdateIDs {
			if v.U[id] != nil {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			v.B[b.ID], v.R[b.ID] = ids, b
		}
	}
	return v
}

func (v *hierView) String() string {
	return fmt.Sprintf("%d bulletins, %d updates in %d language values", len(v.B), len(v.U), len(v.L))
}

// hierCanon is a record's canonical JSON without the named fields (keys sorted).
func hierCanon(raw json.RawMessage, drop ...string) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	for _, k := range drop {
		delete(m, k)
	}
	return string(hierJSON(m))
}

// hierDelta is what a differential run must carry from one view to the next.
type hierDelta struct {
	ChangedU, DeletedU, ChangedB, DeletedB []string
	// Touched are bulletins whose own content and filtered update ids are unchanged but that
	// list a changed update: the contract does not count them, a run that re-sends them does.
	Touched []string
}

func (d hierDelta) Records() int { return len(d.ChangedU) + len(d.ChangedB) }
func (d hierDelta) Deletes() int { return len(d.DeletedU) + len(d.DeletedB) }

// hierDiff computes the filtered change set between two views of the same child.
func hierDiff(old, cur *hierView) hierDelta {
	var d hierDelta
	changed := map[string]bool{}
	for id, u := range cur.U {
		o := old.U[id]
		if o == nil || (!bytes.Equal(o.raw, u.raw) && hierCanon(o.raw) != hierCanon(u.raw)) {
			d.ChangedU = append(d.ChangedU, id)
			changed[id] = true
		}
	}
	for id := range old.U {
		if cur.U[id] == nil {
			d.DeletedU = append(d.DeletedU, id)
		}
	}
	for id, ids := range cur.B {
		o, ok := old.B[id]
		switch {
		case !ok, !slices.Equal(o, ids),
			!bytes.Equal(old.R[id].raw, cur.R[id].raw) && hierCanon(old.R[id].raw, "update_ids") != hierCanon(cur.R[id].raw, "update_ids"):
			d.ChangedB = append(d.ChangedB, id)
		case slices.ContainsFunc(ids, func(u string) bool { return changed[u] }):
			d.Touched = append(d.Touched, id)
		}
	}
	for id := range old.B {
		if _, ok := cur.B[id]; !ok {
			d.DeletedB = append(d.DeletedB, id)
		}
	}
	for _, s := range [][]string{d.ChangedU, d.DeletedU, d.ChangedB, d.DeletedB, d.Touched} {
		sort.Strings(s)
	}
	return d
}

// hierCheckView compares a site's catalog with the expected view: every bulletin id and its
// number of updates (from the list), per-language update counts (GET /v1/catalog), and about
// sample bulletins in full (their filtered update ids and updates).
func hierCheckView(t *testing.T, p *proc, want *hierView, sample int) {
	t.Helper()
	start := time.Now()
	list, _ := catListAll(t, p, "")
	bad := map[string][]string{} // what is wrong → bulletin ids
	for id, ids := range want.B {
		if s, ok := list[id]; !ok {
			bad["missing bulletins"] = append(bad["missing bulletins"], id)
		} else if s.Updates != len(ids) {
			bad["bulletins with a wrong number of updates"] = append(bad["bulletins with a wrong number of updates"], id)
		}
	}
	for id := range list {
		if _, ok := want.B[id]; !ok {
			bad["unexpected bulletins"] = append(bad["unexpected bulletins"], id)
		}
	}
	for what, ids := range bad {
		sort.Strings(ids)
		t.Errorf("%s: %d %s, e.g. %v", p.name, len(ids), what, ids[:min(5, len(ids))])
	}
	info := catGetInfo(t, p)
	if info.Bulletins != len(want.B) || info.Updates != len(want.U) {
		t.Errorf("%s: GET /v1/catalog counts %d bulletins, %d updates; want %s", p.name, info.Bulletins, info.Updates, want)
	}
	got := map[string]int{}
	for _, l := range info.Languages {
		got[l.Language] += l.Updates
	}
	if !maps.Equal(got, want.L) {
		t.Errorf("%s: updates per language %v, want %v", p.name, got, want.L)
	}
	ids := make([]string, 0, len(want.B))
	for id := range want.B {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	step := max(1, len(ids)/max(1, sample))
	checked := 0
	for i := 0; i < len(ids); i += step {
		id := ids[i]
		if _, ok := list[id]; !ok {
			continue
		}
		checked++
		var b hierBulletinResp
		doJSON(t, "GET", p.url+"/v1/catalog/bulletins/"+url.PathEscape(id), p.token, nil, 200, &b)
		if !slices.Equal(b.Bulletin.UpdateIDs, want.B[id]) {
			t.Errorf("%s: bulletin %s update_ids %v, want %v", p.name, id, b.Bulletin.UpdateIDs, want.B[id])
			continue
		}
		if len(b.Updates) != len(want.B[id]) {
			t.Errorf("%s: bulletin %s comes with %d updates, want %d", p.name, id, len(b.Updates), len(want.B[id]))
			continue
		}
		for j, u := range b.Updates {
			w := want.U[want.B[id][j]]
			if u.ID != w.ID || u.Language != w.Language || u.Title != w.Title {
				t.Errorf("%s: bulletin %s update %d: %s %q %q, want %s %q %q", p.name, id, j, u.ID, u.Language, u.Title, w.ID, w.Language, w.Title)
			}
		}
	}
	t.Logf("%s holds %d bulletins, %d updates by language %v (\"\" = neutral); %d bulletins compared in full (%v)",
		p.name, len(list), info.Updates, got, checked, time.Since(start).Round(time.Millisecond))
}

func hierSorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// hierModifyFeed derives the "next" feed: a share of the updates get a new title, nDel bulletins
// are deleted with the updates only they list, and nAdd new bulletins arrive, each with a new
// update per language of addLangs; the first also gets a new neutral update.
func hierModifyFeed(t *testing.T, f *hierFeed, seed uint64, retitle float64, nDel, nAdd int, addLangs []string) *hierFeed {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	refs := map[string]int{}
	for _, b := range f.B {
		for _, id := range b.UpdateIDs {
			refs[id]++
		}
	}
	// Delete nDel bulletins that own at least one update exclusively.
	dropB, dropU := map[string]bool{}, map[string]bool{}
	for _, i := range rng.Perm(len(f.B)) {
		b := f.B[i]
		if len(dropB) < nDel && slices.ContainsFunc(b.UpdateIDs, func(id string) bool { return refs[id] == 1 }) {
			dropB[b.ID] = true
			for _, id := range b.UpdateIDs {
				if refs[id] == 1 {
					dropU[id] = true
				}
			}
		}
	}
	if len(dropB) != nDel {
		t.Fatalf("feed has fewer than %d bulletins owning an update exclusively", nDel)
	}
	n := &hierFeed{head: f.head}
	for _, b := range f.B {
		if !dropB[b.ID] {
			c := *b
			n.B = append(n.B, &c)
		}
	}
	for _, u := range f.U {
		if !dropU[u.ID] {
			c := *u
			n.U = append(n.U, &c)
		}
	}
	// Retitle a share of the remaining updates.
	kept := len(n.U)
	k := int(float64(kept)*retitle + 0.5)
	for _, i := range rng.Perm(len(n.U))[:k] {
		u := n.U[i]
		u.Title += " (rebuilt)"
		u.raw = hierSetField(u.raw, "title", u.Title)
	}
	// Add new bulletins with new updates.
	for i := 0; i < nAdd; i++ {
		bid := fmt.Sprintf("MFSA-2099-%d-%02d", seed, i+1)
		b := &hierRecB{ID: bid}
		langs := append([]string{}, addLangs...)
		if i == 0 {
			langs = append(langs, "")
		}
		for _, lang := range langs {
			tag := lang
			if tag == "" {
				tag = "neutral"
			}
			u := &hierRecU{ID: fmt.Sprintf("testfox-%d.%d-%s", seed, i+1, tag), Title: fmt.Sprintf("Testfox %d.%d (%s)", seed, i+1, tag), Language: lang}
			u.raw = hierJSON(map[string]any{"id": u.ID, "title": u.Title, "language": lang,
				"file_name": "Testfox Setup.exe", "url": "https://example.invalid/" + u.ID, "command_line": "/S", "restart_required": true})
			n.U = append(n.U, u)
			b.UpdateIDs = append(b.UpdateIDs, u.ID)
		}
		b.raw = hierJSON(map[string]any{"id": bid, "vendor": "Mozilla", "title": fmt.Sprintf("Security fixes in Testfox %d.%d", seed, i+1),
			"severity": "High", "released": "2099-01-01", "revised": "2099-01-01", "cves": []string{fmt.Sprintf("CVE-2099-%04d", i+1)},
			"update_ids": b.UpdateIDs})
		n.B = append(n.B, b)
	}
	t.Logf("modified feed: %d of %d updates retitled, %d bulletins deleted with %d exclusively owned updates, %d bulletins added with %d updates",
		k, kept, nDel, len(dropU), nAdd, len(n.U)-kept)
	return n
}
