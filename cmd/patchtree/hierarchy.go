package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"patchtree/replication/hierarchy"
)

func runChild(args []string) error {
	return dispatchSub("child", "Usage: patchtree child add NAME | list | remove NAME | rotate NAME\n\nEnrol child sites at this parent, list them with their replication status, remove them, rotate their credential.",
		args, []subcommand{{"add", runChildAdd}, {"list", runChildList}, {"remove", runChildRemove}, {"rotate", runChildRotate}})
}

func runChildRotate(args []string) error {
	fs := newFlags("child rotate", "NAME [flags]", "Replace a child's credential without re-enrolment: its node credential is revoked at once\n"+
		"and a new one-time join token printed. Restart the child with --join-token NEW (or\n"+
		"--join-token-file): it exchanges the token and keeps its replica, cursors and compliance sequence.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("child rotate needs exactly one NAME")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ans struct {
		JoinToken string `json:"join_token"`
	}
	if printed, err := c.request(http.MethodPost, "/v1/children/"+url.PathEscape(fs.Arg(0))+"/rotate", nil, &ans); printed || err != nil {
		return err
	}
	fmt.Println(ans.JoinToken)
	return nil
}

func runChildAdd(args []string) error {
	fs := newFlags("child add", "NAME [flags]", "Enrol a child site: prints its one-time join token on stdout, and on stderr the\n'patchtree serve' line that starts the child with it.")
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
	if printed, err := c.request(http.MethodPost, "/v1/children", map[string]string{"name": fs.Arg(0)}, &ans); printed || err != nil {
		return err
	}
	fmt.Println(ans.JoinToken)
	parentURL, ranges, err := siteAPIURL(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "(%v; the line below uses %s)\n", oneLine(err), parentURL)
	}
	printChildServeHint(os.Stderr, fs.Arg(0), parentURL, ans.JoinToken, ranges)
	return nil
}

func runChildList(args []string) error {
	fs := newFlags("child list", "[flags]", "List the enrolled children with their replication status.")
	wide := fs.Bool("wide", false, wideUsage)
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans struct {
		Children []hierarchy.ChildStatus `json:"children"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/children", nil, &ans); printed || err != nil {
		return err
	}
	return printChildren(os.Stdout, ans.Children, *wide)
}

// printChildren prints one line per child: within tableWidth columns (ranges and the last run
// shortened, the status cut), or in full when wide.
func printChildren(w io.Writer, children []hierarchy.ChildStatus, wide bool) error {
	tw := newTable(w, wide)
	fmt.Fprintln(tw, "CHILD\tCONNECTED\tRANGES\tCURSOR\tLAG\tLAST RUN\tSTATUS")
	for _, ch := range children {
		last, ranges := "-", strings.Join(ch.Ranges, ",")
		if r := ch.LastRun; r != nil && wide {
			last = fmt.Sprintf("%s %s, %d records, verified %t", r.Mode, r.Trigger, r.Records, r.Verified)
		} else if r != nil {
			last = fmt.Sprintf("%s %d rec", r.Mode, r.Records)
			if !r.Verified {
				last += " unverified"
			}
		}
		if !wide {
			ranges = truncate(ranges, 16)
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%d\t%d\t%s\t%s\n", ch.Name, ch.Connected, ranges, ch.Cursor, ch.LagIndex, last, cell(ch.Status))
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
	fs := newFlags("alerts", "[flags]", "Language alerts: ranges of the sites below this one (any depth, by path) that no range of the root covers.")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans struct {
		Alerts []hierarchy.Alert `json:"alerts"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/alerts", nil, &ans); printed || err != nil {
		return err
	}
	if len(ans.Alerts) == 0 {
		fmt.Println("no language alerts")
	}
	for _, a := range ans.Alerts {
		fmt.Println(a.Message)
	}
	return nil
}

// replicationRun is a row of the run history as the API answers it (docs/policies.md, "Run
// history"). The top-level counts describe the catalog section; Policies and Settings are
// present when the run carried those sections.
type replicationRun struct {
	ID         string              `json:"id"`
	Child      string              `json:"child"`
	Scope      string              `json:"scope"`
	Mode       string              `json:"mode"`
	Trigger    string              `json:"trigger"`
	From       uint64              `json:"from"`
	To         uint64              `json:"to"`
	Records    int                 `json:"records"`
	Deletes    int                 `json:"deletes"`
	BytesWire  int64               `json:"bytes_wire"`
	BytesRaw   int64               `json:"bytes_raw"`
	StartedAt  time.Time           `json:"started_at"`
	DurationMS int64               `json:"duration_ms"`
	Verified   bool                `json:"verified"`
	Error      string              `json:"error"`
	Policies   *runPoliciesSection `json:"policies"`
	Settings   *runSettingsSection `json:"settings"`
}

// runPoliciesSection is the policies section of a run.
type runPoliciesSection struct {
	Mode     string   `json:"mode"`
	Trigger  string   `json:"trigger"`
	Folders  []string `json:"folders"`
	IDs      []string `json:"ids"`
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	Records  int      `json:"records"`
	Deletes  int      `json:"deletes"`
	Verified bool     `json:"verified"`
}

// runSettingsSection is the settings section of a run.
type runSettingsSection struct {
	Trigger  string `json:"trigger"`
	To       uint64 `json:"to"`
	Records  int    `json:"records"`
	Deletes  int    `json:"deletes"`
	Verified bool   `json:"verified"`
}

// selection names the folders or policies a policies section was limited to ("" for all).
func (p *runPoliciesSection) selection() string {
	var parts []string
	if len(p.Folders) > 0 {
		parts = append(parts, "folder "+strings.Join(p.Folders, ","))
	}
	if len(p.IDs) > 0 {
		parts = append(parts, "policy "+strings.Join(p.IDs, ","))
	}
	return strings.Join(parts, "; ")
}

// policiesCell summarises a run's policies section for the runs table.
func policiesCell(p *runPoliciesSection) string {
	if p == nil {
		return "-"
	}
	s := fmt.Sprintf("%d/%d", p.Records, p.Deletes)
	if sel := p.selection(); sel != "" {
		s += " (" + sel + ")"
	}
	return s
}

func runRuns(args []string) error {
	fs := newFlags("runs", "[--child NAME] [flags]", "Replication run history, newest first. RECORDS and DELETES count the catalog\nsection; POLICIES the policies section's records/deletes and its selection.")
	child := fs.String("child", "", "only this child's runs")
	limit := fs.Int("limit", 50, "at most this many runs")
	wide := fs.Bool("wide", false, wideUsage+" (adds TRIGGER, POLICIES, WIRE and RAW bytes, the full start time)")
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
		Runs []replicationRun `json:"runs"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/replication/runs?"+q.Encode(), nil, &ans); printed || err != nil {
		return err
	}
	return printRuns(os.Stdout, ans.Runs, *wide)
}

// printRuns prints the run history: within tableWidth columns (start time without the year,
// the error cut), or every column in full when wide.
func printRuns(w io.Writer, runs []replicationRun, wide bool) error {
	tw := newTable(w, wide)
	if wide {
		fmt.Fprintln(tw, "STARTED\tCHILD\tSCOPE\tMODE\tTRIGGER\tFROM→TO\tRECORDS\tDELETES\tPOLICIES\tWIRE\tRAW\tMS\tVERIFIED\tERROR")
	} else {
		fmt.Fprintln(tw, "STARTED (UTC)\tCHILD\tSCOPE\tMODE\tFROM→TO\tRECORDS\tMS\tOK\tERROR")
	}
	for _, r := range runs {
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d→%d\t%d\t%d\t%s\t%d\t%d\t%d\t%t\t%s\n", r.StartedAt.Format(time.RFC3339), r.Child, orDash(r.Scope),
				r.Mode, r.Trigger, r.From, r.To, r.Records, r.Deletes, policiesCell(r.Policies), r.BytesWire, r.BytesRaw, r.DurationMS, r.Verified, r.Error)
			continue
		}
		ok := "no"
		if r.Verified {
			ok = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d→%d\t%d\t%d\t%s\t%s\n", r.StartedAt.UTC().Format("01-02 15:04:05"), truncate(r.Child, 16),
			shortScope(r.Scope), shortMode(r.Mode), r.From, r.To, r.Records, r.DurationMS, ok, orDash(cell(r.Error)))
	}
	return tw.Flush()
}

// shortScope abbreviates a run's sections when there are several: "catalog+policies" is
// "cat+pol".
func shortScope(scope string) string {
	if !strings.Contains(scope, "+") {
		return orDash(scope)
	}
	parts := strings.Split(scope, "+")
	for i, p := range parts {
		if len(p) > 3 {
			parts[i] = p[:3]
		}
	}
	return strings.Join(parts, "+")
}

// shortMode abbreviates "differential" to "diff".
func shortMode(mode string) string {
	if mode == "differential" {
		return "diff"
	}
	return mode
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// replicateNowScopes are the scopes POST /v1/replication/now takes.
var replicateNowScopes = []string{"all", "catalog", "policies", "settings", hierarchy.ScopeCompliance}

// replicateNowRequest is the body of POST /v1/replication/now.
type replicateNowRequest struct {
	Child   string `json:"child"`
	Scope   string `json:"scope"`
	Policy  string `json:"policy,omitempty"`
	Folder  string `json:"folder,omitempty"`
	Mode    string `json:"mode"`
	Wait    bool   `json:"wait"`
	Timeout string `json:"timeout"`
}

// parseReplicateNow parses the flags of replicate-now into its request body.
func parseReplicateNow(args []string) (*replicateNowRequest, time.Duration, *clientFlags, error) {
	fs := newFlags("replicate-now", "[--child NAME] [--scope S] [--policy ID | --folder F] [--complete] [--wait] [flags]",
		"Replicate to one child or all now: the catalog (default), policies, settings or all of them.\n--policy or --folder send just that policy or folder (scope policies; a rollout token may\nreplicate policies only). With --wait, answer when every targeted child has applied and\nverified its run (or the timeout passes), with per-child results. At a child, --scope\ncompliance sends the child's compliance summary up to its parent now.")
	child := fs.String("child", "", "only this child (default: all)")
	scope := fs.String("scope", "", "what to replicate: "+strings.Join(replicateNowScopes, ", ")+" (default catalog, or policies with --policy/--folder)")
	policyID := fs.String("policy", "", "only this policy (implies --scope policies)")
	folder := fs.String("folder", "", "only the policies in this folder (implies --scope policies)")
	complete := fs.Bool("complete", false, "send the whole filtered view (the child drops anything else)")
	wait := fs.Bool("wait", false, "wait for the runs to be applied and verified")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long --wait waits")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, 0, nil, err
	}
	if fs.NArg() > 0 {
		return nil, 0, nil, usageError{fmt.Errorf("replicate-now takes no arguments, got %q", fs.Arg(0))}
	}
	if *timeout <= 0 {
		return nil, 0, nil, usageError{fmt.Errorf("replicate-now: --timeout must be positive, not %s", *timeout)}
	}
	if *policyID != "" && *folder != "" {
		return nil, 0, nil, usageError{errors.New("replicate-now: give --policy or --folder, not both")}
	}
	req := &replicateNowRequest{Child: *child, Scope: *scope, Policy: *policyID, Folder: *folder,
		Mode: "differential", Wait: *wait, Timeout: timeout.String()}
	if *complete {
		req.Mode = "complete"
	}
	selected := *policyID != "" || *folder != ""
	switch {
	case req.Scope == "" && selected:
		req.Scope = "policies"
	case req.Scope == "":
		req.Scope = "catalog"
	case !slices.Contains(replicateNowScopes, req.Scope):
		return nil, 0, nil, usageError{fmt.Errorf("replicate-now: --scope must be one of %s, not %q", strings.Join(replicateNowScopes, ", "), req.Scope)}
	case selected && req.Scope != "policies":
		return nil, 0, nil, usageError{fmt.Errorf("replicate-now: --policy and --folder replicate policies; they cannot be used with --scope %s", req.Scope)}
	case req.Scope == hierarchy.ScopeCompliance && (*child != "" || *complete):
		return nil, 0, nil, usageError{errors.New("replicate-now: --scope compliance sends this child's summary to its parent; --child and --complete do not apply")}
	}
	return req, *timeout, cf, nil
}

func runReplicateNow(args []string) error {
	req, timeout, cf, err := parseReplicateNow(args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	c.http.Timeout = timeout + 30*time.Second
	if req.Scope == hierarchy.ScopeCompliance {
		return replicateCompliance(c, cf)
	}
	var ans struct {
		Children []string `json:"children"`
		Results  []struct {
			Child    string          `json:"child"`
			Done     bool            `json:"done"`
			Verified bool            `json:"verified"`
			Run      *replicationRun `json:"run"`
			Error    string          `json:"error"`
		} `json:"results"`
		Sites []hierarchy.SiteResult `json:"sites"`
	}
	raw, err := c.do(http.MethodPost, "/v1/replication/now", req, &ans)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
	} else if !req.Wait {
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
			fmt.Printf("%-10s %s\n", r.Child, runSummary(r.Run, r.Verified, r.Error))
		} else {
			fmt.Printf("%-10s %s\n", r.Child, r.Error)
		}
	}
	// The sites below the children, which the request reached through relays.
	below, belowFailed := 0, 0
	for _, site := range ans.Sites {
		if !strings.Contains(site.Path, "/"+site.Via+"/") {
			continue
		}
		below++
		if !site.Done || !site.Verified {
			belowFailed++
		}
		if cf.output == "json" {
			continue
		}
		state := "applied and verified"
		if !site.Done {
			state = "not applied: " + site.Error
		}
		fmt.Printf("%s  %s\n", site.Path, state)
	}
	if failed > 0 || belowFailed > 0 {
		return fmt.Errorf("%d of %d children and %d of %d sites below them did not apply and verify the request", failed, len(ans.Results), belowFailed, below)
	}
	return nil
}

// runSummary describes one child's run of a replicate-now with --wait on one line: its scope,
// the catalog section (when it carried one), the policies and settings sections.
func runSummary(r *replicationRun, verified bool, errMsg string) string {
	var b strings.Builder
	if r.Scope == "" || slices.Contains(strings.Split(r.Scope, "+"), "catalog") {
		if r.Scope != "" {
			b.WriteString(r.Scope + " ")
		}
		fmt.Fprintf(&b, "%s %s run: %d records, %d deletes, ", r.Mode, r.Trigger, r.Records, r.Deletes)
	} else {
		fmt.Fprintf(&b, "%s run: ", r.Scope)
	}
	fmt.Fprintf(&b, "%d bytes on the wire (%d raw), %d ms", r.BytesWire, r.BytesRaw, r.DurationMS)
	if p := r.Policies; p != nil {
		fmt.Fprintf(&b, "; policies: %s %s, %d records, %d deletes", p.Mode, p.Trigger, p.Records, p.Deletes)
		if sel := p.selection(); sel != "" {
			b.WriteString(" (" + sel + ")")
		}
	}
	if st := r.Settings; st != nil {
		fmt.Fprintf(&b, "; settings: %d records, %d deletes", st.Records, st.Deletes)
	}
	fmt.Fprintf(&b, "; verified %t %s", verified, errMsg)
	return strings.TrimRight(b.String(), " ")
}

// replicateCompliance fires a child's compliance summary rule (replicate-now --scope compliance).
func replicateCompliance(c *apiClient, cf *clientFlags) error {
	var ans struct {
		Summary hierarchy.SummaryResult `json:"summary"`
	}
	if printed, err := c.request(http.MethodPost, "/v1/replication/now", map[string]string{"scope": hierarchy.ScopeCompliance}, &ans); printed || err != nil {
		return err
	}
	fmt.Println(summarySent(&ans.Summary))
	return nil
}

// summarySent describes one firing of the compliance summary rule.
func summarySent(r *hierarchy.SummaryResult) string {
	switch {
	case !r.Sent && r.Reason == "unchanged":
		return fmt.Sprintf("compliance summary unchanged since seq %d (%d computers): the parent was told, nothing sent", r.Seq, r.Computers)
	case !r.Sent:
		return fmt.Sprintf("compliance summary not sent (seq %d): %s", r.Seq, orDash(r.Reason))
	}
	return fmt.Sprintf("compliance summary sent: seq %d, %d computers, %d bulletins, %d bytes on the wire (%d raw)",
		r.Seq, r.Computers, r.Bulletins, r.BytesWire, r.BytesRaw)
}
