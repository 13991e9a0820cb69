package integration

import (
	"context"
	"fmt"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"
)

// langSets are distinct canonical (sorted) range sets; neighbours differ
// and none equals the default ["en"].
var langSets = [][]string{
	{"de"}, {"fr"}, {"de", "fr"}, {"es", "it"}, {"ja"},
	{"en", "nl"}, {"pt", "sv"}, {"da", "fi"}, {"ko", "pl"}, {"de", "en", "fr"},
}

type ackedToken struct {
	id, secret, role string
}

// verifyState checks the languages and that every token authenticates
// and is listed.
func verifyState(t *testing.T, url, admin string, langs []string, tokens []ackedToken) {
	t.Helper()
	var l langResp
	doJSON(t, "GET", url+"/v1/languages", admin, nil, 200, &l)
	if !equalStrings(l.Ranges, langs) {
		t.Errorf("languages on %s = %v, want last acknowledged %v", url, l.Ranges, langs)
	}
	var list struct {
		Tokens []struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"tokens"`
	}
	raw := doJSONRaw(t, "GET", url+"/v1/tokens", admin, nil, 200, &list)
	listed := map[string]string{}
	for _, tk := range list.Tokens {
		listed[tk.ID] = tk.Role
	}
	for _, tk := range tokens {
		if st, _, raw := do(t, "GET", url+"/v1/status", tk.secret, nil); st != 200 {
			t.Errorf("acknowledged %s token %s does not authenticate: %d %s", tk.role, tk.id, st, raw)
		}
		if strings.Contains(string(raw), tk.secret) {
			t.Errorf("GET /v1/tokens exposes the secret of token %s", tk.id)
		}
		if role, ok := listed[tk.id]; !ok || role != tk.role {
			t.Errorf("acknowledged token %s missing from GET /v1/tokens (role %q, listed %v)", tk.id, role, ok)
		}
	}
}

func TestDurabilityKill9(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "durable"})
	var l0 langResp
	doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &l0)
	if !equalStrings(l0.Ranges, []string{"en"}) {
		t.Errorf("default languages of a new parent = %v, want [en]", l0.Ranges)
	}
	var (
		tokens   []ackedToken
		langs    []string
		maxIndex uint64
		restarts []time.Duration
	)
	roles := []string{"admin", "rollout", "auditor", "agent"}
	// Four kills cover both write orders and every role; PATCHTREE_SOAK=1 runs all ten.
	kills := 4
	if soak() {
		kills = len(langSets)
	}
	for i := 0; i < kills; i++ {
		setLangs := func() {
			l := putLanguages(t, p.url, p.token, langSets[i])
			langs = langSets[i]
			maxIndex = max(maxIndex, l.Index)
		}
		newToken := func() {
			role := roles[i%len(roles)]
			tr := createToken(t, p.url, p.token, role, fmt.Sprintf("kill9-%d", i))
			tokens = append(tokens, ackedToken{tr.ID, tr.Token, role})
			maxIndex = max(maxIndex, tr.CreateIndex)
		}
		// Alternate which acknowledged write is the last one before the kill.
		if i%2 == 0 {
			setLangs()
			newToken()
		} else {
			newToken()
			setLangs()
		}
		p.kill9(t)
		d := p.restart(t)
		restarts = append(restarts, d)
		verifyState(t, p.url, p.token, langs, tokens)
		if dg := getDigest(t, p.url, p.token); dg.Index < maxIndex {
			t.Errorf("iteration %d: digest index %d after restart < acknowledged index %d", i, dg.Index, maxIndex)
		}
		if t.Failed() {
			t.Fatalf("iteration %d: acknowledged writes lost across SIGKILL", i)
		}
	}
	var sum, worst time.Duration
	for _, d := range restarts {
		sum += d
		worst = max(worst, d)
	}
	t.Logf("restart after SIGKILL until ready: %v (avg %v, max %v)",
		restarts, sum/time.Duration(len(restarts)), worst)

	// A write that is in flight when the process dies must leave either
	// the old or the new value, and nothing corrupted.
	// The delays between writing the request and the kill move the kill
	// across the request's lifetime (before/after the Raft commit).
	inflight := [][]string{{"cs", "hu"}, {"el", "ro"}, {"bg", "hr"}, {"lt", "lv"}}
	delays := []time.Duration{0, 300 * time.Microsecond, 700 * time.Microsecond, 5 * time.Millisecond}
	for round, next := range inflight {
		old := langs
		acked := killDuringPut(t, p, next, delays[round])
		d := p.restart(t)
		var l langResp
		doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &l)
		switch {
		case equalStrings(l.Ranges, next):
			langs = next
		case acked:
			t.Fatalf("round %d: PUT %v was acknowledged before the kill but languages are %v", round, next, l.Ranges)
		case equalStrings(l.Ranges, old):
		default:
			t.Fatalf("round %d: languages %v after in-flight kill, want old %v or new %v", round, l.Ranges, old, next)
		}
		t.Logf("in-flight kill %d (%v after the request was written): acknowledged=%v, restart %v, languages=%v",
			round, delays[round], acked, d, l.Ranges)
		verifyState(t, p.url, p.token, langs, tokens)
	}
	// The node still accepts writes after all that.
	putLanguages(t, p.url, p.token, []string{"en"})
	tr := createToken(t, p.url, p.token, "auditor", "final")
	tokens = append(tokens, ackedToken{tr.ID, tr.Token, "auditor"})
	verifyState(t, p.url, p.token, []string{"en"}, tokens)
}

// killDuringPut sends PUT /v1/languages and SIGKILLs the node delay after
// the request has been written. It reports whether a 200 came back.
func killDuringPut(t *testing.T, p *proc, ranges []string, delay time.Duration) bool {
	t.Helper()
	wrote := make(chan struct{})
	var once sync.Once
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		once.Do(func() { close(wrote) })
	}}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.Background(), trace), 15*time.Second)
	defer cancel()
	type outcome struct {
		status int
		err    error
	}
	res := make(chan outcome, 1)
	go func() {
		st, _, err := tryDo(ctx, "PUT", p.url+"/v1/languages", p.token, map[string]any{"ranges": ranges})
		res <- outcome{st, err}
	}()
	var o outcome
	select {
	case <-wrote:
		select {
		case <-time.After(delay):
		case o = <-res:
		}
		p.kill9(t)
		if o.err == nil && o.status == 0 {
			o = <-res
		}
	case o = <-res: // the server answered before the kill
		select {
		case <-wrote:
		default:
			t.Fatalf("PUT failed before the request was written: %d %v", o.status, o.err)
		}
		p.kill9(t)
	case <-time.After(10 * time.Second):
		t.Fatal("PUT request never written")
	}
	if o.err == nil && o.status != 200 {
		t.Fatalf("in-flight PUT %v got status %d", ranges, o.status)
	}
	return o.err == nil
}
