package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deployDir holds the deployment files, relative to this package.
const deployDir = "../../docs/deploy"

// dockerGoBuild returns the environment and arguments of the Dockerfile's `RUN ... go build`
// line, with ${VAR} taken from vars and the -o output replaced by out.
func dockerGoBuild(dockerfile string, vars map[string]string, out string) (env, args []string, err error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "RUN ") || !strings.Contains(line, "go build") {
			continue
		}
		words, err := shellWords(os.Expand(strings.TrimPrefix(line, "RUN "), func(k string) string { return vars[k] }))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dockerfile, err)
		}
		for len(words) > 0 && strings.Contains(words[0], "=") {
			env, words = append(env, words[0]), words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			return nil, nil, fmt.Errorf("%s: the RUN line is not `[VAR=value ...] go build ...`: %q", dockerfile, line)
		}
		args = words[1:]
		for i := range args {
			if args[i] == "-o" && i+1 < len(args) {
				args[i+1] = out
				return env, args, nil
			}
		}
		return nil, nil, fmt.Errorf("%s: the go build line has no -o", dockerfile)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, errors.New(dockerfile + ": no RUN line with go build")
}

// shellWords splits s into words the way sh does for plain words and double-quoted strings.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated double quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestDeployFiles builds patchtree with the Dockerfile's go build command (as a plain go build)
// and checks the binary reports the version the build stamped, then verifies the systemd unit
// with systemd-analyze, its ExecStart pointed at that binary.
func TestDeployFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary (-short)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "patchtree")
	env, args, err := dockerGoBuild(filepath.Join(deployDir, "Dockerfile"), map[string]string{"VERSION": "v0.0.0-deploy-test"}, bin)
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", args...)
	build.Dir = "../.."
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "patchtree v0.0.0-deploy-test (") {
		t.Fatalf("%s version: %q, %v; want the version the build stamped", bin, out, err)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (.ci/run installs it): the unit is not verified")
	}
	unit, err := os.ReadFile(filepath.Join(deployDir, "patchtree.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/patchtree", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("patchtree.service lacks %q", want)
		}
	}
	// verify checks that ExecStart's binary exists: point it at the one just built.
	const installed = "ExecStart=/usr/local/bin/patchtree "
	if !strings.Contains(string(unit), installed) {
		t.Fatalf("patchtree.service has no %q line", installed)
	}
	copyPath := filepath.Join(dir, "patchtree.service")
	if err := os.WriteFile(copyPath, []byte(strings.Replace(string(unit), installed, "ExecStart="+bin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(analyze, "verify", copyPath)
	verify.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	if out, err := verify.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", copyPath, err, out)
	}
}
