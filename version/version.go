// Package version reports which build of patchtree is running: the release version stamped by
// the Makefile's build, the VCS commit the Go toolchain recorded, and the Go version.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, set at build time:
//
//	go build -ldflags "-X patchtree/version.Version=v1.2.3" ./cmd/patchtree
//
// A build without it reports "dev".
var Version = "dev"

// Info describes one build.
type Info struct {
	// Version is the release version ("dev" when the build did not stamp one).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from; empty when unknown (go run, a build
	// outside a checkout, or -buildvcs=false).
	Commit string `json:"commit,omitempty"`
	// Modified reports that the checkout had uncommitted changes when it was built.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the running binary's build information.
func Get() Info {
	info := Info{Version: Version, GoVersion: runtime.Version()}
	build, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if build.GoVersion != "" {
		info.GoVersion = build.GoVersion
	}
	for _, s := range build.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortCommit is the commit's first 12 hex digits, with "-dirty" when the tree was modified;
// "unknown" when the build recorded no commit.
func (i Info) ShortCommit() string {
	if i.Commit == "" {
		return "unknown"
	}
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return c
}

// String is the one-line form: "patchtree v1.2.3 (commit 0123456789ab, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("patchtree %s (commit %s, %s)", i.Version, i.ShortCommit(), i.GoVersion)
}
