package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"patchtree/replication/hierarchy"
)

// runTree prints GET /v1/tree: this site and every site below it, indented by depth.
func runTree(args []string) error {
	fs := newFlags("tree", "[flags]", "Every site below this one, at every depth: role, ranges, link, the root catalog version it\nholds and its lag, its last catalog run and the next one, and language alerts.")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var tree hierarchy.Tree
	if printed, err := c.request(http.MethodGet, "/v1/tree", nil, &tree); printed || err != nil {
		return err
	}
	top := 0
	if len(tree.Sites) > 0 {
		top = tree.Sites[0].Depth
	}
	fmt.Printf("%-32s %-6s %-14s %-6s %9s %12s %-26s %s\n", "SITE", "ROLE", "RANGES", "LINK", "VERSION", "LAG", "LAST CATALOG RUN", "ALERTS")
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
				last += " UNVERIFIED"
			}
		}
		alerts := "-"
		if len(s.Alerts) > 0 {
			alerts = strings.Join(s.Alerts, ",")
		}
		fmt.Printf("%-32s %-6s %-14s %-6s %9d %12s %-26s %s\n", clip(strings.Repeat("  ", s.Depth-top)+name, 32), s.Role,
			clip(strings.Join(s.Ranges, ","), 14), link, s.RootVersion, lag, last, alerts)
	}
	return nil
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
