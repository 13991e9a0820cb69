package integration

import (
	"strings"
	"testing"
	"time"
)

// TestRestartFlagsDisagreeWithStoredSite: a restart whose --name, --role or explicit --languages
// differ from the site in the data dir stops before serving with one line naming the stored
// value; a restart without those flags, or with the stored ranges, starts.
func TestRestartFlagsDisagreeWithStoredSite(t *testing.T) {
	t.Parallel()
	p := startSite(t, siteOpts{Name: "keep-hq", Languages: []string{"en"}})
	// The change is a log entry after the site's first one: the check reads it from the log.
	if r := runCLI(t, nil, "languages", "set", "de,fr", "--server", p.url, "--token", p.token); r.code != 0 {
		t.Fatalf("languages set: %v", r)
	}
	p.stop(t)

	serve := func(args ...string) cliResult {
		base := []string{"serve", "--data-dir", p.dataDir, "--listen", "127.0.0.1:0", "--log-level", "error"}
		return runCLI(t, nil, append(base, args...)...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"name", []string{"--role", "parent", "--name", "other-hq"}, `holds site "keep-hq"`},
		{"role", []string{"--role", "relay", "--name", "keep-hq"}, `is a parent`},
		{"languages", []string{"--role", "parent", "--name", "keep-hq", "--languages", "en"}, `manages "de,fr"`},
	} {
		r := serve(tc.args...)
		line := oneLine(t, tc.name, r.stderr)
		if r.code != 1 || !strings.HasPrefix(line, "patchtree: configuration differs from the stored site: --"+tc.name) ||
			!strings.Contains(line, tc.want) {
			t.Errorf("%s: want exit 1 and one line naming %s; got %v", tc.name, tc.want, r)
		}
	}

	// The stored ranges in another order start (launch keeps the flags; restart would drop
	// --languages), and so do the harness's flags, without --languages on a restart.
	p.args = []string{"serve", "--role", "parent", "--name", "keep-hq", "--data-dir", p.dataDir,
		"--listen", "127.0.0.1:0", "--languages", "fr,de"}
	p.launch(t)
	p.waitUp(t, 30*time.Second)
	p.stop(t)
	p.restart(t)
}
