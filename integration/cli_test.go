package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// runCLI runs the patchtree binary with args; env adds to a clean
// environment (no PATCHTREE_* from the caller).
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, t.TempDir(), 30*time.Second, env, args...)
}

// runCLIIn runs the patchtree binary in dir (relative paths resolve there) with a timeout.
func runCLIIn(t *testing.T, dir string, timeout time.Duration, env []string, args ...string) cliResult {
	t.Helper()
	bin := requireBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("patchtree %s: %v (stderr %q)", strings.Join(args, " "), err, r.stderr)
	}
	return r
}

// oneLine asserts stderr is exactly one non-empty line.
func oneLine(t *testing.T, what, stderr string) string {
	t.Helper()
	s := strings.TrimSuffix(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("%s: want exactly one line on stderr, got %d lines:\n%s", what, strings.Count(stderr, "\n"), stderr)
	}
	return s
}

func TestCLIUsage(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	helps := [][]string{
		{"--help"}, {"serve", "--help"}, {"status", "--help"}, {"languages", "--help"},
		{"languages", "set", "--help"}, {"token", "create", "--help"}, {"demo", "--help"},
	}
	for _, args := range helps {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, nil, args...)
			if r.code != 0 || !strings.Contains(strings.ToLower(r.stdout), "usage") {
				t.Errorf("want exit 0 and usage on stdout; got %v", r)
			}
		})
	}
	badFlags := [][]string{
		{"--no-such-flag"}, {"serve", "--no-such-flag"}, {"status", "--no-such-flag"},
		{"languages", "--no-such-flag"}, {"languages", "set", "--no-such-flag", "de"},
		{"token", "create", "--no-such-flag"}, {"demo", "--no-such-flag"},
	}
	for _, args := range badFlags {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, []string{"PATCHTREE_SERVER=http://127.0.0.1:1", "PATCHTREE_TOKEN=x"}, args...)
			line := oneLine(t, "unknown flag", r.stderr)
			if r.code != 2 || !strings.Contains(line, "no-such-flag") {
				t.Errorf("want exit 2 and one stderr line naming the flag; got %v", r)
			}
		})
	}
	for _, args := range [][]string{{"frobnicate"}, {"token", "frobnicate"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, nil, args...)
			line := oneLine(t, "unknown command", r.stderr)
			if r.code != 2 || !strings.Contains(line, "frobnicate") {
				t.Errorf("want exit 2 and one stderr line naming the command; got %v", r)
			}
		})
	}
}

func TestCLIAgainstServer(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "cli-site"})
	env := []string{"PATCHTREE_SERVER=" + p.url, "PATCHTREE_TOKEN=" + p.token}
	flags := []string{"--server", p.url, "--token", p.token}

	t.Run("status via env", func(t *testing.T) {
		r := runCLI(t, env, "status")
		if r.code != 0 || !strings.Contains(r.stdout, "cli-site") {
			t.Errorf("want exit 0 and the site name; got %v", r)
		}
		r = runCLI(t, env, "status", "--output", "json")
		var s statusResp
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &s) != nil || s.Name != "cli-site" {
			t.Errorf("status --output json: want JSON with name cli-site; got %v", r)
		}
	})
	t.Run("status via flags", func(t *testing.T) {
		r := runCLI(t, nil, append([]string{"status"}, flags...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "cli-site") {
			t.Errorf("want exit 0 and the site name; got %v", r)
		}
	})
	t.Run("languages set and get", func(t *testing.T) {
		for _, args := range [][]string{{"de", "fr"}, {"es,it"}} {
			want := strings.Split(strings.Join(args, ","), ",")
			r := runCLI(t, env, append([]string{"languages", "set"}, args...)...)
			if r.code != 0 {
				t.Fatalf("languages set %v: %v", args, r)
			}
			r = runCLI(t, env, "languages")
			for _, w := range want {
				if r.code != 0 || !strings.Contains(r.stdout, w) {
					t.Errorf("languages after set %v: want %q in output; got %v", args, w, r)
				}
			}
			r = runCLI(t, env, "languages", "--output", "json")
			var l langResp
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &l) != nil || !equalStrings(l.Ranges, want) {
				t.Errorf("languages --output json: want ranges %v; got %v", want, r)
			}
			var srv langResp
			doJSON(t, "GET", p.url+"/v1/languages", p.token, nil, 200, &srv)
			if !equalStrings(srv.Ranges, want) {
				t.Errorf("server ranges %v after CLI set %v", srv.Ranges, want)
			}
		}
	})
	t.Run("token create", func(t *testing.T) {
		r := runCLI(t, env, "token", "create", "--role", "auditor", "--name", "cli-auditor")
		secret := strings.TrimSpace(r.stdout)
		if r.code != 0 || secret == "" || strings.ContainsAny(secret, " \n") {
			t.Fatalf("want exit 0 and the token secret alone on stdout; got %v", r)
		}
		if st, _, raw := do(t, "GET", p.url+"/v1/status", secret, nil); st != 200 {
			t.Errorf("created auditor token: status %d %s", st, raw)
		}
		if st, _, raw := do(t, "PUT", p.url+"/v1/languages", secret, `{"ranges":["en"]}`); st != 403 {
			t.Errorf("auditor token PUT languages: want 403, got %d %s", st, raw)
		}
		r = runCLI(t, nil, append([]string{"token", "create", "--role", "rollout", "--output", "json"}, flags...)...)
		var tr tokenResp
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tr) != nil || tr.Role != "rollout" || tr.Token == "" || tr.ID == "" {
			t.Fatalf("token create --output json: got %v", r)
		}
		if st, _, raw := do(t, "GET", p.url+"/v1/status", tr.Token, nil); st != 200 {
			t.Errorf("created rollout token: status %d %s", st, raw)
		}
	})
	t.Run("server error", func(t *testing.T) {
		before := getDigest(t, p.url, p.token)
		_, m, _ := do(t, "PUT", p.url+"/v1/languages", p.token, `{"ranges":["ja-JP-mac"]}`)
		msg, _ := m["error"].(string)
		r := runCLI(t, env, "languages", "set", "ja-JP-mac")
		line := oneLine(t, "server error", r.stderr)
		if r.code != 1 || msg == "" || !strings.Contains(line, msg) {
			t.Errorf("want exit 1 and one stderr line containing the server error %q; got %v", msg, r)
		}
		_, m, _ = do(t, "POST", p.url+"/v1/tokens", p.token, `{"role":"superuser"}`)
		msg, _ = m["error"].(string)
		r = runCLI(t, env, "token", "create", "--role", "superuser")
		line = oneLine(t, "server error", r.stderr)
		if r.code != 1 || msg == "" || !strings.Contains(line, msg) {
			t.Errorf("want exit 1 and one stderr line containing the server error %q; got %v", msg, r)
		}
		r = runCLI(t, []string{"PATCHTREE_SERVER=" + p.url, "PATCHTREE_TOKEN=wrong"}, "status")
		oneLine(t, "401", r.stderr)
		if r.code != 1 {
			t.Errorf("bad token: want exit 1; got %v", r)
		}
		if after := getDigest(t, p.url, p.token); after != before {
			t.Errorf("state changed by rejected CLI commands: %v -> %v", before, after)
		}
	})
}
