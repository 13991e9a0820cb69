package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"patchtree/replication/hierarchy"
	"patchtree/store"
)

func runChild(args []string) error {
	return dispatchSub("child", "Usage: patchtree child add NAME | list | remove NAME\n\nEnrol child sites at this parent, list them with their replication status, remove them.",
		args, []subcommand{{"add", runChildAdd}, {"list", runChildList}, {"remove", runChildRemove}})
}

func runChildAdd(args []string) error {
	fs := newFlags("child add", "NAME [flags]", "Enrol a child site; prints its one-time join token (start the child with\n--parent URL --join-token TOKEN).")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("child add needs exactly one NAME")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ans struct {
		JoinToken string `json:"join_token"`
	}
	raw, err := c.do(http.MethodPost, "/v1/children", map[string]string{"name": fs.Arg(0)}, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	fmt.Println(ans.JoinToken)
	return nil
}

func runChildList(args []string) error {
	fs := newFlags("child list", "[flags]", "List the enrolled children with their replication status.")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans struct {
		Children []hierarchy.ChildStatus `json:"children"`
	}
	raw, err := c.do(http.MethodGet, "/v1/children", nil, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHILD\tCONNECTED\tRANGES\tCURSOR\tLAG\tLAST RUN\tSTATUS")
	for _, ch := range ans.Children {
		last := "-"
		if r := ch.LastRun; r != nil {
			last = fmt.Sprintf("%s %s, %d records, verified %t", r.Mode, r.Trigger, r.Records, r.Verified)
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%d\t%d\t%s\t%s\n", ch.Name, ch.Connected, strings.Join(ch.Ranges, ","), ch.Cursor, ch.LagIndex, last, ch.Status)
	}
	return tw.Flush()
}

func runChildRemove(args []string) error {
	fs := newFlags("child remove", "NAME [flags]", "Remove a child site and revoke its credential.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("child remove needs exactly one NAME")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.do(http.MethodDelete, "/v1/children/"+url.PathEscape(fs.Arg(0)), nil, nil)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else {
		fmt.Printf("removed %s\n", fs.Arg(0))
	}
	return nil
}

func runAlerts(args []string) error {
	fs := newFlags("alerts", "[flags]", "Language alerts: child ranges that no range of this parent covers.")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans struct {
		Alerts []hierarchy.Alert `json:"alerts"`
	}
	raw, err := c.do(http.MethodGet, "/v1/alerts", nil, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	if len(ans.Alerts) == 0 {
		fmt.Println("no language alerts")
	}
	for _, a := range ans.Alerts {
		fmt.Println(a.Message)
	}
	return nil
}

func runRuns(args []string) error {
	fs := newFlags("runs", "[--child NAME] [flags]", "Replication run history, newest first.")
	child := fs.String("child", "", "only this child's runs")
	limit := fs.Int("limit", 50, "at most this many runs")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *child != "" {
		q.Set("child", *child)
	}
	var ans struct {
		Runs []store.ReplicationRun `json:"runs"`
	}
	raw, err := c.do(http.MethodGet, "/v1/replication/runs?"+q.Encode(), nil, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tCHILD\tMODE\tTRIGGER\tFROM→TO\tRECORDS\tDELETES\tWIRE\tRAW\tMS\tVERIFIED\tERROR")
	for _, r := range ans.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d→%d\t%d\t%d\t%d\t%d\t%d\t%t\t%s\n", r.StartedAt.Format(time.RFC3339), r.Child, r.Mode, r.Trigger,
			r.From, r.To, r.Records, r.Deletes, r.BytesWire, r.BytesRaw, r.DurationMS, r.Verified, r.Error)
	}
	return tw.Flush()
}

func runReplicateNow(args []string) error {
	fs := newFlags("replicate-now", "[--child NAME] [--complete] [--wait] [flags]",
		"Replicate the catalog to one child or all now. With --wait, answer when every targeted child\nhas applied and verified its run (or the timeout passes), with per-child results.")
	child := fs.String("child", "", "only this child (default: all)")
	scope := fs.String("scope", "catalog", "what to replicate: catalog or all")
	complete := fs.Bool("complete", false, "send the whole filtered view (the child drops anything else)")
	wait := fs.Bool("wait", false, "wait for the runs to be applied and verified")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long --wait waits")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	c.http.Timeout = *timeout + 30*time.Second
	mode := "differential"
	if *complete {
		mode = "complete"
	}
	var ans struct {
		Children []string `json:"children"`
		Results  []struct {
			Child    string                `json:"child"`
			Done     bool                  `json:"done"`
			Verified bool                  `json:"verified"`
			Run      *store.ReplicationRun `json:"run"`
			Error    string                `json:"error"`
		} `json:"results"`
	}
	body := map[string]any{"child": *child, "scope": *scope, "mode": mode, "wait": *wait, "timeout": timeout.String()}
	raw, err := c.do(http.MethodPost, "/v1/replication/now", body, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else if !*wait {
		fmt.Printf("replication requested for %s\n", strings.Join(ans.Children, ", "))
	}
	failed := 0
	for _, r := range ans.Results {
		if !r.Done || !r.Verified {
			failed++
		}
		if cf.output == "json" {
			continue
		}
		if r.Run != nil {
			fmt.Printf("%-10s %s %s run: %d records, %d deletes, %d bytes on the wire (%d raw), %d ms, verified %t %s\n", r.Child,
				r.Run.Mode, r.Run.Trigger, r.Run.Records, r.Run.Deletes, r.Run.BytesWire, r.Run.BytesRaw, r.Run.DurationMS, r.Verified, r.Error)
		} else {
			fmt.Printf("%-10s %s\n", r.Child, r.Error)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d children did not apply and verify their run", failed, len(ans.Results))
	}
	return nil
}
