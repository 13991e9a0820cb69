package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"patchtree/replication/hierarchy"
)

// runTree prints GET /v1/tree: this site and every site below it, indented by depth.
func runTree(args []string) error {
	fs := newFlags("tree", "[flags]", "Every site below this one, at every depth: role, ranges, link, the root catalog version it\nholds and its lag, its last catalog run and the next one, and language alerts.")
	wide := fs.Bool("wide", false, wideUsage)
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var tree hierarchy.Tree
	if printed, err := c.request(http.MethodGet, "/v1/tree", nil, &tree); printed || err != nil {
		return err
	}
	return printTree(os.Stdout, &tree, *wide)
}

// treeColumns are the widths of the tree's columns up to LAST CATALOG RUN.
type treeColumns struct{ site, ranges, version, lag, last int }

// printTree prints one line per site, indented by depth: within tableWidth columns (names and
// ranges clipped, the alerts cut), or with wider columns when wide.
func printTree(w io.Writer, tree *hierarchy.Tree, wide bool) error {
	cols := treeColumns{site: 22, ranges: 12, version: 7, lag: 10, last: 24}
	if wide {
		cols = treeColumns{site: 32, ranges: 40, version: 9, lag: 12, last: 26}
	}
	format := fmt.Sprintf("%%-%ds %%-6s %%-%ds %%-4s %%%dv %%%ds %%-%ds %%s\n", cols.site, cols.ranges, cols.version, cols.lag, cols.last)
	var b strings.Builder
	top := 0
	if len(tree.Sites) > 0 {
		top = tree.Sites[0].Depth
	}
	fmt.Fprintf(&b, format, "SITE", "ROLE", "RANGES", "LINK", "VERSION", "LAG", "LAST CATALOG RUN", "ALERTS")
	for i, s := range tree.Sites {
		name := s.Path
		if j := strings.LastIndex(name, "/"); j >= 0 && i > 0 {
			name = name[j+1:]
		}
		link := "-"
		if i > 0 {
			link = "down"
			if s.Connected {
				link = "up"
			}
		}
		lag := "0"
		if s.LagIndex > 0 {
			lag = fmt.Sprintf("%d/%s", s.LagIndex, (time.Duration(s.LagSeconds) * time.Second).String())
		}
		last := "-"
		if r, ok := s.LastRuns["catalog"]; ok {
			last = fmt.Sprintf("%s %s", r.Mode, r.FinishedAt.Local().Format("01-02 15:04"))
			if !r.Verified {
				last = "UNVERIFIED " + last
			}
		}
		alerts := "-"
		if len(s.Alerts) > 0 {
			alerts = strings.Join(s.Alerts, ",")
		}
		fmt.Fprintf(&b, format, truncate(strings.Repeat("  ", s.Depth-top)+name, cols.site), s.Role,
			truncate(strings.Join(s.Ranges, ","), cols.ranges), link, s.RootVersion, lag, truncate(last, cols.last), alerts)
	}
	return writeFitted(w, b.String(), wide)
}
