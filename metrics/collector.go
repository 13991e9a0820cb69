package metrics

// The scrape-time collector: every value is read from the server's state when Prometheus
// scrapes, so the metrics say what GET /v1/status, /v1/children, /v1/compliance and
// /v1/replication/runs say at that moment.

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"patchtree/replication/compliance"
	"patchtree/store"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	siteInfo = desc("patchtree_site_info", "The site this server belongs to: always 1, with its name and role.", "site", "role")

	raftState      = desc("patchtree_raft_state", "This server's Raft state: 1 for the current one.", "state")
	raftTerm       = desc("patchtree_raft_term", "The current Raft term.")
	raftCommit     = desc("patchtree_raft_commit_index", "The Raft commit index this server knows.")
	raftApplied    = desc("patchtree_raft_applied_index", "Raft's applied index (entries handed to the state machine, some maybe still queued).")
	raftFSMApplied = desc("patchtree_raft_fsm_applied_index", "The last Raft entry the state machine itself applied (fsm_applied_index of GET /v1/status).")
	raftLast       = desc("patchtree_raft_last_index", "The last index in this server's Raft log.")
	raftServers    = desc("patchtree_raft_servers", "Servers of the site's Raft group, by suffrage.", "suffrage")
	raftSkipped    = desc("patchtree_raft_skipped_entries_total", "Log entries of unknown ignorable types this server skipped since it started.")
	ready          = desc("patchtree_ready", "1 when this server has caught up and serves reads.")

	catalogVersion = desc("patchtree_catalog_version", "The catalog version (the Raft index of its last change).")
	storeRows      = desc("patchtree_store_rows", "Rows per table of the replicated store.", "table")

	importRuns     = desc("patchtree_import_runs", "Catalog imports in the site's import history, by state.", "state")
	importRecords  = desc("patchtree_import_last_records", "Records of the newest finished import, by kind (bulletins, updates) and change.", "kind", "change")
	importDuration = desc("patchtree_import_last_duration_seconds", "Duration of the newest finished import.")
	importBytes    = desc("patchtree_import_last_read_bytes", "Bytes the newest import this server ran read from its source (leader only).")

	alerts = desc("patchtree_alerts", "Current alerts of the parent side, by kind.", "kind")

	complianceComputers = desc("patchtree_compliance_computers", "Computers with a scan, per site of this site's compliance report (GET /v1/compliance).", "site")
	complianceCompliant = desc("patchtree_compliance_compliant_computers", "Computers that need no update, per site.", "site")
	complianceCells     = desc("patchtree_compliance_cells", "(computer, update) pairs per scan state, per site.", "site", "state")
	complianceAge       = desc("patchtree_compliance_report_age_seconds", "Age of the compliance summary a site below reported (now minus its as_of), per site.", "site")
	complianceStale     = desc("patchtree_compliance_site_stale", "1 when a site below missed its expected compliance report.", "site")
)

// siteCollector reads the state at scrape time.
type siteCollector struct {
	cfg      Config
	reporter *compliance.Reporter
}

func newSiteCollector(cfg Config) *siteCollector {
	return &siteCollector{cfg: cfg, reporter: compliance.NewReporter()}
}

// Describe sends every descriptor.
func (c *siteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{siteInfo, raftState, raftTerm, raftCommit, raftApplied, raftFSMApplied, raftLast,
		raftServers, raftSkipped, ready, catalogVersion, storeRows, importRuns, importRecords, importDuration, importBytes,
		alerts, complianceComputers, complianceCompliant, complianceCells, complianceAge, complianceStale} {
		ch <- d
	}
	describeLinks(ch)
}

// Collect reads the state; a part that cannot be read is logged and left out, the rest goes on.
func (c *siteCollector) Collect(ch chan<- prometheus.Metric) {
	site := c.collectNode(ch)
	parts := []struct {
		name string
		fn   func(chan<- prometheus.Metric, string) error
	}{
		{"store", c.collectStore}, {"imports", c.collectImports}, {"compliance", c.collectCompliance},
		{"children", c.collectChildren}, {"parent link", c.collectParentLink},
	}
	for _, p := range parts {
		if err := p.fn(ch, site); err != nil {
			c.cfg.Logger.Warn("metrics: could not read the state", "part", p.name, "error", err)
			ch <- prometheus.NewInvalidMetric(desc("patchtree_scrape_error", "A part of the state could not be read."), err)
		}
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// raftStates are the states of hashicorp/raft's RaftState.String.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// collectNode reports Raft and the site; it returns the site's name.
func (c *siteCollector) collectNode(ch chan<- prometheus.Metric) string {
	st, err := c.cfg.Node.Status()
	if err != nil {
		c.cfg.Logger.Warn("metrics: could not read the status", "error", err)
		ch <- prometheus.NewInvalidMetric(raftTerm, err)
		return ""
	}
	gauge(ch, siteInfo, 1, st.Name, st.Role)
	for _, s := range raftStates {
		gauge(ch, raftState, boolValue(st.Raft.State == s), strings.ToLower(s))
	}
	gauge(ch, raftTerm, float64(st.Raft.Term))
	gauge(ch, raftCommit, float64(st.Raft.CommitIndex))
	gauge(ch, raftApplied, float64(st.Raft.AppliedIndex))
	gauge(ch, raftFSMApplied, float64(st.Raft.FSMAppliedIndex))
	gauge(ch, raftLast, float64(st.Raft.LastIndex))
	suffrage := map[string]int{"Voter": 0, "Nonvoter": 0, "Staging": 0}
	for _, s := range st.Raft.Servers {
		suffrage[s.Suffrage]++
	}
	for s, n := range suffrage {
		gauge(ch, raftServers, float64(n), strings.ToLower(s))
	}
	ch <- prometheus.MustNewConstMetric(raftSkipped, prometheus.CounterValue, float64(st.Raft.SkippedEntries))
	gauge(ch, ready, boolValue(st.Ready))
	gauge(ch, catalogVersion, float64(st.Catalog.Version))
	return st.Name
}

func (c *siteCollector) collectStore(ch chan<- prometheus.Metric, _ string) error {
	rows, err := c.cfg.Node.State().TableRows()
	if err != nil {
		return err
	}
	for table, n := range rows {
		gauge(ch, storeRows, float64(n), table)
	}
	return nil
}

// importStates are the states an import run ends in or passes.
var importStates = []string{store.ImportRunning, store.ImportSucceeded, store.ImportUnchanged, store.ImportFailed, store.ImportCancelled}

func (c *siteCollector) collectImports(ch chan<- prometheus.Metric, _ string) error {
	runs, err := c.cfg.Node.State().ImportRuns(nil)
	if err != nil {
		return err
	}
	byState := map[string]int{}
	for _, s := range importStates {
		byState[s] = 0
	}
	var newest *store.ImportRun
	for _, r := range runs {
		byState[r.State]++
		if !r.FinishedAt.IsZero() && (newest == nil || r.FinishedAt.After(newest.FinishedAt)) {
			newest = r
		}
	}
	for s, n := range byState {
		gauge(ch, importRuns, float64(n), s)
	}
	if newest == nil {
		return nil
	}
	for kind, counts := range map[string]store.ImportCounts{"bulletins": newest.Result.Bulletins, "updates": newest.Result.Updates} {
		gauge(ch, importRecords, float64(counts.Added), kind, "added")
		gauge(ch, importRecords, float64(counts.Changed), kind, "changed")
		gauge(ch, importRecords, float64(counts.Removed), kind, "removed")
		gauge(ch, importRecords, float64(counts.Unchanged), kind, "unchanged")
	}
	gauge(ch, importDuration, newest.FinishedAt.Sub(newest.StartedAt).Seconds())
	if c.cfg.Importer == nil {
		return nil
	}
	progress, err := c.cfg.Importer.Runs()
	if err != nil {
		return err
	}
	for _, p := range progress {
		if p.ID == newest.ID {
			gauge(ch, importBytes, float64(p.BytesRead))
		}
	}
	return nil
}

func (c *siteCollector) collectCompliance(ch chan<- prometheus.Metric, site string) error {
	now := time.Now()
	o, err := c.reporter.OverviewDepth(c.cfg.Node.State(), site, now, -1)
	if err != nil {
		return err
	}
	for _, s := range o.Sites {
		gauge(ch, complianceComputers, float64(s.Computers), s.Path)
		gauge(ch, complianceCompliant, float64(s.Compliant), s.Path)
		for i, name := range store.StateNames {
			gauge(ch, complianceCells, float64(s.Cells[i]), s.Path, name)
		}
		if s.Local {
			continue
		}
		if !s.AsOf.IsZero() {
			gauge(ch, complianceAge, now.Sub(s.AsOf).Seconds(), s.Path)
		}
		gauge(ch, complianceStale, boolValue(s.Stale), s.Path)
	}
	return nil
}
