package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"
)

func runToken(args []string) error {
	return dispatchSub("token", "Usage: patchtree token create --role ROLE [--name NAME] | list | revoke ID\n\nCreate, list and revoke API tokens (admin only).",
		args, []subcommand{{"create", runTokenCreate}, {"list", runTokenList}, {"revoke", runTokenRevoke}})
}

func runTokenCreate(args []string) error {
	fs := newFlags("token create", "--role ROLE [--name NAME] [flags]",
		"Create a token. Roles: admin, rollout, auditor, agent. The token is printed once; keep it.")
	role := fs.String("role", "", "role of the new token (required)")
	name := fs.String("name", "", "a note saying what the token is for")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *role == "" {
		return usageError{fmt.Errorf("token create: --role is required")}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("token create takes no arguments, got %q", fs.Arg(0))}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ans struct {
		Token string `json:"token"`
	}
	if printed, err := c.request(http.MethodPost, "/v1/tokens", map[string]string{"role": *role, "name": *name}, &ans); printed || err != nil {
		return err
	}
	fmt.Println(ans.Token)
	return nil
}

func runTokenList(args []string) error {
	fs := newFlags("token list", "[flags]", "List tokens (never their secrets).")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans struct {
		Tokens []struct {
			ID         string    `json:"id"`
			Role       string    `json:"role"`
			Name       string    `json:"name"`
			CreateTime time.Time `json:"create_time"`
		} `json:"tokens"`
	}
	if printed, err := c.request(http.MethodGet, "/v1/tokens", nil, &ans); printed || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tCREATED\tNAME")
	for _, t := range ans.Tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Role, t.CreateTime.Format(time.RFC3339), t.Name)
	}
	return tw.Flush()
}

func runTokenRevoke(args []string) error {
	fs := newFlags("token revoke", "ID [flags]", "Revoke a token by its id (the part before the dot).")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("token revoke needs exactly one token id")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if printed, err := c.request(http.MethodDelete, "/v1/tokens/"+url.PathEscape(fs.Arg(0)), nil, nil); printed || err != nil {
		return err
	}
	fmt.Printf("revoked %s\n", fs.Arg(0))
	return nil
}
