package integration

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDemoExit(t *testing.T) {
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
