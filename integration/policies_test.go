package integration

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Software update policies and settings documents replicated to children (DESIGN.md §5, §7,
// docs/policies.md): a parent managing * and three children managing en, de+fr and ja share one
// setup; each subtest builds on the state the previous ones left. Every child's expected
// policies are computed by the test from the parent's own (GET /v1/policies) with the test's RFC
// 4647 matcher.

// polSuite is the shared setup of TestPolicies.
type polSuite struct {
	parent   *proc
	kids     []*polKid
	rollout  string // token of role rollout at the parent
	auditor  string // token of role auditor at the parent
	dir      string
	feed     *hierFeed
	feedPath string
	audit    *polAuditBook
	created  []polPolicy // the 50 policies in creation order (as created)
	deleted  map[string]bool
	local    string // id of the child-local policy at kids[0]
}

type polKid struct {
	name   string
	ranges []string
	p      *proc
}

var polFolders = []string{"Firefox/2019", "Firefox/ESR", "Thunderbird", "Pilot/Ring 1", ""} // "" = Default

func TestPolicies(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	start := time.Now()
	s := &polSuite{dir: t.TempDir(), audit: &polAuditBook{}, deleted: map[string]bool{}}

	// The feed: a generated one (several languages per bulletin) plus bulletins made for the
	// filtering cases: updates in languages no child manages, tags of other case and region
	// (EN-gb, de-AT, ja-JP-mac), dsb (not matched by de), only neutral, only de and fr.
	gen := catGenerate(t, s.dir, "gen.json", "--bulletins", "24", "--languages", "40", "--seed", "11")
	s.feed = hierParseFeed(t, gen)
	polAddBulletin(s.feed, "PTST-2026-01", "Testfox fixes for Korean and Polish builds", [][2]string{{"ptst-01-ko", "ko"}, {"ptst-01-pl", "pl"}})
	polAddBulletin(s.feed, "PTST-2026-02", "Testfox fixes in many languages", [][2]string{{"ptst-02-en-us", "en-US"}, {"ptst-02-en-gb", "EN-gb"},
		{"ptst-02-de-at", "de-AT"}, {"ptst-02-dsb", "dsb"}, {"ptst-02-fr", "fr"}, {"ptst-02-ja-mac", "ja-JP-mac"}, {"ptst-02-ja", "JA"}, {"ptst-02-neutral", ""}})
	polAddBulletin(s.feed, "PTST-2026-03", "Testfox language-neutral fix", [][2]string{{"ptst-03-neutral", ""}})
	polAddBulletin(s.feed, "PTST-2026-04", "Testfox fixes for German and French", [][2]string{{"ptst-04-de", "de"}, {"ptst-04-fr", "fr"}})
	s.feedPath = filepath.Join(s.dir, "feed.json")
	s.feed.write(t, s.feedPath)

	s.parent = startSite(t, siteOpts{Name: "hq", Languages: []string{"*"}})
	var rules map[string]any
	doJSON(t, "GET", s.parent.url+"/v1/replication/rules", s.parent.token, nil, 200, &rules)
	if rules["catalog"] != "23:00" || rules["policies"] != "continuous" || rules["settings"] != "continuous" {
		t.Errorf("GET /v1/replication/rules on a new parent: %v; want catalog 23:00, policies and settings continuous", rules)
	}
	if now := time.Now(); now.Hour() == 22 && now.Minute() >= 45 || now.Hour() == 23 && now.Minute() < 10 {
		// The daily catalog rule would fire during the test: move it (still daily) out of the way.
		doJSON(t, "PUT", s.parent.url+"/v1/replication/rules", s.parent.token, map[string]any{"catalog": "11:00"}, 200, nil)
		t.Logf("near 23:00: catalog rule moved to daily 11:00 for this run")
	}
	s.rollout = createToken(t, s.parent.url, s.parent.token, "rollout", "rollout-op").Token
	s.auditor = createToken(t, s.parent.url, s.parent.token, "auditor", "auditor-1").Token
	s.kids = []*polKid{
		{name: "amer", ranges: []string{"en"}},
		{name: "emea", ranges: []string{"de", "fr"}},
		{name: "apac", ranges: []string{"ja"}},
	}
	for _, k := range s.kids {
		k.p = hierStartChild(t, s.parent, k.name, k.ranges)
	}
	hierImport(t, s.parent, map[string]any{"source": s.feedPath})
	polReplicateNow(t, s.parent, s.parent.token, map[string]any{"scope": "catalog"})
	s.audit.add("admin", "replicate", "")
	t.Logf("setup: parent, %d children, catalog imported and replicated in %v", len(s.kids), time.Since(start).Round(time.Millisecond))

	for _, st := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Replicate", s.testReplicate},
		{"FolderAndPolicy", s.testFolder},
		{"Settings", s.testSettings},
		{"ReadOnlyAtChild", s.testReadOnly},
		{"ImportRevises", s.testImportRevises},
		{"Dependency", s.testDependency},
		{"Auth", s.testAuth},
		{"Audit", s.testAudit},
	} {
		t0 := time.Now()
		t.Run(st.name, st.fn)
		t.Logf("subtest %s took %v", st.name, time.Since(t0).Round(time.Millisecond))
	}
	t.Logf("TestPolicies took %v", time.Since(start).Round(time.Millisecond))
}

// waitChildren waits until every child holds exactly the parent's policies filtered to its
// ranges.
func (s *polSuite) waitChildren(t *testing.T, what string, timeout time.Duration) bool {
	t.Helper()
	start := time.Now()
	ok := true
	for _, k := range s.kids {
		ok = polEventually(t, timeout, 250*time.Millisecond, func() (bool, string) {
			return polCheckChild(t, s.parent, k.p, k.ranges)
		}) && ok
	}
	if ok {
		t.Logf("%s: every child holds the parent's policies filtered to its ranges (%v)", what, time.Since(start).Round(time.Millisecond))
	}
	return ok
}

// checkChildrenNow requires every child to hold its filtered policies now.
func (s *polSuite) checkChildrenNow(t *testing.T, what string) {
	t.Helper()
	for _, k := range s.kids {
		if ok, why := polCheckChild(t, s.parent, k.p, k.ranges); !ok {
			t.Errorf("%s: %s", what, why)
		}
	}
}

func (s *polSuite) tokenRole(i int) (string, string) {
	if i%10 == 9 {
		return s.parent.token, "admin"
	}
	return s.rollout, "rollout"
}

// testReplicate: 50 policies created in 5 folders, 20 changed, 10 deleted; every child ends with
// exactly the parent's policies filtered to its languages, first by the continuous rule, then
// after a replicate-now of scope policies.
func (s *polSuite) testReplicate(t *testing.T) {
	x := polIndex(t, s.feed)
	var gens []string
	for _, id := range x.Order {
		if !strings.HasPrefix(id, "PTST-") {
			gens = append(gens, id)
		}
	}
	runValues := []string{"", "asap", "02:30", "4h"}
	start := time.Now()
	for i := 0; i < 50; i++ {
		bs := []string{gens[i%len(gens)]}
		switch {
		case i%10 == 0:
			bs = []string{"PTST-2026-02"}
		case i%10 == 5:
			bs = []string{"PTST-2026-04"}
		case i == 7 || i == 17:
			bs = []string{"PTST-2026-01"} // no update in any child's languages
		case i == 11:
			bs = []string{"PTST-2026-03"}
		case i == 1:
			bs = polSharedPair(t, x, gens) // two bulletins listing a common update
		case i == 3 || i == 13:
			bs = []string{"PTST-2026-02", "PTST-2026-04", gens[(i*7)%len(gens)]}
		case i%3 == 1:
			bs = append(bs, gens[(i*7+3)%len(gens)])
		}
		bs = polUniq(bs)
		body := map[string]any{"bulletins": bs}
		if i%4 != 0 {
			body["name"] = fmt.Sprintf("Policy %02d", i)
			body["description"] = fmt.Sprintf("Rollout wave %d", i%3)
		}
		if f := polFolders[i%5]; f != "" {
			body["folder"] = f
		}
		if r := runValues[i%4]; r != "" {
			body["run"] = r
		} else if i%8 == 4 {
			body["run"] = "agent-default"
		}
		switch i % 6 {
		case 5:
			body["enabled"] = false
		case 2:
			body["enabled"] = true
		}
		if i%3 == 0 {
			body["override_maintenance_windows"] = true
		}
		if i%7 == 2 {
			body["allow_immediate_restart"] = true
		}
		off := map[string]bool{}
		if ids := slices.Clone(x.Updates[bs[0]]); i%4 == 1 && len(ids) >= 3 {
			// Prefer an update that the policy's other bulletin lists too: its flag is the
			// update's, under every bulletin that lists it.
			if len(bs) > 1 {
				if k := slices.IndexFunc(ids, func(id string) bool { return slices.Contains(x.Updates[bs[1]], id) }); k > 0 {
					ids[0], ids[k] = ids[k], ids[0]
				}
			}
			flags := []map[string]any{{"id": ids[0], "enabled": false}, {"id": ids[1], "enabled": false}}
			off[ids[0]], off[ids[1]] = true, true
			if i%8 == 1 {
				flags = append(flags, map[string]any{"id": ids[2], "enabled": true})
			}
			body["updates"] = flags
		}
		tok, role := s.tokenRole(i)
		p := polWrite(t, "POST", s.parent.url+"/v1/policies", tok, body, 201)
		s.audit.add(role, "policy-create", p.ID)

		// The answer follows the contract's defaults.
		wantName, wantDesc := "", ""
		if len(bs) == 1 {
			wantName, wantDesc = bs[0], x.Title[bs[0]]
		} else {
			wantName = fmt.Sprintf("%s and %d more", bs[0], len(bs)-1)
			var titles []string
			for _, b := range bs {
				titles = append(titles, x.Title[b])
			}
			wantDesc = strings.Join(titles, "; ")
		}
		if n, ok := body["name"].(string); ok {
			wantName, wantDesc = n, body["description"].(string)
		}
		wantFolder := polFolders[i%5]
		if wantFolder == "" {
			wantFolder = "Default"
		}
		wantRun, _ := body["run"].(string)
		if wantRun == "" {
			wantRun = "agent-default"
		}
		wantEnabled := i%6 != 5
		wantUpdates := x.polExpectedUpdates(bs, func(_, id string) bool { return !off[id] })
		switch {
		case !polIDPattern.MatchString(p.ID):
			t.Errorf("POST /v1/policies %s: id %q, want p- and 12 hex digits", hierJSON(body), p.ID)
		case p.Name != wantName || (len(wantDesc) <= 1000 && p.Description != wantDesc) || p.Folder != wantFolder || p.Run != wantRun ||
			p.Enabled != wantEnabled || !slices.Equal(p.Bulletins, bs) || p.Revision != 1 || p.Origin != "local" ||
			p.OverrideMaintenanceWindows != (i%3 == 0) || p.AllowImmediateRestart != (i%7 == 2) ||
			p.CreatedAt.IsZero() || p.UpdatedAt.IsZero():
			t.Errorf("POST /v1/policies %s:\n got %v (description %q, override %t, restart %t, created %v)\nwant name %q description %q folder %q run %q enabled %t bulletins %v revision 1 origin local",
				hierJSON(body), p, p.Description, p.OverrideMaintenanceWindows, p.AllowImmediateRestart, p.CreatedAt, wantName, wantDesc, wantFolder, wantRun, wantEnabled, bs)
		case !slices.Equal(p.Updates, wantUpdates):
			t.Errorf("POST /v1/policies %s: updates differ from every update of its bulletins in order, enabled unless overridden: %s",
				hierJSON(body), polUpdatesDiff(wantUpdates, p.Updates))
		}
		s.created = append(s.created, p)
	}
	t.Logf("created 50 policies in %v", time.Since(start).Round(time.Millisecond))

	// Errors of the contract.
	st, m, raw := do(t, "POST", s.parent.url+"/v1/policies", s.rollout, map[string]any{"bulletins": []string{"NOPE-1"}})
	checkError(t, "POST /v1/policies with an unknown bulletin", st, m, raw, 400, `bulletin "NOPE-1" is not in the catalog`)
	st, m, raw = do(t, "POST", s.parent.url+"/v1/policies", s.rollout, map[string]any{"bulletins": []string{"PTST-2026-03"}, "run": "sometimes"})
	checkError(t, "POST /v1/policies with a bad run", st, m, raw, 400, "run")
	st, m, raw = do(t, "POST", s.parent.url+"/v1/policies", s.rollout, map[string]any{"bulletins": []string{"PTST-2026-03"},
		"updates": []map[string]any{{"id": "ptst-04-de", "enabled": false}}})
	checkError(t, "POST /v1/policies with an update of another bulletin", st, m, raw, 400, "ptst-04-de")
	st, m, raw = do(t, "PATCH", s.parent.url+"/v1/policies/p-000000000000", s.rollout, map[string]any{"enabled": false})
	checkError(t, "PATCH an unknown policy", st, m, raw, 404, "p-000000000000")

	// 20 changes.
	start = time.Now()
	for j := 0; j < 20; j++ {
		cur := s.created[j]
		body := map[string]any{}
		kind := j % 5
		if j == 1 {
			// Policy 1's two bulletins share updates, some disabled: adding a bulletin keeps
			// every kept (bulletin, update) flag.
			kind = 3
		}
		switch kind {
		case 0:
			body["enabled"] = !cur.Enabled
		case 1:
			body["name"] = fmt.Sprintf("Renamed %02d", j)
		case 2:
			f := "Thunderbird"
			if cur.Folder == f {
				f = "Firefox/2019"
			}
			body["folder"] = f
		case 3:
			body["bulletins"] = polUniq([]string{cur.Bulletins[0], gens[(j*5+11)%len(gens)], "PTST-2026-02"})
			if j == 1 {
				body["bulletins"] = append(slices.Clone(cur.Bulletins), "PTST-2026-03")
			}
		case 4:
			body["updates"] = []map[string]any{{"id": cur.Updates[0].ID, "enabled": !cur.Updates[0].Enabled}}
			body["run"] = "asap"
			body["description"] = "Edited after the pilot"
		}
		tok, role := s.tokenRole(j + 1)
		p := polWrite(t, "PATCH", s.parent.url+"/v1/policies/"+cur.ID, tok, body, 200)
		s.audit.add(role, "policy-update", cur.ID)
		bad := p.ID != cur.ID || p.Revision != cur.Revision+1 || p.Origin != "local" || !p.CreatedAt.Equal(cur.CreatedAt)
		switch kind {
		case 0:
			bad = bad || p.Enabled == cur.Enabled
		case 1:
			bad = bad || p.Name != body["name"]
		case 2:
			bad = bad || p.Folder != body["folder"]
		case 3:
			nb := body["bulletins"].([]string)
			old := map[[2]string]bool{}
			for _, u := range cur.Updates {
				old[[2]string{u.Bulletin, u.ID}] = u.Enabled
			}
			want := x.polExpectedUpdates(nb, func(b, id string) bool {
				if e, ok := old[[2]string{b, id}]; ok && slices.Contains(cur.Bulletins, b) {
					return e
				}
				return true
			})
			if !slices.Equal(p.Bulletins, nb) || !slices.Equal(p.Updates, want) {
				t.Errorf("PATCH %s bulletins %v: bulletins %v; updates differ from the kept bulletins' updates with their flags and the added ones enabled: %s",
					cur.ID, nb, p.Bulletins, polUpdatesDiff(want, p.Updates))
			}
		case 4:
			id, flag := cur.Updates[0].ID, !cur.Updates[0].Enabled
			var entries []polUpdate
			for _, u := range p.Updates {
				if u.ID == id {
					entries = append(entries, u)
				}
			}
			for k, u := range p.Updates {
				if k >= len(cur.Updates) {
					break // reported below (length)
				}
				want := cur.Updates[k].Enabled
				if u.ID == id {
					want = flag
				}
				if u.ID != cur.Updates[k].ID || u.Enabled != want {
					t.Errorf("PATCH %s {updates: [{id: %s, enabled: %t}]}: update %d is %+v, want %s enabled %t (the policy's bulletins %v list %s %d times; got %+v)",
						cur.ID, id, flag, k, u, cur.Updates[k].ID, want, cur.Bulletins, id, len(entries), entries)
					break
				}
			}
			bad = bad || p.Run != "asap" || p.Description != body["description"] || len(p.Updates) != len(cur.Updates)
		}
		if bad {
			t.Errorf("PATCH /v1/policies/%s %s:\n got %v\nwas %v", cur.ID, hierJSON(body), p, cur)
		}
	}
	// 10 deletions, some of changed policies.
	for j := 15; j < 25; j++ {
		id := s.created[j].ID
		tok, role := s.tokenRole(j)
		var d struct {
			Deleted string `json:"deleted"`
		}
		doJSON(t, "DELETE", s.parent.url+"/v1/policies/"+id, tok, nil, 200, &d)
		s.audit.add(role, "policy-delete", id)
		if d.Deleted != id {
			t.Errorf("DELETE /v1/policies/%s: answer %+v, want {deleted: %s}", id, d, id)
		}
		s.deleted[id] = true
		st, m, raw := do(t, "GET", s.parent.url+"/v1/policies/"+id, s.rollout, nil)
		checkError(t, "GET a deleted policy", st, m, raw, 404, id)
	}
	t.Logf("20 changes and 10 deletions in %v", time.Since(start).Round(time.Millisecond))

	// The parent: 40 policies, sorted by folder then name, all local.
	all := polList(t, s.parent, s.rollout, "")
	if len(all) != 40 {
		t.Errorf("GET /v1/policies at the parent: %d policies, want 40", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Folder > b.Folder || a.Folder == b.Folder && a.Name > b.Name {
			t.Errorf("GET /v1/policies not sorted by folder, then name: %q/%q before %q/%q", a.Folder, a.Name, b.Folder, b.Name)
			break
		}
	}
	folders := map[string]int{}
	for _, p := range all {
		folders[p.Folder]++
		if s.deleted[p.ID] {
			t.Errorf("deleted policy %s is listed", p.ID)
		}
	}
	t.Logf("parent policies by folder: %v", folders)
	for _, k := range s.kids {
		zero := 0
		for _, p := range all {
			if len(polFilter(p.Raw, k.ranges)["updates"].([]any)) == 0 {
				zero++
			}
		}
		t.Logf("%s %v: %d of %d policies have no update in its languages", k.name, k.ranges, zero, len(all))
		if zero == 0 || zero == len(all) {
			t.Errorf("%s: %d of %d policies filter to no update; the setup should give some of each", k.name, zero, len(all))
		}
	}

	// The continuous rule brings everything to every child.
	s.waitChildren(t, "continuous rule", 60*time.Second)

	// Replicate now with scope policies (by the rollout operator) changes nothing but verifies.
	runs := polReplicateNow(t, s.parent, s.rollout, map[string]any{"scope": "policies"})
	s.audit.add("rollout", "replicate", "")
	for _, k := range s.kids {
		r, ok := runs[k.name]
		if !ok {
			t.Errorf("replicate now did not target %s", k.name)
			continue
		}
		if r.Policies == nil || !slices.Contains(r.polScopes(), "policies") || !r.Policies.Verified || slices.Contains(r.polScopes(), "catalog") {
			t.Errorf("%s: replicate now {scope: policies}: %v; want a verified run carrying the policies section and no catalog section", k.name, r)
		}
	}
	s.checkChildrenNow(t, "after replicate now {scope: policies}")
}

// testFolder: replicate now for one folder sends exactly that folder's policies; for one policy
// exactly that policy.
func (s *polSuite) testFolder(t *testing.T) {
	const folder = "Thunderbird"
	inFolder := polList(t, s.parent, s.rollout, "folder="+url.QueryEscape(folder))
	n := 0
	for _, p := range polList(t, s.parent, s.rollout, "") {
		if p.Folder == folder {
			n++
		}
	}
	for _, p := range inFolder {
		if p.Folder != folder {
			t.Errorf("GET /v1/policies?folder=%s lists %s of folder %q", folder, p.ID, p.Folder)
		}
	}
	if len(inFolder) != n || n == 0 {
		t.Fatalf("folder %s: GET ?folder= lists %d, the full list %d; want the same, more than 0", folder, len(inFolder), n)
	}
	runs := polReplicateNow(t, s.parent, s.rollout, map[string]any{"scope": "policies", "folder": folder})
	s.audit.add("rollout", "replicate", "")
	for _, k := range s.kids {
		r, ok := runs[k.name]
		if !ok {
			t.Errorf("replicate now {folder %s} did not target %s", folder, k.name)
			continue
		}
		if r.Policies == nil || !slices.Equal(r.Policies.Folders, []string{folder}) || r.Policies.Records != n || !r.Policies.Verified ||
			slices.Contains(r.polScopes(), "catalog") {
			t.Errorf("%s: replicate now {scope: policies, folder: %s}: %v; want policies.folders [%s], policies.records %d, verified, no catalog section",
				k.name, folder, r, folder, n)
		}
		var found *polRun
		for _, h := range polRuns(t, s.parent, k.name) {
			if h.ID == r.ID {
				found = &h
				break
			}
		}
		if found == nil {
			t.Errorf("%s: run %s is not in GET /v1/replication/runs", k.name, r.ID)
		} else if found.Policies == nil || !slices.Equal(found.Policies.Folders, []string{folder}) || found.Policies.Records != n {
			t.Errorf("%s: GET /v1/replication/runs shows %v; want policies.folders [%s] and records %d", k.name, *found, folder, n)
		}
	}
	s.checkChildrenNow(t, "after the folder run")

	// One policy: `policy` implies scope policies.
	id := inFolder[0].ID
	runs = polReplicateNow(t, s.parent, s.rollout, map[string]any{"policy": id})
	s.audit.add("rollout", "replicate", "")
	for _, k := range s.kids {
		r := runs[k.name]
		if r.Policies == nil || !slices.Equal(r.Policies.IDs, []string{id}) || r.Policies.Records != 1 || !r.Policies.Verified {
			t.Errorf("%s: replicate now {policy: %s}: %v; want policies.ids [%s], records 1, verified", k.name, id, r, id)
		}
	}
}

// testSettings: settings documents put at the parent reach every child, read-only there.
func (s *polSuite) testSettings(t *testing.T) {
	docs := map[string]map[string]any{
		"server-tasks": {"catalog_import": "off", "language_report": "21:30", "compliance_summary": "2h"},
		"assessment":   {"scan_interval": "6h", "scan_on_catalog_change": true},
	}
	st, m, raw := do(t, "GET", s.parent.url+"/v1/settings/remediation", s.parent.token, nil)
	checkError(t, "GET /v1/settings/remediation before it is set", st, m, raw, 404, "remediation")
	st, m, raw = do(t, "PUT", s.parent.url+"/v1/settings/assessment", s.parent.token, map[string]any{"scan_interval": "6h", "bogus": 1})
	checkError(t, "PUT /v1/settings/assessment with an unknown field", st, m, raw, 400, "bogus")
	parentDocs := map[string]map[string]any{}
	for _, name := range []string{"server-tasks", "assessment"} {
		st, _, raw := do(t, "PUT", s.parent.url+"/v1/settings/"+name, s.parent.token, docs[name])
		if st != 200 && st != 201 {
			t.Fatalf("PUT /v1/settings/%s %s: status %d, want 200; body %s", name, hierJSON(docs[name]), st, raw)
		}
		s.audit.add("admin", "settings", name)
		var d map[string]any
		doJSON(t, "GET", s.parent.url+"/v1/settings/"+name, s.parent.token, nil, 200, &d)
		body, _ := d["body"].(map[string]any)
		for k, v := range docs[name] {
			if body[k] != v {
				t.Errorf("GET /v1/settings/%s at the parent: %v; want body.%s = %v", name, d, k, v)
			}
		}
		if d["origin"] != "local" {
			t.Errorf("GET /v1/settings/%s at the parent: origin %v, want local", name, d["origin"])
		}
		parentDocs[name] = d
	}
	var list map[string]any
	doJSON(t, "GET", s.parent.url+"/v1/settings", s.auditor, nil, 200, &list) // any role
	for _, k := range s.kids {
		for name, pd := range parentDocs {
			polEventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
				st, m, raw := do(t, "GET", k.p.url+"/v1/settings/"+name, k.p.token, nil)
				if st != 200 {
					return false, fmt.Sprintf("%s: GET /v1/settings/%s: %d %s", k.name, name, st, raw)
				}
				if m["origin"] != "parent" || polCanon(m) != polCanon(pd) {
					return false, fmt.Sprintf("%s: GET /v1/settings/%s: %s; want origin parent and otherwise the parent's %s (%s)",
						k.name, name, raw, hierJSON(pd), polFieldDiff(pd, m))
				}
				return true, ""
			})
		}
	}
}

// testReadOnly: replicated policies and settings are read-only at a child (409); a child may
// still keep its own local policy, which replication leaves alone.
func (s *polSuite) testReadOnly(t *testing.T) {
	k := s.kids[0]
	reps := polList(t, k.p, k.p.token, "origin=parent")
	if len(reps) == 0 {
		t.Fatalf("%s holds no replicated policy", k.name)
	}
	rp := reps[0]
	st, m, raw := do(t, "PATCH", k.p.url+"/v1/policies/"+rp.ID, k.p.token, map[string]any{"enabled": !rp.Enabled})
	checkError(t, k.name+": PATCH of a replicated policy", st, m, raw, 409, "read-only")
	st, m, raw = do(t, "DELETE", k.p.url+"/v1/policies/"+rp.ID, k.p.token, nil)
	checkError(t, k.name+": DELETE of a replicated policy", st, m, raw, 409, "read-only")
	after := polWrite(t, "GET", k.p.url+"/v1/policies/"+rp.ID, k.p.token, nil, 200)
	if polCanon(after.Raw) != polCanon(rp.Raw) || after.Origin != "parent" {
		t.Errorf("%s: replicated policy changed by refused writes: %v -> %v", k.name, rp, after)
	}
	for name, body := range map[string]map[string]any{"server-tasks": {"language_report": "01:00"}, "assessment": {"scan_interval": "1h"}} {
		st, m, raw = do(t, "PUT", k.p.url+"/v1/settings/"+name, k.p.token, body)
		checkError(t, k.name+": PUT of a replicated settings document "+name, st, m, raw, 409, "read-only")
	}

	// A local policy at the child.
	lp := polWrite(t, "POST", k.p.url+"/v1/policies", k.p.token, map[string]any{"bulletins": []string{"PTST-2026-03"}, "name": "Local pilot", "folder": "Local"}, 201)
	if !polIDPattern.MatchString(lp.ID) || lp.Origin != "local" || lp.Revision != 1 || len(lp.Updates) != 1 {
		t.Errorf("%s: POST /v1/policies: %v; want a local policy, revision 1, with the bulletin's one update", k.name, lp)
	}
	s.local = lp.ID
	lp2 := polWrite(t, "PATCH", k.p.url+"/v1/policies/"+lp.ID, k.p.token, map[string]any{"enabled": false}, 200)
	if lp2.Enabled || lp2.Revision != 2 || lp2.Origin != "local" {
		t.Errorf("%s: PATCH of its local policy: %v; want disabled, revision 2, origin local", k.name, lp2)
	}
	st, _, _ = do(t, "GET", s.parent.url+"/v1/policies/"+lp.ID, s.parent.token, nil)
	if st != 404 {
		t.Errorf("the child's local policy %s: GET at the parent answers %d, want 404", lp.ID, st)
	}
	checkLocal := func(what string) {
		t.Helper()
		ls := polList(t, k.p, k.p.token, "origin=local")
		if len(ls) != 1 || ls[0].ID != lp.ID || ls[0].Revision != 2 || ls[0].Origin != "local" {
			t.Errorf("%s: %s: GET /v1/policies?origin=local lists %v; want only %s (revision 2)", k.name, what, ls, lp.ID)
		}
	}
	// A change at the parent replicates; the local policy stays.
	p := s.created[30]
	polWrite(t, "PATCH", s.parent.url+"/v1/policies/"+p.ID, s.rollout, map[string]any{"name": "Renamed at the parent"}, 200)
	s.audit.add("rollout", "policy-update", p.ID)
	s.waitChildren(t, "after a rename", 30*time.Second)
	checkLocal("after a differential policies run")
	polReplicateNow(t, s.parent, s.parent.token, map[string]any{"scope": "policies", "child": k.name, "mode": "complete"})
	s.audit.add("admin", "replicate", "")
	checkLocal("after a complete policies run")
	s.checkChildrenNow(t, "after a complete policies run")
}

// testImportRevises: an import adding an update to a bulletin used by policies revises them
// (disabled by default, enabled with revise_policies: enabled) and the revision reaches every
// child, filtered.
func (s *polSuite) testImportRevises(t *testing.T) {
	for _, c := range []struct {
		bulletin, update, lang, revise string
		enabled                        bool
	}{
		{"PTST-2026-02", "ptst-02-de-ch", "de-CH", "", false},
		{"PTST-2026-04", "ptst-04-neutral", "", "enabled", true},
	} {
		before := polByID(polList(t, s.parent, s.rollout, ""))
		polAddUpdate(t, s.feed, c.bulletin, c.update, c.lang)
		s.feed.write(t, s.feedPath)
		body := map[string]any{"source": s.feedPath}
		if c.revise != "" {
			body["revise_policies"] = c.revise
		}
		imp := hierImport(t, s.parent, body)
		if imp.Result.Updates.Added != 1 {
			t.Errorf("import %v: updates %s, want 1 added", body, imp.Result.Updates)
		}
		after := polByID(polList(t, s.parent, s.rollout, ""))
		revised := 0
		for id, b := range before {
			a, ok := after[id]
			if !ok {
				t.Errorf("import %v: policy %s is gone", body, id)
				continue
			}
			if !slices.Contains(b.Bulletins, c.bulletin) {
				if polCanon(a.Raw) != polCanon(b.Raw) {
					t.Errorf("import %v changed policy %s, which does not use %s: %s", body, id, c.bulletin, polFieldDiff(b.Raw, a.Raw))
				}
				continue
			}
			revised++
			s.audit.add("*", "policy-revise", id)
			want := append(slices.Clone(b.Updates), polUpdate{ID: c.update, Bulletin: c.bulletin, Language: c.lang, Enabled: c.enabled})
			got := slices.Clone(a.Updates)
			cmp := func(x, y polUpdate) int { return strings.Compare(x.Bulletin+"\x00"+x.ID, y.Bulletin+"\x00"+y.ID) }
			slices.SortFunc(want, cmp)
			slices.SortFunc(got, cmp)
			if a.Revision != b.Revision+1 || !slices.Equal(got, want) || !slices.Equal(a.Bulletins, b.Bulletins) || a.Name != b.Name || a.Enabled != b.Enabled {
				t.Errorf("import %v: policy %s using %s: revision %d -> %d, updates %v; want revision +1 and the new update %s (enabled %t) added",
					body, id, c.bulletin, b.Revision, a.Revision, a.Updates, c.update, c.enabled)
			}
		}
		if revised == 0 {
			t.Fatalf("no policy uses %s; the test should have some", c.bulletin)
		}
		t.Logf("import %v revised %d policies", body, revised)
		s.waitChildren(t, "after the import revising policies with "+c.update, 60*time.Second)
		for _, k := range s.kids {
			if !hierKeeps(k.ranges, c.lang) {
				continue
			}
			b := catGetBulletin(t, k.p, c.bulletin)
			if !slices.Contains(b.Bulletin.UpdateIDs, c.update) {
				t.Errorf("%s holds policies listing %s but its catalog's %s lists %v", k.name, c.update, c.bulletin, b.Bulletin.UpdateIDs)
			}
		}
	}
}

// testDependency: with the catalog rule daily, a policy on a bulletin the children do not have
// yet brings that bulletin in the same run (trigger policy-dependency), never after the policy.
func (s *polSuite) testDependency(t *testing.T) {
	var rules map[string]any
	doJSON(t, "GET", s.parent.url+"/v1/replication/rules", s.parent.token, nil, 200, &rules)
	if c, _ := rules["catalog"].(string); c == "continuous" || !strings.Contains(c, ":") {
		t.Fatalf("catalog rule %q; this test needs a daily one", c)
	}
	const bid = "PTST-2026-05"
	polAddBulletin(s.feed, bid, "Testfox emergency fix", [][2]string{{"ptst-05-ja", "ja"}, {"ptst-05-en", "en-US"}, {"ptst-05-de", "de"}, {"ptst-05-neutral", ""}})
	s.feed.write(t, s.feedPath)
	imp := hierImport(t, s.parent, map[string]any{"source": s.feedPath})
	if imp.Result.Bulletins.Added != 1 {
		t.Errorf("import: bulletins %s, want 1 added", imp.Result.Bulletins)
	}
	for _, k := range s.kids {
		if st, _, raw := do(t, "GET", k.p.url+"/v1/catalog/bulletins/"+bid, k.p.token, nil); st != 404 {
			t.Errorf("%s: GET /v1/catalog/bulletins/%s after the import at the parent: %d %s; want 404 (the catalog rule is daily)", k.name, bid, st, raw)
		}
	}
	t0 := time.Now()
	p := polWrite(t, "POST", s.parent.url+"/v1/policies", s.rollout, map[string]any{"bulletins": []string{bid},
		"name": "Emergency 05", "folder": "Pilot/Ring 1", "run": "asap", "replicate_now": true}, 201)
	s.audit.add("rollout", "policy-create", p.ID)
	created, _ := p.Raw["create_index"].(float64)
	if created == 0 {
		t.Errorf("POST /v1/policies: no create_index in %s", hierJSON(p.Raw))
	}
	have := map[string]time.Duration{}
	polEventually(t, 30*time.Second, 10*time.Millisecond, func() (bool, string) {
		for _, k := range s.kids {
			if _, ok := have[k.name]; ok {
				continue
			}
			st, _, raw := do(t, "GET", k.p.url+"/v1/policies/"+p.ID, k.p.token, nil)
			if st == 404 {
				continue
			}
			if st != 200 {
				t.Errorf("%s: GET /v1/policies/%s: %d %s", k.name, p.ID, st, raw)
			}
			have[k.name] = time.Since(t0)
			if st, _, raw := do(t, "GET", k.p.url+"/v1/catalog/bulletins/"+bid, k.p.token, nil); st != 200 {
				t.Errorf("%s holds policy %s but GET /v1/catalog/bulletins/%s answers %d %s: the policy arrived before the catalog it references",
					k.name, p.ID, bid, st, raw)
			}
		}
		return len(have) == len(s.kids), fmt.Sprintf("children holding policy %s: %v", p.ID, have)
	})
	t.Logf("policy %s with replicate_now reached the children after %v", p.ID, have)
	for _, k := range s.kids {
		// The run that brought the policy: the first that carried policies and either selected it
		// or covered the index that created it.
		// The child holds the policy once it committed the run; the parent records the run when
		// the acknowledgement arrives, a moment later.
		var brought *polRun
		eventually(t, 10*time.Second, func() (bool, string) {
			runs := polRuns(t, s.parent, k.name)
			for i := len(runs) - 1; i >= 0; i-- { // oldest first
				r := runs[i]
				if !slices.Contains(r.polScopes(), "policies") || r.Policies == nil || r.Policies.Records == 0 || r.StartedAt.Before(t0) ||
					!slices.Contains(r.Policies.IDs, p.ID) && !(float64(r.Policies.From) < created && created <= float64(r.Policies.To)) {
					continue
				}
				brought = &r
				return true, ""
			}
			return false, fmt.Sprintf("%s: no run since the policy's creation carried policies", k.name)
		})
		if brought == nil {
			t.Errorf("%s: no run since the policy's creation carried policies", k.name)
			continue
		}
		sc := brought.polScopes()
		ci, pi := slices.Index(sc, "catalog"), slices.Index(sc, "policies")
		if ci < 0 || ci > pi || brought.Trigger != "policy-dependency" || brought.Records == 0 || !brought.Verified {
			t.Errorf("%s: the run that brought policy %s: %v; want scope catalog+policies (catalog first) with trigger policy-dependency, catalog records, verified",
				k.name, p.ID, *brought)
		} else {
			t.Logf("%s: %v", k.name, *brought)
		}
		catGetBulletin(t, k.p, bid)
	}
	s.waitChildren(t, "after the policy on a new bulletin", 30*time.Second)
}

// testAuth: auditors change nothing here; rollout operators may not import, enrol or replicate
// anything but policies.
func (s *polSuite) testAuth(t *testing.T) {
	p := polList(t, s.parent, s.rollout, "")[0]
	u := s.parent.url
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/policies", map[string]any{"bulletins": []string{"PTST-2026-03"}}},
		{"PATCH", "/v1/policies/" + p.ID, map[string]any{"enabled": !p.Enabled}},
		{"DELETE", "/v1/policies/" + p.ID, nil},
		{"PUT", "/v1/settings/server-tasks", map[string]any{"compliance_summary": "3h"}},
		{"PUT", "/v1/settings/x", map[string]any{}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "policies"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "policies", "folder": "Thunderbird"}},
		{"GET", "/v1/policies", nil},
	} {
		st, m, raw := do(t, c.method, u+c.path, s.auditor, c.body)
		checkError(t, fmt.Sprintf("auditor: %s %s %s", c.method, c.path, hierJSON(c.body)), st, m, raw, 403, "")
	}
	if a := polWrite(t, "GET", u+"/v1/policies/"+p.ID, s.rollout, nil, 200); polCanon(a.Raw) != polCanon(p.Raw) {
		t.Errorf("policy %s changed by refused auditor writes: %s", p.ID, polFieldDiff(p.Raw, a.Raw))
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/catalog/import", map[string]any{"source": s.feedPath}},
		{"POST", "/v1/children", map[string]any{"name": "rogue"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "catalog"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "all"}},
		{"POST", "/v1/replication/now", map[string]any{"scope": "settings"}},
		{"PUT", "/v1/settings/server-tasks", map[string]any{"compliance_summary": "3h"}},
		{"GET", "/v1/audit", nil},
	} {
		st, m, raw := do(t, c.method, u+c.path, s.rollout, c.body)
		checkError(t, fmt.Sprintf("rollout: %s %s %s", c.method, c.path, hierJSON(c.body)), st, m, raw, 403, "")
	}
	if _, ok := hierChildren(t, s.parent)["rogue"]; ok {
		t.Errorf("a refused POST /v1/children by a rollout token enrolled the child")
	}
	for _, body := range []map[string]any{{"scope": "policies"}, {"scope": "policies", "folder": "Thunderbird"}} {
		st, _, raw := do(t, "POST", u+"/v1/replication/now", s.rollout, body)
		if st != 200 && st != 202 {
			t.Errorf("rollout: POST /v1/replication/now %s: %d %s; want 200 or 202", hierJSON(body), st, raw)
		} else {
			s.audit.add("rollout", "replicate", "")
		}
	}
	s.waitChildren(t, "after the auth checks", 30*time.Second)
}

// testAudit: every policy change (revisions by imports included), settings change and replicate
// now of the test is in the audit log with its actor's role, an action and a target; refused
// writes left nothing.
func (s *polSuite) testAudit(t *testing.T) {
	entries := polAudit(t, s.parent, s.auditor)
	t.Logf("audit log: %d entries", len(entries))
	used := make([]bool, len(entries))
	for i, e := range entries {
		if i > 0 && e.Key <= entries[i-1].Key {
			t.Errorf("audit entries not oldest first: %s after %s", e.Key, entries[i-1].Key)
		}
		if e.Actor.Role == "auditor" {
			t.Errorf("audit entry by an auditor (refused writes must leave nothing): %v", e)
		}
		if e.Action == "" || e.At.IsZero() {
			t.Errorf("audit entry without action or time: %v", e)
		}
	}
	var missing []polExpect
	for _, e := range s.audit.exp {
		i := polMatchAudit(entries, used, e)
		if i < 0 {
			missing = append(missing, e)
			continue
		}
		used[i] = true
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[fmt.Sprintf("%s/%s", e.Action, e.Actor.Role)]++
	}
	t.Logf("audit log (action/role: count): %v", kinds)
	if len(missing) > 0 {
		t.Errorf("%d of %d expected audit entries are missing, e.g. %+v; the log holds (action/role: count) %v",
			len(missing), len(s.audit.exp), missing[:min(5, len(missing))], kinds)
		for _, e := range entries[max(0, len(entries)-5):] {
			t.Logf("audit: %v", e)
		}
	}
	// The auditor reads with filters too.
	var l struct {
		Entries []polAuditEntry `json:"entries"`
	}
	doJSON(t, "GET", s.parent.url+"/v1/audit?action=policy&limit=5", s.auditor, nil, 200, &l)
	if len(l.Entries) == 0 || len(l.Entries) > 5 {
		t.Errorf("GET /v1/audit?action=policy&limit=5: %d entries, want 1 to 5", len(l.Entries))
	}
	for _, e := range l.Entries {
		if !strings.HasPrefix(e.Action, "policy") {
			t.Errorf("GET /v1/audit?action=policy lists %v", e)
		}
	}
}
