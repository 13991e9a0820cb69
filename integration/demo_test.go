package integration

import (
	"bytes"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDemoExit(t *testing.T) {
	t.Parallel()
	bin := requireBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--exit")
	cmd.Dir = dir
	cmd.Env = cleanEnv("TMPDIR=" + dir)
	// Own process group, so the demo's site processes can be found (and
	// killed) by group id if it leaves any behind.
	cmd.SysProcAttr = serverSysProcAttr()
	cmd.SysProcAttr.Setpgid = true
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	groupGone := false
	t.Cleanup(func() {
		if !groupGone {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	})

	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		t.Fatalf("patchtree demo --exit still running after 2m; output:\n%s", lastLines(out.String(), 60))
	}
	t.Logf("demo --exit took %v", time.Since(start))
	if err != nil {
		t.Fatalf("patchtree demo --exit: %v; output:\n%s", err, lastLines(out.String(), 60))
	}
	for _, site := range []string{"hq", "emea", "apac"} {
		if !strings.Contains(out.String(), site) {
			t.Errorf("demo output does not mention site %q", site)
		}
	}
	// Every site of the demo speaks Raft over mutual TLS, each with its own site CA.
	if n := strings.Count(out.String(), "raft        mutual TLS 1.3, site CA sha256:"); n != 3 {
		t.Errorf("demo status shows Raft over mutual TLS for %d sites, want 3", n)
	}
	checkDemoCompliance(t, out.String())
	// The demo must not leave its site processes running.
	waitFor(t, 10*time.Second, func() (bool, string) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			groupGone = true
			return true, ""
		}
		return false, "processes of the demo's process group still running after it exited"
	})
	if t.Failed() {
		t.Logf("demo output:\n%s", lastLines(out.String(), 60))
	}
}

// checkDemoCompliance finds the rolled-up compliance table the demo prints at the end (the
// format of `patchtree compliance`) and checks it lists both children with computers, and a
// TOTAL line that adds them up.
func checkDemoCompliance(t *testing.T, out string) {
	t.Helper()
	_, table, ok := strings.Cut(out, "compliance rolled up at hq")
	if !ok {
		t.Errorf("demo output has no rolled-up compliance table")
		return
	}
	lines := strings.Split(table, "\n")
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "SITE ") && strings.Contains(l, "COMPUTERS") && strings.Contains(l, "COMPLIANCE %") {
			header = i
			break
		}
	}
	if header < 0 {
		t.Errorf("compliance table has no header line:\n%s", table)
		return
	}
	computers := map[string]int{}
	for _, l := range lines[header+1:] {
		f := strings.Fields(l)
		if len(f) < 3 {
			break
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Errorf("compliance line %q: COMPUTERS is not a number", l)
			continue
		}
		computers[f[0]] = n
	}
	for _, site := range []string{"emea", "apac"} {
		if n, ok := computers[site]; !ok || n <= 0 {
			t.Errorf("compliance table: child %s has %d computers (listed %t), want some:\n%s", site, n, ok, table)
		}
	}
	if _, ok := computers["hq"]; ok {
		t.Errorf("compliance table lists the parent, which scanned no computers of its own:\n%s", table)
	}
	if got, want := computers["TOTAL"], computers["emea"]+computers["apac"]; got != want || got == 0 {
		t.Errorf("compliance TOTAL %d computers, want %d (emea + apac):\n%s", got, want, table)
	}
}
