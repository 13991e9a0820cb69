package main

import (
	"fmt"
	"net/http"
	"strings"
)

type languagesAnswer struct {
	Ranges      []string `json:"ranges"`
	ModifyIndex uint64   `json:"modify_index"`
	Index       uint64   `json:"index"`
}

func runLanguages(args []string) error {
	fs := newFlags("languages", "[set RANGE...]",
		"Show the site's managed language ranges, or replace them with 'set' (BCP 47 ranges such as\nde, pt-BR or *; space- or comma-separated; 'set' with no range manages none).")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	var ans languagesAnswer
	var raw []byte
	switch {
	case fs.NArg() == 0:
		raw, err = c.do(http.MethodGet, "/v1/languages", nil, &ans)
	case fs.Arg(0) == "set":
		raw, err = c.do(http.MethodPut, "/v1/languages", map[string][]string{"ranges": fs.Args()[1:]}, &ans)
	default:
		return usageError{fmt.Errorf("languages: unknown subcommand %q (want 'set')", fs.Arg(0))}
	}
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	if len(ans.Ranges) == 0 {
		fmt.Println("(no ranges: language-neutral updates only)")
		return nil
	}
	fmt.Println(strings.Join(ans.Ranges, "\n"))
	return nil
}
