package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestVersionAndLogFormat: `patchtree version`, GET /v1/status and `patchtree status` report the
// same build, and a server's stderr (Raft's lines included) is one format: slog text lines.
func TestVersionAndLogFormat(t *testing.T) {
	t.Parallel()
	type build struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	var cli build
	r := runCLI(t, nil, "version", "--json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cli) != nil || cli.Version == "" || !strings.HasPrefix(cli.GoVersion, "go") {
		t.Fatalf("patchtree version --json: %v", r)
	}
	p := startSite(t, siteOpts{Name: "version-site"})
	var st struct {
		Version build `json:"version"`
	}
	doJSON(t, "GET", p.url+"/v1/status", p.token, nil, 200, &st)
	if st.Version != cli {
		t.Errorf("GET /v1/status version %+v, patchtree version %+v", st.Version, cli)
	}
	r = runCLI(t, nil, "status", "--server", p.url, "--token", p.token)
	if r.code != 0 || !strings.Contains(r.stdout, "version     "+cli.Version+" (commit ") {
		t.Errorf("patchtree status lacks the version line: %v", r)
	}

	p.stop(t)
	p.restart(t) // a restart has Raft state to recover: its election logs a line too
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	raftLines := 0
	for line := range strings.Lines(string(log)) {
		switch {
		case strings.HasPrefix(line, "==== "): // the harness's own marks
		case !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level="):
			t.Errorf("server stderr line in another format: %q", line)
		case strings.Contains(line, "component=raft"):
			raftLines++
			if strings.Contains(line, "level=WARN") {
				t.Errorf("a normal start logged a Raft warning: %q", line)
			}
		}
	}
	if raftLines == 0 {
		t.Errorf("no Raft line in the server's log (the first election's is expected at INFO):\n%s", log)
	}
}
