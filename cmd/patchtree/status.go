package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"patchtree/node"
)

func runStatus(args []string) error {
	fs := newFlags("status", "[flags]", "Show the site's status: name, role, Raft state, servers, languages.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("status takes no arguments, got %q", fs.Arg(0))}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var st node.Status
	if printed, err := c.request(http.MethodGet, "/v1/status", nil, &st); printed || err != nil {
		return err
	}
	printStatus(os.Stdout, c.base, &st)
	return nil
}

// printStatus renders a site's status for people.
func printStatus(w io.Writer, url string, st *node.Status) {
	fmt.Fprintf(w, "site %s (%s)  %s\n", st.Name, st.Role, url)
	fmt.Fprintf(w, "  site id     %s\n", st.SiteID)
	fmt.Fprintf(w, "  this node   %s  raft %s, term %d, applied %d/%d, ready %t\n",
		st.NodeID, st.Raft.State, st.Raft.Term, st.Raft.FSMAppliedIndex, st.Raft.CommitIndex, st.Ready)
	if st.Raft.SkippedEntries > 0 {
		fmt.Fprintf(w, "  upgrade     skipped %d log entries of types this version does not know: upgrade this server\n",
			st.Raft.SkippedEntries)
	}
	leader := st.Raft.LeaderID
	if leader == "" {
		leader = "(none: election in progress)"
	}
	fmt.Fprintf(w, "  leader      %s %s\n", leader, st.Raft.LeaderAPI)
	fmt.Fprintf(w, "  servers     %d\n", len(st.Raft.Servers))
	if st.Raft.Transport != "" {
		fmt.Fprintf(w, "  raft        %s, site CA %s\n", st.Raft.Transport, st.Raft.SiteCA)
	}
	for _, s := range st.Raft.Servers {
		mark := " "
		if s.Leader {
			mark = "*"
		}
		fmt.Fprintf(w, "    %s %s  raft %s  api %s  %s\n", mark, s.ID, s.RaftAddr, s.APIAddr, s.Suffrage)
	}
	langs := strings.Join(st.Languages, ", ")
	if langs == "" {
		langs = "(none: language-neutral updates only)"
	}
	fmt.Fprintf(w, "  languages   %s\n", langs)
	fmt.Fprintf(w, "  catalog     version %d: %d bulletins, %d updates\n", st.Catalog.Version, st.Catalog.Bulletins, st.Catalog.Updates)
	fmt.Fprintf(w, "  state index %d\n", st.Index)
	if len(st.LeaderLoops) > 0 {
		fmt.Fprintf(w, "  leader loops %s\n", strings.Join(st.LeaderLoops, ", "))
	}
}
