package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

const settingsUsage = `Usage: patchtree settings list | show NAME | set NAME FILE|-

Read and replace settings documents: server-tasks, assessment, remediation, plugin-policy.
Documents set at a parent replicate to every child, read-only there. set replaces the whole
document with the JSON object in FILE (- reads standard input); fields absent keep their
defaults. Setting a document needs an admin token.`

// settingDoc is a settings document as the API answers it.
type settingDoc struct {
	Name      string          `json:"name"`
	Body      json.RawMessage `json:"body"`
	Origin    string          `json:"origin"`
	UpdatedAt time.Time       `json:"updated_at"`
	UpdatedBy string          `json:"updated_by"`
}

// settingsStdin is what "settings set NAME -" reads.
var settingsStdin io.Reader = os.Stdin

func runSettings(args []string) error {
	return dispatchSub("settings", settingsUsage, args, []subcommand{
		{"list", runSettingsList}, {"show", runSettingsShow}, {"set", runSettingsSet},
	})
}

func runSettingsList(args []string) error {
	fs := newFlags("settings list", "[flags]", "List the settings documents.")
	cf := addClientFlags(fs)
	c, err := cf.parse(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("settings list takes no arguments, got %q", fs.Arg(0))}
	}
	var ans struct {
		Settings []settingDoc `json:"settings"`
		Names    []string     `json:"names"` // every document the site knows, set or not
	}
	if printed, err := c.request(http.MethodGet, "/v1/settings", nil, &ans); printed || err != nil {
		return err
	}
	return printSettingsList(os.Stdout, ans.Settings, ans.Names)
}

// printSettingsList prints one line per document, then the known names that are not set.
func printSettingsList(w io.Writer, docs []settingDoc, names []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tORIGIN\tUPDATED\tBODY")
	for _, d := range docs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, orDash(d.Origin), stamp(d.UpdatedAt, d.UpdatedBy), compactDetail(d.Body, 80))
	}
	for _, name := range names {
		if !slices.ContainsFunc(docs, func(d settingDoc) bool { return d.Name == name }) {
			fmt.Fprintf(tw, "%s\t-\t-\t(not set)\n", name)
		}
	}
	return tw.Flush()
}

func runSettingsShow(args []string) error {
	fs := newFlags("settings show", "NAME [flags]", "Show one settings document.")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
		return usageError{errors.New("settings show needs exactly one document NAME")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.do(http.MethodGet, "/v1/settings/"+url.PathEscape(fs.Arg(0)), nil, nil)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		printJSON(raw)
		return nil
	}
	var d settingDoc
	if err := json.Unmarshal(raw, &d); err != nil || (d.Name == "" && len(d.Body) == 0) {
		// The answer is the bare body rather than a document around it.
		d = settingDoc{Name: fs.Arg(0), Body: raw}
	}
	return printSetting(os.Stdout, &d)
}

// printSetting prints a settings document's header, then its body indented.
func printSetting(w io.Writer, d *settingDoc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", d.Name)
	if d.Origin != "" {
		fmt.Fprintf(tw, "Origin:\t%s\n", d.Origin)
	}
	fmt.Fprintf(tw, "Updated:\t%s\n", stamp(d.UpdatedAt, d.UpdatedBy))
	if err := tw.Flush(); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, d.Body, "", "  "); err != nil || buf.Len() == 0 {
		buf.Reset()
		buf.WriteString(compactDetail(d.Body, 1<<20))
	}
	_, err := fmt.Fprintf(w, "\n%s\n", buf.Bytes())
	return err
}

// parseSettingsSet parses the arguments of settings set and reads the document body, which must
// be a JSON object.
func parseSettingsSet(args []string) (string, json.RawMessage, *clientFlags, error) {
	fs := newFlags("settings set", "NAME FILE|- [flags]",
		"Replace a settings document with the JSON object in FILE (- reads standard input).")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return "", nil, nil, err
	}
	if fs.NArg() != 2 || strings.TrimSpace(fs.Arg(0)) == "" || fs.Arg(1) == "" {
		return "", nil, nil, usageError{errors.New("settings set needs a document NAME and a FILE (- for standard input)")}
	}
	name, file := fs.Arg(0), fs.Arg(1)
	var buf []byte
	var err error
	if file == "-" {
		file = "standard input"
		buf, err = io.ReadAll(io.LimitReader(settingsStdin, 16<<20))
	} else {
		buf, err = os.ReadFile(file)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("settings set: read %s: %w", file, err)
	}
	body, err := jsonObject(buf)
	if err != nil {
		return "", nil, nil, usageError{fmt.Errorf("settings set: %s: %w", file, err)}
	}
	return name, body, cf, nil
}

// jsonObject checks that buf holds one JSON object and returns it compacted.
func jsonObject(buf []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(buf))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("not valid JSON: empty")
		}
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: data after the first value")
	}
	if v[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	return out.Bytes(), nil
}

func runSettingsSet(args []string) error {
	name, body, cf, err := parseSettingsSet(args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if printed, err := c.request(http.MethodPut, "/v1/settings/"+url.PathEscape(name), body, nil); printed || err != nil {
		return err
	}
	fmt.Printf("set %s\n", name)
	return nil
}
