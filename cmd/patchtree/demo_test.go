package main

import (
	"os/exec"
	"testing"
	"time"
)

// TestStopDemoAfterFirstExitWatch stops sites whose exits a first-exit watch is also waiting
// for, as the demo does on Ctrl-C: stopping must not wait for an exit the watch took.
func TestStopDemoAfterFirstExitWatch(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	var sites []*demoSite
	for _, name := range []string{"hq", "emea"} {
		s := &demoSite{name: name, dir: t.TempDir(), cmd: exec.Command("sleep", "60")}
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.watchExit(nil)
		sites = append(sites, s)
	}
	t.Cleanup(func() {
		for _, s := range sites {
			s.cmd.Process.Kill()
		}
	})
	first := firstExit(sites)
	done := make(chan struct{})
	go func() {
		stopDemo(sites)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("stopDemo did not return after the sites exited")
	}
	select {
	case err := <-first:
		if err == nil {
			t.Error("first exit reported no error")
		}
	case <-time.After(time.Second):
		t.Error("the first-exit watch saw no exit")
	}
}
