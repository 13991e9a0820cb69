package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeSecretFilesAndLimitFlags: --token-file and --join-token-file fill the secrets, clash
// with their flags, and refuse files others can read; bad limit values are usage errors.
func TestServeSecretFilesAndLimitFlags(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tok")
	os.WriteFile(tokFile, []byte("abc.secret\n"), 0o600)
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("abc.secret\n"), 0o644)
	os.Chmod(loose, 0o644)

	parse := func(args ...string) (*serveFlags, error) {
		fs := newFlags("serve", "", "")
		var f serveFlags
		fs.StringVar(&f.token, "token", "", "")
		fs.StringVar(&f.joinToken, "join-token", "env-value", "")
		fs.StringVar(&f.adminToken, "admin-token", "", "")
		f.secretFiles.register(fs)
		f.limits.register(fs)
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if err := f.secretFiles.read(fs, &f); err != nil {
			return nil, err
		}
		return &f, f.limits.validate()
	}
	f, err := parse("--token-file", tokFile, "--join-token-file", tokFile, "--admin-token-file", tokFile)
	if err != nil || f.token != "abc.secret" || f.joinToken != "abc.secret" || f.adminToken != "abc.secret" {
		t.Fatalf("secret files: %+v, %v", f, err)
	}
	if f.limits.readTimeout != 30*time.Second || f.limits.maxConnsPerClient != 256 || f.limits.joinRate != 30 {
		t.Errorf("defaults: %+v", f.limits)
	}
	if _, err := parse("--token", "x.y", "--token-file", tokFile); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("--token with --token-file: %v", err)
	}
	if _, err := parse("--join-token-file", loose); err == nil || !strings.Contains(err.Error(), "accessible by group or others") {
		t.Errorf("a 0644 secret file: %v", err)
	}
	for _, bad := range [][]string{
		{"--http-read-timeout", "0s"}, {"--http-max-header-bytes", "100"}, {"--http-max-conns-per-client", "-1"},
		{"--join-rate", "-1"}, {"--auth-fail-burst", "0"},
	} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
