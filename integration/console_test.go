package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestConsole drives the web console in headless Chromium against a parent and two children
// holding the Mozilla catalog, a policy and scans. As auditor it opens every view and finds each
// number shown equal to the API's answer for the same URL, no write control, and its forged
// writes refused with 403 (with the CSRF token: by role; without: by the CSRF check). The
// overview follows a new compliance summary at the parent within 2 s without a reload, and an
// idle page sends no request that no change event asked for. As admin it replicates a policy
// now from the policies view and sees both children reach it. Every view is captured at
// 1280x800 (into $PATCHTREE_SCREENSHOTS_DIR too: `make screenshots`).
func TestConsole(t *testing.T) {
	t.Parallel()
	feed := hierMozillaFeed(t)
	ctx, net := conBrowser(t)
	start := time.Now()

	parent := hierStartParent(t, "hq", []string{"*"})
	// Policies replicate when the console asks, not on their own.
	doJSON(t, "PUT", parent.url+"/v1/replication/rules", parent.token, map[string]any{"catalog": "12h", "policies": "12h"}, 200, nil)
	east := hierStartChild(t, parent, "east", []string{"de"})
	west := hierStartChild(t, parent, "west", []string{"ja"})
	hierImport(t, parent, map[string]any{"source": feed})
	hierReplicateNow(t, parent, "", "")
	var list catList
	doJSON(t, "GET", parent.url+"/v1/catalog/bulletins?per_page=3", parent.token, nil, 200, &list)
	if len(list.Bulletins) == 0 {
		t.Fatal("the parent lists no bulletin after the import")
	}
	bid := list.Bulletins[0].ID
	pol := polWrite(t, "POST", parent.url+"/v1/policies", parent.token, map[string]any{"bulletins": []string{bid}, "folder": "console"}, 201)
	for _, k := range []*proc{east, west} {
		conScan(t, k, "pc-"+k.name+"-1")
	}
	conWaitComputers(t, parent, 2)
	auditor := createToken(t, parent.url, parent.token, "auditor", "console-auditor").Token
	t.Logf("setup: 3 sites, Mozilla catalog replicated, a policy, 2 computers, in %v", time.Since(start).Round(time.Millisecond))

	// GET / leads to the sign-in form; a wrong token is refused there, the auditor's signs in.
	conMust(t, ctx, "the sign-in form", chromedp.Navigate(parent.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#signin label[for="token"]`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "0000.wrong"), chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)))
	conValue(t, ctx, "the refusal of a wrong token", conWait,
		chromedp.Poll[bool](`document.getElementById('signin-error').textContent.trim() !== ''`, chromedp.WithPollingTimeout(conWait)))
	conA11y(t, ctx, "sign-in")
	conMust(t, ctx, "sign in with the form", chromedp.Clear(chromedp.CSS(`#token`)), chromedp.SendKeys(chromedp.CSS(`#token`), auditor), chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)),
		conReady("overview"))
	if who := conValue(t, ctx, "read #whoami", conWait, chromedp.Text(chromedp.CSS(`#whoami`))); !strings.Contains(who, "auditor") {
		t.Fatalf("console: signed in with the auditor's token, #whoami says %q", who)
	}

	// The keyboard reaches the navigation with Tab, shows where its focus is, and Enter follows
	// a link.
	conKeyboardTo(t, ctx, `#nav a[href="#/sites"]`)
	conMust(t, ctx, "follow a link with Enter", chromedp.KeyEvent(kb.Enter), conReady("sites"))

	// As auditor: every view, its numbers against the API, no write control.
	type view struct{ hash, name, shot string }
	views := []view{{"#/overview", "overview", "overview"}, {"#/sites", "sites", "sites"}}
	total := 0
	visit := func(v view) {
		conOpen(t, ctx, v.hash, v.name)
		n := conCheckNumbers(t, ctx, parent.url, auditor, v.name)
		total += n
		writes := conEval[int](t, ctx, "count write controls", `document.querySelectorAll('[data-write]').length`)
		if writes != 0 {
			t.Errorf("console %s as auditor: %d [data-write] controls, want none", v.hash, writes)
		}
		conA11y(t, ctx, v.hash)
		conScreenshot(t, ctx, v.shot)
		t.Logf("console %s: %d numbers equal to the API's", v.hash, n)
	}
	for _, v := range views {
		visit(v)
	}
	// The site page and the bulletin page, by the links the lists show.
	// A child's page when the list links one ("hq%2Feast"), else the first site's.
	sitePage := conEval[string](t, ctx, "find a site link", `(() => {
	  const links = Array.from(document.querySelectorAll('#view a[href^="#/sites/"]')).map(a => a.getAttribute('href'));
	  return links.find(h => h.includes('%2F')) || links[0] || '';
	})()`)
	if sitePage == "" {
		t.Fatal("console #/sites links to no site page")
	}
	visit(view{sitePage, "site", "site"})
	visit(view{"#/bulletins", "bulletins", "bulletins"})
	// The CSV the API offers for the same query is a link on the list.
	csv := conEval[struct {
		Href   string `json:"href"`
		Status int    `json:"status"`
		Type   string `json:"type"`
	}](t, ctx, "download the CSV", `(async () => {
	  const a = document.querySelector('#view a[data-csv]');
	  if (!a) return {href: '', status: 0, type: ''};
	  const r = await fetch(a.getAttribute('href'), {credentials: 'same-origin'});
	  return {href: a.getAttribute('href'), status: r.status, type: r.headers.get('Content-Type') || ''};
	})()`)
	if csv.Status != 200 || !strings.Contains(csv.Type, "csv") || !strings.Contains(csv.Href, "format=csv") {
		t.Errorf("console #/bulletins: CSV link %q answered %d %q, want 200 text/csv", csv.Href, csv.Status, csv.Type)
	}
	bulletinPage := conEval[string](t, ctx, "find a bulletin link", `(document.querySelector('#view a[href^="#/bulletins/"]') || {}).hash || ''`)
	if bulletinPage == "" {
		t.Fatal("console #/bulletins links to no bulletin page")
	}
	for _, v := range []view{{bulletinPage, "bulletin", "bulletin"}, {"#/catalog", "catalog", "catalog"},
		{"#/audit", "audit", "audit"}, {"#/alerts", "alerts", "alerts"}} {
		visit(v)
	}
	if total == 0 {
		t.Error("the console's views showed no number from the API")
	}

	// Forged writes from the page with the auditor's session: 403 with the CSRF token (the API's
	// role check) and 403 without it (the CSRF check).
	forged := conForge(t, ctx, bid)
	if forged.With != 403 || !strings.Contains(forged.WithBody, `role \"auditor\" may not`) {
		t.Errorf("auditor's forged POST /v1/policies with the CSRF token: %d %s, want 403 for the role", forged.With, forged.WithBody)
	}
	if forged.Without != 403 || !strings.Contains(forged.WithoutBody, "missing or invalid CSRF token") {
		t.Errorf("auditor's POST /v1/policies without the CSRF token: %d %s, want 403 for the CSRF token", forged.Without, forged.WithoutBody)
	}

	// Live: a new compliance summary at the parent shows on the overview within 2 s, no reload.
	conOpen(t, ctx, "#/overview", "overview")
	const computers = `#view [data-source="/v1/compliance"][data-field="totals.computers"]`
	before := conEval[string](t, ctx, "read the computer total", fmt.Sprintf(`window.consoleTestMark = 'no reload';
	  (document.querySelector(%q) || {dataset: {}}).dataset.value || ''`, computers))
	if before != "2" {
		t.Fatalf("the overview shows %s computers, want 2", before)
	}
	conScan(t, east, "pc-east-2")
	arrived := time.Now()
	conValue(t, ctx, "the overview follows the new summary", conWait,
		chromedp.Poll[bool](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === '3'`, computers), chromedp.WithPollingTimeout(conWait)))
	took := time.Since(arrived)
	mark := conEval[string](t, ctx, "read the page's mark", `window.consoleTestMark || ''`)
	t.Logf("live: the overview showed 3 computers %v after the summary reached the parent", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the overview showed the new summary after %v, want within 2s", took)
	}
	if mark != "no reload" {
		t.Error("the page was reloaded to show the new summary")
	}
	conMust(t, ctx, "overview ready", conReady("overview"))
	conCheckNumbers(t, ctx, parent.url, auditor, "overview")

	// Idle for 5 s: every request the page makes answers a change event (none without one).
	idle := time.Now()
	time.Sleep(5 * time.Second) // the measurement window itself
	reqs, changes := net.since(idle)
	for _, r := range reqs {
		asked := false
		for _, c := range changes {
			if d := r.at.Sub(c); d >= 0 && d < 2*time.Second {
				asked = true
			}
		}
		if !asked {
			t.Errorf("idle overview: request %s at +%v follows no change event", r.url, r.at.Sub(idle).Round(time.Millisecond))
		}
	}
	t.Logf("idle 5 s on the overview: %d requests, %d change events", len(reqs), len(changes))

	// Sign out, then as admin: replicate the policy now from the policies view.
	conMust(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#signin`)))
	afterSignOut := conEval[int](t, ctx, "session after sign-out", `fetch('/ui/session', {credentials: 'same-origin'}).then(r => r.status)`)
	if afterSignOut != 401 {
		t.Errorf("GET /ui/session after sign-out: %d, want 401", afterSignOut)
	}
	conSignIn(t, ctx, parent.url, parent.token, "admin")
	conOpen(t, ctx, "#/policies", "policies")
	conCheckNumbers(t, ctx, parent.url, parent.token, "policies")
	noCSRF := conEval[struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}](t, ctx, "admin write without the CSRF token", fmt.Sprintf(`fetch('/v1/policies/%s', {method: 'PATCH',
	  credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: '{"enabled": false}'})
	  .then(async r => ({status: r.status, body: await r.text()}))`, pol.ID))
	if noCSRF.Status != 403 || !strings.Contains(noCSRF.Body, "missing or invalid CSRF token") {
		t.Errorf("admin's PATCH without the CSRF token: %d %s, want 403", noCSRF.Status, noCSRF.Body)
	}
	button := fmt.Sprintf(`tr[data-policy=%q] button[data-write][data-action="replicate-now"]`, pol.ID)
	conMust(t, ctx, "replicate now", chromedp.WaitVisible(chromedp.CSS(button)), chromedp.Click(chromedp.CSS(button)))
	conValue(t, ctx, "both children reach the policy", 90*time.Second,
		chromedp.Poll[bool](`document.querySelectorAll('#replicate-result [data-site-path][data-done="true"]').length >= 2`,
			chromedp.WithPollingTimeout(90*time.Second)))
	paths := conEval[[]string](t, ctx, "read the sites done",
		`Array.from(document.querySelectorAll('#replicate-result [data-site-path][data-done="true"]')).map(e => e.getAttribute('data-site-path'))`)
	conA11y(t, ctx, "#/policies")
	conScreenshot(t, ctx, "policies")
	for _, k := range []*proc{east, west} {
		found := false
		for _, p := range paths {
			found = found || strings.HasSuffix(p, k.name)
		}
		if !found {
			t.Errorf("#replicate-result shows %v done, not %s", paths, k.name)
		}
		if st, _, raw := do(t, "GET", k.url+"/v1/policies/"+pol.ID, k.token, nil); st != 200 {
			t.Errorf("%s: GET /v1/policies/%s after replicate now: %d %s", k.name, pol.ID, st, raw)
		}
	}
	// At a phone's width (390 px) the overview still fits: no sideways scrolling of the page.
	conMust(t, ctx, "a phone's width", chromedp.EmulateViewport(390, 844))
	conOpen(t, ctx, "#/overview", "overview")
	if w := conEval[int](t, ctx, "the page's width", `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("console #/overview at 390 px wide is %d px wide", w)
	}
	conScreenshot(t, ctx, "overview-phone")
	// No script failed and the content security policy refused nothing (no inline script or
	// style, no other origin).
	if errs := net.pageErrors(); len(errs) > 0 {
		t.Errorf("the browser reported %d errors:\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
	t.Logf("console test: %d numbers compared, in %v", total, time.Since(start).Round(time.Millisecond))
}

// conScan posts one computer's scan at a child (an update installed, one required) and sends
// the child's compliance summary up to its parent.
func conScan(t *testing.T, child *proc, computer string) {
	t.Helper()
	ids := cmpReadCatalog(t, child).updateIDs()
	if len(ids) < 2 {
		t.Fatalf("%s holds %d updates, want at least 2", child.name, len(ids))
	}
	scan := map[string]any{"computer_id": computer, "scanned_at": time.Now().UTC().Format(time.RFC3339),
		"results": map[string]string{ids[0]: "installed", ids[1]: "required"}}
	doJSON(t, "POST", child.url+"/v1/scans", child.token, scan, 200, nil)
	cmpComplianceNow(t, child)
}

// conWaitComputers waits until the parent's overview counts n computers.
func conWaitComputers(t *testing.T, parent *proc, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, func() (bool, string) {
		got := cmpGetOverview(t, parent, parent.token).Totals.Computers
		return got == int64(n), fmt.Sprintf("the parent counts %d computers, want %d", got, n)
	})
}

// conForged is what the page's forged writes got.
type conForged struct {
	With        int    `json:"with"`
	WithBody    string `json:"withBody"`
	Without     int    `json:"without"`
	WithoutBody string `json:"withoutBody"`
}

// conForge makes the page POST a policy with its session, once with the session's CSRF token
// and once without.
func conForge(t *testing.T, ctx context.Context, bulletin string) conForged {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
	  const s = await (await fetch('/ui/session', {credentials: 'same-origin'})).json();
	  const body = JSON.stringify({bulletins: [%q], folder: 'forged'});
	  const w = await fetch('/v1/policies', {method: 'POST', credentials: 'same-origin',
	    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf}, body});
	  const wo = await fetch('/v1/policies', {method: 'POST', credentials: 'same-origin',
	    headers: {'Content-Type': 'application/json'}, body});
	  return {with: w.status, withBody: await w.text(), without: wo.status, withoutBody: await wo.text()};
	})()`, bulletin)
	return conEval[conForged](t, ctx, "forged writes", js)
}

// TestConsoleSessionsSite3: on a three-server site, a session signed in at a follower (whose
// leader writes the console key) works on every server; a write with its CSRF token through
// the other follower is forwarded to the leader and done, without the token refused; a sign-out
// at that follower is refused by it and the leader at once and by the third server within its
// apply lag.
func TestConsoleSessionsSite3(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	a := startSite(t, siteOpts{Name: "con-a", Site: "consite", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	nodes := []*proc{a}
	for _, name := range []string{"con-b", "con-c"} {
		nodes = append(nodes, startSite(t, siteOpts{Name: name, Site: "consite", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			JoinSite: a.url, Token: a.token}))
	}
	leader := waitAgreement(t, nodes, a.token, 3)
	var followers []*proc
	for _, n := range nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}

	st, raw, cookie := conHTTP(t, "POST", followers[0].url+"/ui/session", "", "", map[string]string{"token": a.token})
	var sess struct {
		Role string `json:"role"`
		CSRF string `json:"csrf"`
	}
	if st != 200 || json.Unmarshal(raw, &sess) != nil || sess.Role != "admin" || sess.CSRF == "" || cookie == "" {
		t.Fatalf("sign in at follower %s: %d %s (cookie %q)", followers[0].name, st, raw, cookie)
	}
	// The site's first sign-in writes the session key: a server knows it once it applied that
	// entry (milliseconds after the leader), from then on every session is good everywhere.
	for _, n := range nodes {
		waitFor(t, 10*time.Second, func() (bool, string) {
			st, raw, _ := conHTTP(t, "GET", n.url+"/ui/session", cookie, "", nil)
			return st == 200 && strings.Contains(string(raw), sess.CSRF),
				fmt.Sprintf("%s: GET /ui/session with the session of %s: %d %s", n.name, followers[0].name, st, raw)
		})
	}
	body := map[string]string{"role": "agent", "name": "from-console"}
	if st, raw, _ := conHTTP(t, "POST", followers[1].url+"/v1/tokens", cookie, "", body); st != 403 || !strings.Contains(string(raw), "missing or invalid CSRF token") {
		t.Errorf("%s: POST /v1/tokens with the session, without its CSRF token: %d %s, want 403", followers[1].name, st, raw)
	}
	if st, raw, _ := conHTTP(t, "POST", followers[1].url+"/v1/tokens", cookie, sess.CSRF, body); st != 201 {
		t.Errorf("%s: POST /v1/tokens with the session and its CSRF token (forwarded to the leader): %d %s, want 201", followers[1].name, st, raw)
	}

	st, raw, cleared := conHTTP(t, "DELETE", followers[1].url+"/ui/session", cookie, sess.CSRF, nil)
	if st != 204 || cleared != "" {
		t.Fatalf("sign out at follower %s: %d %s (cookie now %q)", followers[1].name, st, raw, cleared)
	}
	signedOut := time.Now()
	for _, n := range []*proc{followers[1], leader} {
		if st, raw, _ := conHTTP(t, "GET", n.url+"/v1/status", cookie, "", nil); st != 401 || !strings.Contains(string(raw), "signed out") {
			t.Errorf("%s: the signed-out session right after the sign-out: %d %s, want 401", n.name, st, raw)
		}
	}
	waitFor(t, 5*time.Second, func() (bool, string) {
		st, raw, _ := conHTTP(t, "GET", followers[0].url+"/v1/status", cookie, "", nil)
		return st == 401, fmt.Sprintf("%s: the signed-out session: %d %s", followers[0].name, st, raw)
	})
	t.Logf("%s refused the signed-out session %v after the sign-out answered", followers[0].name, time.Since(signedOut).Round(time.Millisecond))
}

// conHTTP sends a request with a console session cookie (and CSRF token) and answers the
// status, the body and the session cookie the answer sets ("" when it clears it or sets none).
func conHTTP(t *testing.T, method, url, cookie, csrf string, body any) (int, []byte, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "patchtree_session", Value: cookie})
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	set := ""
	for _, c := range resp.Cookies() {
		if c.Name == "patchtree_session" {
			set = c.Value
		}
	}
	return resp.StatusCode, raw, set
}
