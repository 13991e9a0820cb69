// Package shareddata finds the real public data that tests and benchmarks use: ../shared/data
// beside the module root. A test that needs a file which is absent is skipped with a message, so
// the suite still runs where the data is not.
package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the absolute path of rel (slash-separated) under ../shared/data, or skips tb.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the working directory; shared data unavailable")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "data", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data %s is absent (%v); skipping", rel, err)
	}
	return p
}
