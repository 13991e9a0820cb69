package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"patchtree/backup"
	"patchtree/node"
)

// TestSnapshotFlags: the Raft snapshot flags reach the node configuration with raft's defaults,
// and values that cannot work are refused.
func TestSnapshotFlags(t *testing.T) {
	parse := func(args ...string) (node.Config, error) {
		fs := newFlags("serve", "", "")
		var s snapshotFlags
		s.register(fs)
		if err := parseFlags(fs, args); err != nil {
			return node.Config{}, err
		}
		var cfg node.Config
		return cfg, s.apply(&cfg)
	}
	cfg, err := parse()
	if err != nil || cfg.SnapshotThreshold != 8192 || cfg.SnapshotInterval != 120*time.Second || cfg.TrailingLogs != 10240 ||
		cfg.MaxSnapshotBytes != node.DefaultMaxSnapshotBytes {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parse("--snapshot-threshold", "500", "--snapshot-interval", "30s", "--trailing-logs", "100", "--max-snapshot-bytes", "1000")
	if err != nil || cfg.SnapshotThreshold != 500 || cfg.SnapshotInterval != 30*time.Second || cfg.TrailingLogs != 100 || cfg.MaxSnapshotBytes != 1000 {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"--snapshot-threshold", "0"}, {"--snapshot-interval", "0s"}, {"--trailing-logs", "0"}, {"--max-snapshot-bytes", "0"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestSnapshotInspectRefusesBadFiles: inspect and restore check the file locally and name the
// fault; a missing FILE is a usage error.
func TestSnapshotInspectRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.snap")
	if err := os.WriteFile(bad, []byte(backup.Magic+"\x00\x00\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runSnapshotInspect([]string{bad}); !errors.Is(err, backup.ErrTruncated) {
		t.Errorf("inspect of a truncated file: %v, want ErrTruncated", err)
	}
	if err := runSnapshotRestore([]string{bad, "--server", "http://127.0.0.1:1"}); !errors.Is(err, backup.ErrTruncated) {
		t.Errorf("restore of a truncated file: %v, want ErrTruncated before any request", err)
	}
	var usage usageError
	if err := runSnapshotInspect(nil); !errors.As(err, &usage) {
		t.Errorf("inspect without FILE: %v, want a usage error", err)
	}
}
