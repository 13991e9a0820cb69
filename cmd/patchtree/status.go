package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/version"
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
	var st struct {
		node.Status
		Parent  *hierarchy.ChildState `json:"parent"`
		Version *version.Info         `json:"version"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/status", nil, &st); printed || err != nil {
		return err
	}
	printStatus(os.Stdout, c.base, &st.Status)
	if st.Version != nil {
		fmt.Fprintf(os.Stdout, "  version     %s (commit %s, %s)\n", st.Version.Version, st.Version.ShortCommit(), st.Version.GoVersion)
	}
	if st.Parent != nil {
		printParentLink(os.Stdout, st.Parent)
	}
	return nil
}

// printParentLink renders a child or relay site's link to its parent: its state, where it
// goes, the last run, and what this server lacks to run it.
func printParentLink(w io.Writer, p *hierarchy.ChildState) {
	contact := "never"
	if !p.LastContact.IsZero() {
		contact = p.LastContact.UTC().Format(time.RFC3339)
	}
	via := ""
	if p.URL != "" {
		via = " via " + p.URL
	}
	fmt.Fprintf(w, "  parent link %s%s (joined %t, connected %t, last contact %s)\n", p.State, via, p.Joined, p.Connected, contact)
	if len(p.Addresses) > 1 {
		fmt.Fprintf(w, "    addresses %s\n", strings.Join(p.Addresses, ", "))
	}
	run := p.LastRun
	if run == "" {
		run = "(none yet)"
	}
	fmt.Fprintf(w, "    cursor    %d, last run %s, verified %t\n", p.Cursor, run, p.LastVerified)
	if len(p.Uncovered) > 0 {
		fmt.Fprintf(w, "    uncovered %s (the parent sends nothing in them)\n", strings.Join(p.Uncovered, ", "))
	}
	if p.Error != "" {
		fmt.Fprintf(w, "    error     %s\n", p.Error)
	}
	if p.Problem != "" {
		fmt.Fprintf(w, "    problem   %s\n", p.Problem)
	}
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
