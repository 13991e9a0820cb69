package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"patchtree/node"
	"patchtree/replication/feedgen"
	"patchtree/replication/importer"
)

// demoSite is one site the demo starts.
type demoSite struct {
	name, role, languages string

	dir   string
	cmd   *exec.Cmd
	url   string
	token string
	// exited is closed when the process has exited, exitErr then says how. Several waiters
	// (readiness, the first-exit watch, stopping) may wait for it.
	exited  chan struct{}
	exitErr error
}

func demoSites() []*demoSite {
	return []*demoSite{
		{name: "hq", role: node.RoleParent, languages: "en,de,fr"},
		{name: "emea", role: node.RoleChild, languages: "de,fr"},
		{name: "apac", role: node.RoleChild, languages: "ja"},
	}
}

const demoStartTimeout = 60 * time.Second

func runDemo(args []string) error {
	fs := newFlags("demo", "[--exit] [--dir DIR]",
		"Start a parent (hq) and two children (emea, apac) as processes on loopback in a temporary\ndirectory: import a sample catalog at the parent, show the language alert a child raises,\nreplicate, print each site's status, feed simulated scans at both children, send their\ncompliance summaries up and print the compliance rolled up at the parent, and the web\nconsole's address with an admin sign-in link; then keep the sites running until Ctrl-C.")
	exitAfter := fs.Bool("exit", false, "stop the sites and exit after the report")
	dir := fs.String("dir", "", "directory for the sites' data (default: a new temporary directory, removed at exit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("demo takes no arguments, got %q", fs.Arg(0))}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	base := *dir
	if base == "" {
		if base, err = os.MkdirTemp("", "patchtree-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(base)
	}
	sites := demoSites()
	defer stopDemo(sites)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	fmt.Printf("patchtree demo: starting %d sites in %s\n", len(sites), base)
	hq := sites[0]
	// The parent may import from the sample's directory only, not from the sites' data dirs.
	if err := hq.start(exe, base, "--import-allow", demoCatalogDir(base)); err != nil {
		return err
	}
	if err := hq.waitReady(sigs); err != nil {
		return err
	}
	if err := demoImport(hq, base); err != nil {
		return err
	}
	admin := &apiClient{base: hq.url, token: hq.token, http: &http.Client{Timeout: 2 * time.Minute}}
	for _, s := range sites[1:] {
		var enrolled struct {
			JoinToken string `json:"join_token"`
		}
		if _, err := admin.do(http.MethodPost, "/v1/children", map[string]string{"name": s.name}, &enrolled); err != nil {
			return fmt.Errorf("enrol %s: %w", s.name, err)
		}
		fmt.Printf("patchtree demo: enrolled child %s at %s\n", s.name, hq.name)
		// The join token goes in a 0600 file, not on the command line, where ps would show it.
		tokenFile := filepath.Join(base, s.name+".join-token")
		if err := node.WriteFileAtomic(tokenFile, []byte(enrolled.JoinToken+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s's join token: %w", s.name, err)
		}
		if err := s.start(exe, base, "--parent", hq.url, "--join-token-file", tokenFile); err != nil {
			return err
		}
	}
	for _, s := range sites[1:] {
		if err := s.waitReady(sigs); err != nil {
			return err
		}
	}
	if err := demoReplicate(admin, sites[1:]); err != nil {
		return err
	}
	fmt.Println()
	for _, s := range sites {
		c := &apiClient{base: s.url, token: s.token, http: &http.Client{Timeout: 10 * time.Second}}
		var st node.Status
		if _, err := c.do(http.MethodGet, "/v1/status", nil, &st); err != nil {
			return fmt.Errorf("status of %s: %w", s.name, err)
		}
		printStatus(os.Stdout, s.url, &st)
		fmt.Printf("  admin token file %s\n  log file    %s\n\n", node.AdminTokenPath(s.dir), s.dir+".log")
	}
	if err := demoCompliance(hq, sites[1:]); err != nil {
		return err
	}
	if err := demoConsole(os.Stdout, hq); err != nil {
		return err
	}
	fmt.Println()
	if *exitAfter {
		fmt.Println("patchtree demo: report done; stopping the sites (--exit)")
		return nil
	}
	printDemoHint(os.Stdout, exe, hq.url, node.AdminTokenPath(hq.dir))
	fmt.Println("patchtree demo: sites are running; press Ctrl-C to stop them")
	select {
	case <-sigs:
		fmt.Println("\npatchtree demo: stopping")
		return nil
	case err := <-firstExit(sites):
		return err
	}
}

// demoCatalogDir is where the demo writes its sample catalog: the parent's only allowed import
// location.
func demoCatalogDir(base string) string { return filepath.Join(base, "catalog") }

// demoImport writes the embedded sample catalog (a small deterministic feed shaped like the
// Mozilla catalog) and imports it at the parent, printing the result.
func demoImport(parent *demoSite, base string) error {
	path := filepath.Join(demoCatalogDir(base), "sample-catalog.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	stats, err := feedgen.Generate(f, feedgen.Options{Bulletins: 40, Languages: 12, Seed: 2026, Feed: "demo-sample"})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write sample catalog: %w", err)
	}
	fmt.Printf("\npatchtree demo: importing a sample catalog at %s (%d bulletins, %d updates in %d languages)\n",
		parent.name, stats.Bulletins, stats.Updates, stats.Languages)
	c := &apiClient{base: parent.url, token: parent.token, http: &http.Client{Timeout: time.Minute}}
	var p importer.Progress
	if _, err := c.do(http.MethodPost, "/v1/catalog/import", importer.Request{Source: path}, &p); err != nil {
		return fmt.Errorf("import at %s: %w", parent.name, err)
	}
	final, _, err := waitImport(c, p.ID, false)
	if err != nil {
		return err
	}
	printImport(final)
	if final.State == "failed" {
		return fmt.Errorf("sample import failed: %s", final.Error)
	}
	return nil
}

// demoReplicate waits for the children to report their languages, shows the language alerts
// that raises, and replicates the catalog to both.
func demoReplicate(admin *apiClient, children []*demoSite) error {
	deadline := time.Now().Add(demoStartTimeout)
	for {
		var list struct {
			Children []struct {
				Name           string `json:"name"`
				RangesReported bool   `json:"ranges_reported"`
			} `json:"children"`
		}
		if _, err := admin.do(http.MethodGet, "/v1/children", nil, &list); err != nil {
			return err
		}
		reported := 0
		for _, c := range list.Children {
			if c.RangesReported {
				reported++
			}
		}
		if reported == len(children) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("children did not report their languages within %s", demoStartTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var alerts struct {
		Alerts []struct {
			Message string `json:"message"`
		} `json:"alerts"`
	}
	if _, err := admin.do(http.MethodGet, "/v1/alerts", nil, &alerts); err != nil {
		return err
	}
	fmt.Printf("\npatchtree demo: %d language alert(s) at the parent\n", len(alerts.Alerts))
	for _, a := range alerts.Alerts {
		fmt.Printf("  ALERT %s\n", a.Message)
	}
	fmt.Println("\npatchtree demo: replicating the catalog to every child (replicate now, wait)")
	var rep struct {
		Results []struct {
			Child    string `json:"child"`
			Verified bool   `json:"verified"`
			Error    string `json:"error"`
			Run      *struct {
				Mode      string `json:"mode"`
				Trigger   string `json:"trigger"`
				Records   int    `json:"records"`
				BytesWire int64  `json:"bytes_wire"`
				BytesRaw  int64  `json:"bytes_raw"`
			} `json:"run"`
		} `json:"results"`
	}
	body := map[string]any{"wait": true, "timeout": "60s"}
	if _, err := admin.do(http.MethodPost, "/v1/replication/now", body, &rep); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Run == nil {
			return fmt.Errorf("child %s: %s", r.Child, r.Error)
		}
		fmt.Printf("  %-5s %s run (%s): %d records, %d bytes on the wire (%d raw), verified %t %s\n",
			r.Child, r.Run.Mode, r.Run.Trigger, r.Run.Records, r.Run.BytesWire, r.Run.BytesRaw, r.Verified, r.Error)
		if !r.Verified {
			return fmt.Errorf("child %s did not verify: %s", r.Child, r.Error)
		}
	}
	return nil
}

// start launches the site's server process with its log in <base>/<name>.log.
func (s *demoSite) start(exe, base string, extra ...string) error {
	s.dir = filepath.Join(base, s.name)
	logf, err := os.Create(s.dir + ".log")
	if err != nil {
		return err
	}
	args := []string{"serve", "--role", s.role, "--name", s.name, "--data-dir", s.dir,
		"--listen", "127.0.0.1:0", "--languages", s.languages}
	s.cmd = exec.Command(exe, append(args, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.watchExit(logf)
	return nil
}

// watchExit waits for the started process in the background, then closes logf (if any) and
// s.exited.
func (s *demoSite) watchExit(logf *os.File) {
	s.exited = make(chan struct{})
	go func() {
		err := s.cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		s.exitErr = fmt.Errorf("site %s exited: %v (see %s.log)", s.name, err, s.dir)
		close(s.exited)
	}()
}

// waitReady waits for the site's API address, admin token and readiness.
func (s *demoSite) waitReady(sigs <-chan os.Signal) error {
	deadline := time.Now().Add(demoStartTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.url == "" {
			if buf, err := os.ReadFile(filepath.Join(s.dir, apiAddrFile)); err == nil {
				s.url = strings.TrimSpace(string(buf))
			}
		}
		if s.token == "" {
			if buf, err := os.ReadFile(node.AdminTokenPath(s.dir)); err == nil {
				s.token = strings.TrimSpace(string(buf))
			}
		}
		if s.url != "" && s.token != "" {
			c := &apiClient{base: s.url, http: &http.Client{Timeout: 2 * time.Second}}
			var h struct {
				Ready bool `json:"ready"`
			}
			if _, err := c.do(http.MethodGet, "/v1/health", nil, &h); err == nil && h.Ready {
				fmt.Printf("  %-5s %-6s ready at %s\n", s.name, s.role, s.url)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("site %s not ready after %s (see %s.log)", s.name, demoStartTimeout, s.dir)
		}
		select {
		case <-s.exited:
			return s.exitErr
		case <-sigs:
			return errors.New("interrupted")
		case <-tick.C:
		}
	}
}

// firstExit reports the first site process that exits on its own.
func firstExit(sites []*demoSite) <-chan error {
	out := make(chan error, len(sites))
	for _, s := range sites {
		if s.exited != nil {
			go func(s *demoSite) {
				<-s.exited
				out <- s.exitErr
			}(s)
		}
	}
	return out
}

// stopDemo stops every started site with SIGTERM, then SIGKILL after a grace period.
func stopDemo(sites []*demoSite) {
	for _, s := range sites {
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, s := range sites {
		if s.cmd == nil || s.cmd.Process == nil {
			continue
		}
		if s.exited == nil {
			continue
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
}
