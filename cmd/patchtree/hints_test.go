package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/patchtree": "/usr/local/bin/patchtree",
		"http://127.0.0.1:8400":    "http://127.0.0.1:8400",
		"/tmp/my dir/patchtree":    "'/tmp/my dir/patchtree'",
		"/tmp/it's":                `'/tmp/it'\''s'`,
		"":                         "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestDemoHintRunsInAShell pastes the demo's hint into sh: the export line sets both variables.
func TestDemoHintRunsInAShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := filepath.Join(t.TempDir(), "a dir")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("abc.def\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printDemoHint(&b, "/opt/patch tree/patchtree", "http://127.0.0.1:8400", tokenFile)
	var export string
	for line := range strings.Lines(b.String()) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "export ") {
			export = l
		}
	}
	if export == "" || !strings.Contains(b.String(), "'/opt/patch tree/patchtree' tree") {
		t.Fatalf("hint lacks the export line or the quoted binary path:\n%s", b.String())
	}
	out, err := exec.Command(sh, "-c", export+`; printf '%s|%s' "$PATCHTREE_SERVER" "$PATCHTREE_TOKEN"`).Output()
	if err != nil || string(out) != "http://127.0.0.1:8400|abc.def" {
		t.Fatalf("sh -c %q: %q, %v; want the server URL and the token", export, out, err)
	}
}

func TestChildServeHint(t *testing.T) {
	var b bytes.Buffer
	printChildServeHint(&b, "berlin", "https://hq.example:8400", "id.secret", []string{"de", "en"})
	for _, want := range []string{
		"patchtree serve --role child --name berlin --parent https://hq.example:8400 --join-token id.secret --data-dir /var/lib/patchtree --languages de,en\n",
		"--role relay", "--join-token-file", "--tls-ca",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("hint lacks %q:\n%s", want, b.String())
		}
	}
}
