package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"patchtree/backup"
	"patchtree/node"
)

func runSnapshot(args []string) error {
	return dispatchSub("snapshot", "Usage: patchtree snapshot save FILE | restore FILE [--force] | inspect FILE\n\n"+
		"Back up the whole state of a site and restore it (admin only); inspect a backup file locally.",
		args, []subcommand{{"save", runSnapshotSave}, {"restore", runSnapshotRestore}, {"inspect", runSnapshotInspect}})
}

// snapshotClient is the API client without the overall timeout: a backup may take minutes.
func snapshotClient(cf *clientFlags) (*apiClient, error) {
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	c.http = &http.Client{}
	return c, nil
}

func runSnapshotSave(args []string) error {
	fs := newFlags("snapshot save", "FILE [flags]",
		"Download a consistent backup of the site's state from its leader into FILE (written atomically; verified before it replaces FILE).")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("snapshot save takes one FILE")}
	}
	c, err := snapshotClient(cf)
	if err != nil {
		return err
	}
	path := fs.Arg(0)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := c.download("/v1/snapshot", tmp); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info, err := backup.Verify(tmp)
	if err != nil {
		return fmt.Errorf("the downloaded snapshot is not usable (the transfer was cut?): %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if cf.output == "json" {
		return printInfoJSON(info)
	}
	h := info.Header
	fmt.Printf("saved %s: %d bytes, site %s, raft index %d, %d rows in %d tables, sha256 %s\n",
		path, info.Size, h.SiteName, h.Index, h.Rows(), len(h.Tables), info.SHA256)
	return nil
}

// download streams a GET answer into w.
func (c *apiClient) download(path string, w io.Writer) error {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("bad server URL %q: %w", c.base, err)
	}
	resp, err := c.roundTrip(req, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("download %s: %w", path, err)
	}
	return nil
}

func runSnapshotRestore(args []string) error {
	fs := newFlags("snapshot restore", "FILE [--force] [flags]",
		"Replace the WHOLE state of the site with the backup in FILE, through Raft on every server of the site. "+
			"Rows the backup does not hold are removed; tokens become the backup's (use the backup's admin token afterwards). "+
			"A backup of another site (other name or role) needs --force.")
	force := fs.Bool("force", false, "restore a backup of another site, taking its identity")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("snapshot restore takes one FILE")}
	}
	c, err := snapshotClient(cf)
	if err != nil {
		return err
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer f.Close()
	if _, err := backup.Verify(f); err != nil {
		return fmt.Errorf("snapshot restore: %s: %w; nothing was sent", fs.Arg(0), err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	path := "/v1/snapshot"
	if *force {
		path += "?force=true"
	}
	req, err := http.NewRequest(http.MethodPut, c.base+path, f)
	if err != nil {
		return fmt.Errorf("bad server URL %q: %w", c.base, err)
	}
	req.ContentLength = size
	var out node.SnapshotRestored
	raw, err := c.send(req, "application/octet-stream", &out)
	if err != nil {
		return err
	}
	if c.json {
		printJSON(raw)
		return nil
	}
	h := out.Backup.Header
	fmt.Printf("restored %s: site %s (snapshot of %s, raft index %d), %d rows, installed at raft index %d\n",
		fs.Arg(0), h.SiteName, h.CreatedAt.Format(time.RFC3339), h.Index, h.Rows(), out.Index)
	return nil
}

func runSnapshotInspect(args []string) error {
	fs := newFlags("snapshot inspect", "FILE [flags]",
		"Check a backup file locally (no server): header, checksum, every row decoded; print its tables and row counts.")
	output := fs.StringP("output", "o", "table", "output format: table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("snapshot inspect takes one FILE")}
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Errorf("--output must be table or json, not %q", *output)}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("snapshot inspect: %w", err)
	}
	defer f.Close()
	info, err := backup.Verify(f)
	if err != nil {
		return fmt.Errorf("snapshot inspect: %s: %w", fs.Arg(0), err)
	}
	if _, err := backup.Decode(f, info); err != nil {
		return fmt.Errorf("snapshot inspect: %s: %w", fs.Arg(0), err)
	}
	if *output == "json" {
		return printInfoJSON(info)
	}
	h := info.Header
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "file\t%s\n", fs.Arg(0))
	fmt.Fprintf(w, "format\t%d\n", h.Format)
	fmt.Fprintf(w, "site\t%s (role %s, id %s)\n", h.SiteName, h.SiteRole, h.SiteID)
	fmt.Fprintf(w, "raft index\t%d\n", h.Index)
	fmt.Fprintf(w, "created at\t%s\n", h.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "size\t%d bytes\n", info.Size)
	fmt.Fprintf(w, "sha256\t%s (OK)\n", info.SHA256)
	fmt.Fprintln(w, "\nTABLE\tROWS")
	for _, name := range h.TableNames() {
		fmt.Fprintf(w, "%s\t%d\n", name, h.Tables[name])
	}
	fmt.Fprintf(w, "total\t%d\n", h.Rows())
	return w.Flush()
}

func printInfoJSON(info *backup.Info) error {
	raw, err := json.Marshal(info)
	if err != nil {
		return err
	}
	printJSON(raw)
	return nil
}
