package main

import (
	"fmt"
	"io"
	"strings"
)

// printDemoHint tells the demo's user how to talk to the running parent from another shell:
// the environment to export (the token read from its file, so it stays out of the scrollback)
// and commands to try, with this binary's real path (it need not be on PATH).
func printDemoHint(w io.Writer, exe, serverURL, tokenFile string) {
	bin := shellQuote(exe)
	fmt.Fprintln(w, "patchtree demo: to look around from another shell, paste:")
	fmt.Fprintf(w, "\n  export PATCHTREE_SERVER=%s PATCHTREE_TOKEN=\"$(cat %s)\"\n", shellQuote(serverURL), shellQuote(tokenFile))
	for _, cmd := range []string{"tree", "runs", "compliance --by bulletin"} {
		fmt.Fprintf(w, "  %s %s\n", bin, cmd)
	}
	fmt.Fprintln(w)
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
