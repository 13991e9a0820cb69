package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"
)

// auditEntry is one line of the audit log as the API answers it.
type auditEntry struct {
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Actor struct {
		TokenID string `json:"token_id"`
		Name    string `json:"name"`
		Role    string `json:"role"`
	} `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail"`
}

// actor names who did it in a word or two.
func (e *auditEntry) actor() string {
	a := e.Actor
	switch {
	case a.Name != "" && a.TokenID != "":
		return a.Name + " (" + a.TokenID + ")"
	case a.TokenID != "" && a.Role != "":
		return a.Role + " token " + a.TokenID
	case a.TokenID != "":
		return a.TokenID
	case a.Name != "":
		return a.Name
	}
	return "system"
}

// auditQuery parses the flags of audit into the query of GET /v1/audit.
func auditQuery(args []string) (url.Values, *clientFlags, error) {
	fs := newFlags("audit", "[--action PREFIX] [--since KEY] [--limit N] [flags]",
		"Show the audit log, oldest first: policy and settings changes and every other write by an\nadministrator or rollout operator (roles admin and auditor).")
	action := fs.String("action", "", "only actions starting with this prefix, such as policy.")
	since := fs.String("since", "", "only entries after this key (the key the previous page ended at)")
	limit := fs.Int("limit", 100, "at most this many entries")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, usageError{fmt.Errorf("audit takes no arguments, got %q", fs.Arg(0))}
	}
	if *limit <= 0 {
		return nil, nil, usageError{fmt.Errorf("audit: --limit must be positive, not %d", *limit)}
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *action != "" {
		q.Set("action", *action)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	return q, cf, nil
}

func runAudit(args []string) error {
	q, cf, err := auditQuery(args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ans struct {
		Entries []auditEntry `json:"entries"`
		Next    string       `json:"next"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/audit?"+q.Encode(), nil, &ans); printed || err != nil {
		return err
	}
	if err := printAudit(os.Stdout, ans.Entries); err != nil {
		return err
	}
	if ans.Next != "" {
		more := "patchtree audit"
		if a := q.Get("action"); a != "" {
			more += " --action " + a
		}
		fmt.Fprintf(os.Stderr, "more entries follow: %s --limit %s --since %s\n", more, q.Get("limit"), ans.Next)
	}
	return nil
}

// printAudit prints one line per audit entry.
func printAudit(w io.Writer, entries []auditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tDETAIL")
	for i := range entries {
		e := &entries[i]
		target := cell(e.Target)
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), cell(e.actor()), e.Action, target, compactDetail(e.Detail, 80))
	}
	return tw.Flush()
}

// compactDetail prints a JSON value on one line, cut to at most n characters.
func compactDetail(detail json.RawMessage, n int) string {
	if len(bytes.TrimSpace(detail)) == 0 || string(bytes.TrimSpace(detail)) == "null" {
		return "-"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, detail); err != nil {
		return truncate(cell(string(detail)), n)
	}
	return truncate(buf.String(), n)
}
