package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"patchtree/replication/importer"
	"patchtree/store"
)

// runCatalogImports lists the site's imports, shows one, or follows one until it ends.
func runCatalogImports(args []string) error {
	fs := newFlags("catalog imports", "[ID] [--follow] [flags]",
		"The parent's catalog imports, newest first; with ID, that import. --follow waits for the\nimport (ID, or the running one) to end, showing its progress, and exits non-zero if it failed.")
	follow := fs.Bool("follow", false, "wait until the import ends, showing its progress")
	wide := fs.Bool("wide", false, wideUsage)
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{fmt.Errorf("catalog imports takes at most one import id")}
	}
	id := fs.Arg(0)
	if id == "" {
		var ans struct {
			Imports []*importer.Progress `json:"imports"`
		}
		raw, err := c.do(http.MethodGet, "/v1/catalog/imports", nil, &ans)
		if err != nil {
			return err
		}
		if !*follow {
			if cf.output == "json" {
				printJSON(raw)
				return nil
			}
			return printImports(os.Stdout, ans.Imports, *wide)
		}
		for _, p := range ans.Imports {
			if p.State == store.ImportRunning {
				id = p.ID
				break
			}
		}
		if id == "" {
			fmt.Fprintln(os.Stderr, "no import is running")
			return nil
		}
	}
	var final *importer.Progress
	var raw []byte
	if *follow {
		final, raw, err = waitImport(c, id, isTerminal(os.Stderr) && cf.output != "json")
	} else {
		final = &importer.Progress{}
		raw, err = c.do(http.MethodGet, "/v1/catalog/imports/"+url.PathEscape(id), nil, final)
	}
	if err != nil {
		return err
	}
	switch {
	case cf.output == "json":
		printJSON(raw)
	case final.State == store.ImportRunning:
		fmt.Printf("import %s: running, %s (%d records, %s read)\n", final.ID, final.Phase, final.RecordsRead, mib(final.BytesRead))
	default:
		printImport(final)
	}
	if *follow && (final.State == store.ImportFailed || final.State == store.ImportCancelled) {
		return fmt.Errorf("import %s %s: %s", final.ID, final.State, final.Error)
	}
	return nil
}

// printImports prints one line per import, newest first as the server lists them; wide adds
// the mode and a running import's phase, and prints the whole source.
func printImports(w io.Writer, runs []*importer.Progress, wide bool) error {
	tw := newTable(w, wide)
	if wide {
		fmt.Fprintln(tw, "ID\tSTARTED (UTC)\tSTATE\tMODE\tVERSION\tBULLETINS +/~/-\tUPDATES +/~/-\tSOURCE")
	} else {
		fmt.Fprintln(tw, "ID\tSTARTED (UTC)\tSTATE\tVERSION\tBULLETINS +/~/-\tUPDATES +/~/-\tSOURCE")
	}
	for _, p := range runs {
		r := p.Result
		bulletins := fmt.Sprintf("%d/%d/%d", r.Bulletins.Added, r.Bulletins.Changed, r.Bulletins.Removed)
		updates := fmt.Sprintf("%d/%d/%d", r.Updates.Added, r.Updates.Changed, r.Updates.Removed)
		if !wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.StartedAt.UTC().Format("01-02 15:04:05"), p.State,
				p.CatalogVersion, bulletins, updates, p.Source)
			continue
		}
		state := p.State
		if state == store.ImportRunning {
			state += " (" + p.Phase + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.StartedAt.UTC().Format("2006-01-02T15:04:05Z"), state,
			orDash(p.Mode), p.CatalogVersion, bulletins, updates, p.Source)
	}
	return tw.Flush()
}
