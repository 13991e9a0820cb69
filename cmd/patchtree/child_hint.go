package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"patchtree/node"
)

// childDataDir is the data dir the printed serve line suggests: the one docs/deploy's unit uses.
const childDataDir = "/var/lib/patchtree"

// childServeLine is the `patchtree serve` command that starts an enrolled child site.
func childServeLine(name, parentURL, joinToken string, languages []string) string {
	langs := strings.Join(languages, ",")
	if langs == "" {
		langs = "en"
	}
	return fmt.Sprintf("patchtree serve --role child --name %s --parent %s --join-token %s --data-dir %s --languages %s",
		name, parentURL, joinToken, childDataDir, langs)
}

// printChildServeHint tells the operator how to start the child just enrolled: the serve line
// to paste (with this site's ranges as the child's starting point), the relay variant, and
// how to keep the token out of the process list.
func printChildServeHint(w io.Writer, name, parentURL, joinToken string, languages []string) {
	fmt.Fprintf(w, "Start the child site %s with:\n\n  %s\n\n", name, childServeLine(name, parentURL, joinToken, languages))
	fmt.Fprintln(w, "  --role relay instead of --role child if it serves children of its own.")
	fmt.Fprintln(w, "  --languages: the ranges the child's machines use (this site's ranges are shown).")
	fmt.Fprintln(w, "  The token shows in ps: write it to a file (mode 0600) and use --join-token-file FILE.")
	if strings.HasPrefix(parentURL, "https://") {
		fmt.Fprintln(w, "  Add --tls-ca FILE if this site's certificate is not signed by a CA the child trusts.")
	}
}

// siteAPIURL is the URL children should use for this site, and this site's managed ranges:
// the leader's advertised API URL, else the URL the client reached.
func siteAPIURL(c *apiClient) (string, []string, error) {
	var st node.Status
	if _, err := c.do(http.MethodGet, "/v1/status", nil, &st); err != nil {
		return c.base, nil, fmt.Errorf("read this site's status: %w", err)
	}
	if st.Raft.LeaderAPI != "" {
		return st.Raft.LeaderAPI, st.Languages, nil
	}
	return c.base, st.Languages, nil
}
