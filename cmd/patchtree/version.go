package main

import (
	"encoding/json"
	"fmt"
	"os"

	"patchtree/version"
)

func runVersion(args []string) error {
	fs := newFlags("version", "[--json]", "Show this binary's version, the commit it was built from and its Go version.")
	asJSON := fs.Bool("json", false, "print the build information as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("version takes no arguments, got %q", fs.Arg(0))}
	}
	info := version.Get()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintln(os.Stdout, info.String())
	return err
}
