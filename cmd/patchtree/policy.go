package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const policyUsage = `Usage: patchtree policy COMMAND

  create --bulletin ID [--bulletin ID ...] [--name N] [--description D]
         [--folder F] [--disable-update ID ...] [--disabled] [--run R]
         [--override-maintenance-windows] [--allow-immediate-restart]
         [--replicate-now]
  list [--folder F]
  show ID
  enable ID | disable ID | delete ID

Create and administer software update policies (roles admin and rollout).`

// policyUpdate is one update of a policy as the API answers it.
type policyUpdate struct {
	ID       string `json:"id"`
	Bulletin string `json:"bulletin"`
	Language string `json:"language"`
	Enabled  bool   `json:"enabled"`
}

// policy is a software update policy as the API answers it (docs/policies.md).
type policy struct {
	ID                         string         `json:"id"`
	Name                       string         `json:"name"`
	Description                string         `json:"description"`
	Folder                     string         `json:"folder"`
	Bulletins                  []string       `json:"bulletins"`
	Updates                    []policyUpdate `json:"updates"`
	Enabled                    bool           `json:"enabled"`
	Run                        string         `json:"run"`
	OverrideMaintenanceWindows bool           `json:"override_maintenance_windows"`
	AllowImmediateRestart      bool           `json:"allow_immediate_restart"`
	Revision                   int            `json:"revision"`
	Origin                     string         `json:"origin"`
	CreatedAt                  time.Time      `json:"created_at"`
	UpdatedAt                  time.Time      `json:"updated_at"`
	CreatedBy                  string         `json:"created_by"`
	UpdatedBy                  string         `json:"updated_by"`
}

// enabledUpdates counts the policy's enabled updates.
func (p *policy) enabledUpdates() int {
	n := 0
	for _, u := range p.Updates {
		if u.Enabled {
			n++
		}
	}
	return n
}

func runPolicy(args []string) error {
	return dispatchSub("policy", policyUsage, args, []subcommand{
		{"create", runPolicyCreate}, {"list", runPolicyList}, {"show", runPolicyShow},
		{"enable", func(a []string) error { return runPolicySetEnabled("enable", true, a) }},
		{"disable", func(a []string) error { return runPolicySetEnabled("disable", false, a) }},
		{"delete", runPolicyDelete},
	})
}

// policyCreateRequest is the body of POST /v1/policies; unset fields take the server's defaults.
type policyCreateRequest struct {
	Name                       string               `json:"name,omitempty"`
	Description                string               `json:"description,omitempty"`
	Folder                     string               `json:"folder,omitempty"`
	Bulletins                  []string             `json:"bulletins"`
	Updates                    []policyUpdateToggle `json:"updates,omitempty"`
	Enabled                    *bool                `json:"enabled,omitempty"`
	Run                        string               `json:"run,omitempty"`
	OverrideMaintenanceWindows bool                 `json:"override_maintenance_windows,omitempty"`
	AllowImmediateRestart      bool                 `json:"allow_immediate_restart,omitempty"`
	ReplicateNow               bool                 `json:"replicate_now,omitempty"`
}

// policyUpdateToggle overrides the enabled flag of one update of a policy.
type policyUpdateToggle struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
}

// parsePolicyCreate parses the flags of policy create into its request body and client flags.
func parsePolicyCreate(args []string) (*policyCreateRequest, *clientFlags, error) {
	fs := newFlags("policy create", "--bulletin ID [--bulletin ID ...] [flags]",
		"Create a software update policy for the given bulletins: every update of them, enabled except\nsuperseded ones and those named by --disable-update. The name and description default to the\nbulletins' ids and titles.")
	bulletins := fs.StringArray("bulletin", nil, "bulletin id (required; repeat for several)")
	name := fs.String("name", "", "policy name (default: from the bulletins)")
	description := fs.String("description", "", "policy description (default: the bulletins' titles)")
	folder := fs.String("folder", "", "folder such as Firefox/2019 (default: Default)")
	disable := fs.StringArray("disable-update", nil, "create with this update disabled (repeatable)")
	disabled := fs.Bool("disabled", false, "create the policy disabled")
	runSched := fs.String("run", "", "agent-default (default), asap, HH:MM daily or an interval such as 4h")
	override := fs.Bool("override-maintenance-windows", false, "install outside maintenance windows")
	restart := fs.Bool("allow-immediate-restart", false, "allow an immediate restart after installing")
	replicate := fs.Bool("replicate-now", false, "send the policy to every child at once")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, usageError{fmt.Errorf("policy create takes no arguments, got %q (use --bulletin ID)", fs.Arg(0))}
	}
	if len(*bulletins) == 0 {
		return nil, nil, usageError{fmt.Errorf("policy create: at least one --bulletin is required")}
	}
	req := &policyCreateRequest{
		Name: *name, Description: *description, Folder: *folder, Run: *runSched,
		OverrideMaintenanceWindows: *override, AllowImmediateRestart: *restart, ReplicateNow: *replicate,
	}
	var err error
	if req.Bulletins, err = distinctIDs("--bulletin", *bulletins); err != nil {
		return nil, nil, err
	}
	ids, err := distinctIDs("--disable-update", *disable)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		req.Updates = append(req.Updates, policyUpdateToggle{ID: id, Enabled: false})
	}
	if *disabled {
		off := false
		req.Enabled = &off
	}
	return req, cf, nil
}

// distinctIDs trims ids, refuses empty ones and drops repeats, keeping the order.
func distinctIDs(flag string, ids []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, usageError{fmt.Errorf("%s needs an id, not an empty string", flag)}
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func runPolicyCreate(args []string) error {
	req, cf, err := parsePolicyCreate(args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var p policy
	if printed, err := c.request(http.MethodPost, "/v1/policies", req, &p); printed || err != nil {
		return err
	}
	return printPolicyTable(os.Stdout, []policy{p})
}

func runPolicyList(args []string) error {
	fs := newFlags("policy list", "[--folder F] [flags]", "List software update policies, sorted by folder, then name.")
	folder := fs.String("folder", "", "only policies in this folder")
	wide := fs.Bool("wide", false, wideUsage)
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("policy list takes no arguments, got %q", fs.Arg(0))}
	}
	path := "/v1/policies"
	if *folder != "" {
		path += "?" + url.Values{"folder": {*folder}}.Encode()
	}
	var ans struct {
		Policies []policy `json:"policies"`
	}
	if printed, err := c.request(http.MethodGet, path, nil, &ans); printed || err != nil {
		return err
	}
	return printPolicies(os.Stdout, ans.Policies, *wide)
}

// printPolicyTable prints one line per policy with every column in full.
func printPolicyTable(w io.Writer, ps []policy) error { return printPolicies(w, ps, true) }

// printPolicies prints one line per policy: within tableWidth columns (name, folder and
// bulletins shortened), or with longer cells when wide.
func printPolicies(w io.Writer, ps []policy, wide bool) error {
	name, folder, bulletins := 16, 12, 20
	if wide {
		name, folder, bulletins = 48, math.MaxInt, math.MaxInt
	}
	tw := newTable(w, wide)
	fmt.Fprintln(tw, "ID\tNAME\tFOLDER\tENABLED\tBULLETINS\tUPDATES\tORIGIN\tREVISION")
	for i := range ps {
		p := &ps[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%d/%d\t%s\t%d\n", p.ID, truncate(cell(p.Name), name), truncate(cell(p.Folder), folder), p.Enabled,
			truncate(bulletinSummary(p.Bulletins), bulletins), p.enabledUpdates(), len(p.Updates), p.Origin, p.Revision)
	}
	return tw.Flush()
}

// bulletinSummary names up to three bulletins and counts the rest.
func bulletinSummary(ids []string) string {
	const shown = 3
	if len(ids) == 0 {
		return "-"
	}
	if len(ids) <= shown {
		return strings.Join(ids, ",")
	}
	return fmt.Sprintf("%s +%d", strings.Join(ids[:shown], ","), len(ids)-shown)
}

// policyID parses the flags of a command that takes one policy ID.
func policyID(name, summary string, args []string) (string, *apiClient, error) {
	fs := newFlags("policy "+name, "ID [flags]", summary)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return "", nil, err
	}
	if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
		return "", nil, usageError{fmt.Errorf("policy %s needs exactly one policy ID", name)}
	}
	c, err := cf.client()
	if err != nil {
		return "", nil, err
	}
	return fs.Arg(0), c, nil
}

func runPolicyShow(args []string) error {
	id, c, err := policyID("show", "Show a policy with its updates.", args)
	if err != nil {
		return err
	}
	var p policy
	if printed, err := c.request(http.MethodGet, "/v1/policies/"+url.PathEscape(id), nil, &p); printed || err != nil {
		return err
	}
	return printPolicy(os.Stdout, &p)
}

// printPolicy prints a policy's fields, then one line per update.
func printPolicy(w io.Writer, p *policy) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", p.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", cell(p.Name))
	fmt.Fprintf(tw, "Description:\t%s\n", cell(p.Description))
	fmt.Fprintf(tw, "Folder:\t%s\n", p.Folder)
	fmt.Fprintf(tw, "Enabled:\t%t\n", p.Enabled)
	fmt.Fprintf(tw, "Run:\t%s\n", p.Run)
	fmt.Fprintf(tw, "Override maintenance windows:\t%t\n", p.OverrideMaintenanceWindows)
	fmt.Fprintf(tw, "Allow immediate restart:\t%t\n", p.AllowImmediateRestart)
	fmt.Fprintf(tw, "Bulletins:\t%s\n", strings.Join(p.Bulletins, ", "))
	fmt.Fprintf(tw, "Updates:\t%d of %d enabled\n", p.enabledUpdates(), len(p.Updates))
	fmt.Fprintf(tw, "Origin:\t%s\n", p.Origin)
	fmt.Fprintf(tw, "Revision:\t%d\n", p.Revision)
	fmt.Fprintf(tw, "Created:\t%s\n", stamp(p.CreatedAt, p.CreatedBy))
	fmt.Fprintf(tw, "Updated:\t%s\n", stamp(p.UpdatedAt, p.UpdatedBy))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Updates) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPDATE\tBULLETIN\tLANGUAGE\tENABLED")
	for _, u := range p.Updates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", u.ID, u.Bulletin, u.Language, u.Enabled)
	}
	return tw.Flush()
}

// stamp says when and by whom something was written.
func stamp(at time.Time, by string) string {
	s := "-"
	if !at.IsZero() {
		s = at.Format(time.RFC3339)
	}
	if by != "" {
		s += " by " + by
	}
	return s
}

func runPolicySetEnabled(name string, enabled bool, args []string) error {
	id, c, err := policyID(name, fmt.Sprintf("%s a policy (a new revision; children receive it with the next policies run).", strings.ToUpper(name[:1])+name[1:]), args)
	if err != nil {
		return err
	}
	var p policy
	if printed, err := c.request(http.MethodPatch, "/v1/policies/"+url.PathEscape(id), map[string]bool{"enabled": enabled}, &p); printed || err != nil {
		return err
	}
	fmt.Printf("%sd %s (revision %d)\n", name, p.ID, p.Revision)
	return nil
}

func runPolicyDelete(args []string) error {
	id, c, err := policyID("delete", "Delete a policy (children drop it with the next policies run).", args)
	if err != nil {
		return err
	}
	var ans struct {
		Deleted string `json:"deleted"`
	}
	if printed, err := c.request(http.MethodDelete, "/v1/policies/"+url.PathEscape(id), nil, &ans); printed || err != nil {
		return err
	}
	if ans.Deleted == "" {
		ans.Deleted = id
	}
	fmt.Printf("deleted %s\n", ans.Deleted)
	return nil
}

// cell keeps a value on one line of a table.
func cell(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts s to at most n characters, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
