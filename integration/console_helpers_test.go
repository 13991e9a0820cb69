package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Console test helpers (prefixed con*): a headless Chromium driven through chromedp, the
// comparison of every number a view shows with the API's answer, screenshots.

// conWait bounds each browser step: generous, for a busy two-core machine.
const conWait = 30 * time.Second

// conBrowser starts headless Chromium with a 1280x800 window, recording its network requests
// and event stream messages, or skips the test when Chromium is not installed (the Debian
// chromium package; .ci/run installs it).
func conBrowser(t *testing.T) (context.Context, *conNet) {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("chromium is not on PATH (the Debian chromium package; .ci/run installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	net := &conNet{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(net.record),
		chromedp.WithErrorf(func(f string, a ...any) { t.Logf("chromedp: "+f, a...) }))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser and lives as long as ctx: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx, net
}

// conMust runs browser steps within conWait or fails the test, naming the step.
func conMust(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, conWait)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("console: %s: %v", what, err)
	}
}

// conValue runs a browser action that answers a value, within timeout, or fails the test.
func conValue[T any](t *testing.T, ctx context.Context, what string, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("console: %s: %v", what, err)
	}
	return v
}

// conEval evaluates JavaScript in the page, awaiting a promise, into a T.
func conEval[T any](t *testing.T, ctx context.Context, what, js string) T {
	t.Helper()
	return conValue(t, ctx, what, conWait, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// conReady waits until the view named view has loaded and rendered.
func conReady(view string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`main#view[data-view=%q][data-ready="true"]`, view)))
}

// conOpen shows a view by its hash and waits until it is ready.
func conOpen(t *testing.T, ctx context.Context, hash, view string) {
	t.Helper()
	conEval[bool](t, ctx, "open "+hash, fmt.Sprintf(`location.hash = %q; true`, hash))
	conMust(t, ctx, "open "+hash, conReady(view))
}

// conSignIn opens the console's sign-in link for token and waits for the overview.
func conSignIn(t *testing.T, ctx context.Context, base, token, role string) {
	t.Helper()
	conMust(t, ctx, "sign in as "+role,
		chromedp.Navigate(base+"/ui/#token="+token),
		conReady("overview"),
		chromedp.WaitVisible(chromedp.CSS(`#whoami`)))
	who := conValue(t, ctx, "read #whoami", conWait, chromedp.Text(chromedp.CSS(`#whoami`)))
	href := conValue(t, ctx, "read the address", conWait, chromedp.Location())
	if !strings.Contains(who, role) {
		t.Fatalf("console: signed in with the %s token, #whoami says %q", role, who)
	}
	if strings.Contains(href, token) || strings.Contains(href, "token=") {
		t.Errorf("console: the token stays in the address bar after sign-in: %s", href)
	}
}

// conNumber is an element that shows a number of an API answer.
type conNumber struct {
	Source string `json:"source"`
	Field  string `json:"field"`
	Value  string `json:"value"`
	Text   string `json:"text"`
}

const conNumbersJS = `Array.from(document.querySelectorAll('#view [data-source][data-field]')).map(e => ({
  source: e.getAttribute('data-source'), field: e.getAttribute('data-field'),
  value: e.getAttribute('data-value'), text: e.textContent.trim()}))`

// conAt walks a dot path (array indexes as numbers) into a decoded JSON value.
func conAt(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// conTolerance is how far a number may move between the page's read and the test's: fields
// that count time since now (a link's lag in seconds, days since release) grow as the test runs.
func conTolerance(field string) float64 {
	last := field[strings.LastIndex(field, ".")+1:]
	switch {
	case strings.HasSuffix(last, "seconds"):
		return 120
	case strings.HasPrefix(last, "days"):
		return 1
	}
	return 0
}

// conCompare checks every number the current view shows against the API's answer for the same
// URL, read with the auditor's bearer token: data-value equals the API's value and the text is
// that number. It answers how many were compared and the mismatches.
func conCompare(t *testing.T, ctx context.Context, base, token string) (int, []string) {
	t.Helper()
	nums := conEval[[]conNumber](t, ctx, "read the view's numbers", conNumbersJS)
	answers := map[string]any{}
	var bad []string
	for _, n := range nums {
		ans, ok := answers[n.Source]
		if !ok {
			st, _, raw := do(t, "GET", base+n.Source, token, nil)
			if st != 200 {
				bad = append(bad, fmt.Sprintf("GET %s: %d %s", n.Source, st, raw))
				continue
			}
			if err := json.Unmarshal(raw, &ans); err != nil {
				bad = append(bad, fmt.Sprintf("GET %s: %v", n.Source, err))
				continue
			}
			answers[n.Source] = ans
		}
		apiV, ok := conAt(ans, n.Field)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s %s: no such field in the API's answer", n.Source, n.Field))
			continue
		}
		want, isNum := apiV.(float64)
		var shown any
		if err := json.Unmarshal([]byte(n.Value), &shown); err != nil {
			bad = append(bad, fmt.Sprintf("%s %s: data-value %q is not JSON", n.Source, n.Field, n.Value))
			continue
		}
		got, _ := shown.(float64)
		text, err := strconv.ParseFloat(strings.ReplaceAll(n.Text, ",", ""), 64)
		tol := conTolerance(n.Field)
		switch {
		case !isNum:
			bad = append(bad, fmt.Sprintf("%s %s: the API's value %v is not a number", n.Source, n.Field, apiV))
		case math.Abs(got-want) > tol:
			bad = append(bad, fmt.Sprintf("%s %s: data-value %s, the API says %v", n.Source, n.Field, n.Value, want))
		case err != nil || math.Abs(text-got) > 1e-9:
			bad = append(bad, fmt.Sprintf("%s %s: text %q, data-value %s", n.Source, n.Field, n.Text, n.Value))
		}
	}
	return len(nums), bad
}

// conCheckNumbers compares the view's numbers with the API; a mismatch is read again (after a
// live update, the page and the API may have been read on either side of a change).
func conCheckNumbers(t *testing.T, ctx context.Context, base, token, view string) int {
	t.Helper()
	var n int
	var bad []string
	for attempt := 0; attempt < 3; attempt++ {
		conMust(t, ctx, "view "+view+" ready", conReady(view))
		if n, bad = conCompare(t, ctx, base, token); len(bad) == 0 {
			return n
		}
	}
	t.Errorf("console %s: %d of %d numbers differ from the API:\n  %s", view, len(bad), n, strings.Join(bad, "\n  "))
	return n
}

// conScreenshot saves the viewport (1280x800) as name.png in the test's artifact directory and
// in $PATCHTREE_SCREENSHOTS_DIR when set.
func conScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// The picture shows the page, not where the test left the keyboard's focus.
	conEval[bool](t, ctx, "blur before "+name, `document.activeElement && document.activeElement.blur(); true`)
	png := conValue(t, ctx, "screenshot "+name, conWait, chromedp.CaptureScreenshot())
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("PATCHTREE_SCREENSHOTS_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// conNet records the page's network requests, the event stream's messages, and what the
// browser reports as errors besides failed requests: script exceptions and refusals by the
// content security policy.
type conNet struct {
	mu       sync.Mutex
	requests []conRequest
	changes  []time.Time
	errors   []string
}

type conRequest struct {
	at  time.Time
	url string
}

// record is the tab's event listener.
func (n *conNet) record(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		n.requests = append(n.requests, conRequest{at: time.Now(), url: e.Request.URL})
	case *network.EventEventSourceMessageReceived:
		if e.EventName == "change" {
			n.changes = append(n.changes, time.Now())
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		desc := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			desc += " " + d.Exception.Description
		}
		n.errors = append(n.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
	case *cdplog.EventEntryAdded:
		// Failed requests (the 401s and 403s the test provokes) are the network's entries.
		if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
			n.errors = append(n.errors, fmt.Sprintf("%s error at %s: %s", e.Entry.Source, e.Entry.URL, e.Entry.Text))
		}
	}
}

// pageErrors answers the errors the browser reported so far.
func (n *conNet) pageErrors() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.errors...)
}

// since answers the requests and change events seen after t0.
func (n *conNet) since(t0 time.Time) (reqs []conRequest, changes []time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.requests {
		if r.at.After(t0) {
			reqs = append(reqs, r)
		}
	}
	for _, c := range n.changes {
		if c.After(t0) {
			changes = append(changes, c)
		}
	}
	return reqs, changes
}

// conA11yJS lists, in the current page, form fields without a label and visible text whose
// contrast with its background is under WCAG AA (4.5:1, 3:1 for large text). The background is
// the first opaque one among the element and its ancestors (a translucent one is blended over it).
const conA11yJS = `(() => {
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || el.closest('[hidden]')) continue;
    const labelled = (el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) ||
      el.closest('label') || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!labelled) out.push('unlabelled ' + el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : ''));
  }
  const rgba = (s) => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = (el) => { const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg; };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || el.closest('[hidden], svg')) continue;
    const fg = rgba(st.color); if (!fg) continue;
    const bg = background(el);
    const c = over(fg, bg);
    const l1 = lum(c), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) out.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ' for "' + n.textContent.trim().slice(0, 40) + '" (' + st.color + ' on rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + '))');
  }
  return out;
})()`

// conA11y checks the current page's labels and contrast.
func conA11y(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if issues := conEval[[]string](t, ctx, "accessibility of "+what, conA11yJS); len(issues) > 0 {
		if len(issues) > 10 {
			issues = append(issues[:10], fmt.Sprintf("... and %d more", len(issues)-10))
		}
		t.Errorf("console %s: accessibility:\n  %s", what, strings.Join(issues, "\n  "))
	}
}

// conKeyboardTo presses Tab from the top of the page until sel has the focus (at most 40 times),
// and checks that the focus is visible there (an outline or a shadow).
func conKeyboardTo(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	// Focusing the body puts the keyboard's starting point at the top of the page.
	conEval[bool](t, ctx, "start at the top", `document.body.tabIndex = -1; document.body.focus();
	  document.body.removeAttribute('tabindex'); window.scrollTo(0, 0); true`)
	for range 40 {
		conMust(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
		focus := conEval[struct {
			At      bool   `json:"at"`
			Outline string `json:"outline"`
			Shadow  string `json:"shadow"`
		}](t, ctx, "read the focus", fmt.Sprintf(`(() => { const e = document.activeElement, st = getComputedStyle(e);
		  return {at: e.matches(%q), outline: st.outlineStyle + ' ' + st.outlineWidth, shadow: st.boxShadow}; })()`, sel))
		if focus.At {
			if (strings.HasPrefix(focus.Outline, "none") || strings.HasSuffix(focus.Outline, " 0px")) && focus.Shadow == "none" {
				t.Errorf("console: %s has the keyboard's focus but shows no outline (%s) or shadow", sel, focus.Outline)
			}
			return
		}
	}
	t.Fatalf("console: 40 presses of Tab never reached %s", sel)
}
