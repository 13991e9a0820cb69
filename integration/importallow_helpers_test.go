package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// testImportAllow is the --import-allow a test site gets unless its test sets its own: the
// temp dir that t.TempDir() feeds live in, the repository's testdata
// and ../shared/data. Sites of the security tests pass their own, narrower list.
func testImportAllow(extra []string) []string {
	if slices.ContainsFunc(extra, func(a string) bool {
		return a == "--import-allow" || strings.HasPrefix(a, "--import-allow=")
	}) {
		return nil
	}
	dirs := []string{os.TempDir()}
	if wd, err := os.Getwd(); err == nil {
		root := filepath.Dir(wd) // integration/ is one level below the module root
		dirs = append(dirs, filepath.Join(root, "testdata"), filepath.Join(root, "..", "shared", "data"))
	}
	return []string{"--import-allow", strings.Join(dirs, ",")}
}
