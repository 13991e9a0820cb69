package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	info := Get()
	if info.Version != Version {
		t.Errorf("Version = %q, want the package variable %q", info.Version, Version)
	}
	if !strings.HasPrefix(info.GoVersion, "go") {
		t.Errorf("GoVersion = %q, want a go toolchain version like %q", info.GoVersion, runtime.Version())
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		info Info
		want string
	}{
		{Info{Version: "v1.2.3", Commit: "0123456789abcdef0123", GoVersion: "go1.26.8"}, "patchtree v1.2.3 (commit 0123456789ab, go1.26.8)"},
		{Info{Version: "dev", Commit: "abc", Modified: true, GoVersion: "go1.26.8"}, "patchtree dev (commit abc-dirty, go1.26.8)"},
		{Info{Version: "dev", GoVersion: "go1.26.8"}, "patchtree dev (commit unknown, go1.26.8)"},
	} {
		if got := tc.info.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
