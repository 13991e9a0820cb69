package metrics

// The links: every parent→child link of this site (its parent side), per stream, and this
// site's own link to its parent. Run counts and bytes are over the run history the site keeps
// (hierarchy.KeepRunsPerChild runs per child), the same runs GET /v1/replication/runs lists.

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"patchtree/replication/hierarchy"
	"patchtree/store"
)

var (
	linkHealth         = desc("patchtree_link_health", "Health of the link to a child: 1 for the current one of active, degraded, failed.", "child", "health")
	linkFailures       = desc("patchtree_link_consecutive_failures", "Runs of the link to a child in a row that failed or did not verify.", "child")
	linkJoined         = desc("patchtree_link_joined", "1 when the child has joined with its join token.", "child")
	linkConnected      = desc("patchtree_link_connected", "1 when the child is polling this server now (leader only).", "child")
	linkContactAge     = desc("patchtree_link_last_contact_age_seconds", "Seconds since the child last polled this server (leader only).", "child")
	linkCursor         = desc("patchtree_link_cursor", "The index of a stream the child holds.", "child", "stream")
	linkLagIndex       = desc("patchtree_link_lag_index", "How far behind the child is on a stream, in indexes (catalog versions, policy writes, settings writes).", "child", "stream")
	linkLagSeconds     = desc("patchtree_link_lag_seconds", "How long the child has lacked the newest version of a stream (0: up to date).", "child", "stream")
	linkRuns           = desc("patchtree_link_runs", "Runs in the link's run history that carried a stream, by mode, trigger and result (verified, unverified, failed).", "child", "stream", "mode", "trigger", "result")
	linkWireBytes      = desc("patchtree_link_wire_bytes", "Bytes on the wire (compressed) of the runs in the link's run history.", "child")
	linkRawBytes       = desc("patchtree_link_raw_bytes", "Bytes before compression of the runs in the link's run history.", "child")
	linkVerifyFailures = desc("patchtree_link_verification_failures", "Runs in the link's run history whose replica did not verify.", "child")

	parentLinkState      = desc("patchtree_parent_link_state", "State of this site's link to its parent: 1 for the current one.", "state")
	parentLinkHealth     = desc("patchtree_parent_link_health", "Health of this site's link to its parent: 1 for the current one of active, degraded, failed.", "health")
	parentLinkFailures   = desc("patchtree_parent_link_consecutive_failures", "Requests to the parent that failed plus runs that did not verify, in a row.")
	parentLinkConnected  = desc("patchtree_parent_link_connected", "1 when this site is in contact with its parent.")
	parentLinkContactAge = desc("patchtree_parent_link_last_contact_age_seconds", "Seconds since this site's last contact with its parent.")
	parentLinkCursor     = desc("patchtree_parent_link_cursor", "The catalog version this site holds of its parent's.")
)

func describeLinks(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{linkHealth, linkFailures, linkJoined, linkConnected, linkContactAge, linkCursor,
		linkLagIndex, linkLagSeconds, linkRuns, linkWireBytes, linkRawBytes, linkVerifyFailures, parentLinkState,
		parentLinkHealth, parentLinkFailures, parentLinkConnected, parentLinkContactAge, parentLinkCursor} {
		ch <- d
	}
}

var healthStates = []string{hierarchy.HealthActive, hierarchy.HealthDegraded, hierarchy.HealthFailed}

// runResult names a run's outcome.
func runResult(r *store.ReplicationRun) string {
	switch {
	case r.Verified:
		return "verified"
	case r.Error != "":
		return "failed"
	default:
		return "unverified"
	}
}

func (c *siteCollector) collectChildren(ch chan<- prometheus.Metric, _ string) error {
	if c.cfg.Parent == nil {
		return nil
	}
	children, err := c.cfg.Parent.Status("")
	if err != nil {
		return err
	}
	state := c.cfg.Node.State()
	runs, err := state.ReplicationRuns(nil)
	if err != nil {
		return err
	}
	now := time.Now()
	settingsIndex := state.SettingDocsIndex(nil)
	for _, cs := range children {
		for _, h := range healthStates {
			gauge(ch, linkHealth, boolValue(cs.Health == h), cs.Name, h)
		}
		gauge(ch, linkFailures, float64(cs.ConsecutiveFailures), cs.Name)
		gauge(ch, linkJoined, boolValue(cs.Joined), cs.Name)
		if cs.LastSeen != nil {
			gauge(ch, linkConnected, boolValue(cs.Connected), cs.Name)
			gauge(ch, linkContactAge, now.Sub(*cs.LastSeen).Seconds(), cs.Name)
		}
		gauge(ch, linkCursor, float64(cs.Cursor), cs.Name, hierarchy.ScopeCatalog)
		gauge(ch, linkCursor, float64(cs.PolicyCursor), cs.Name, hierarchy.ScopePolicies)
		gauge(ch, linkCursor, float64(cs.SettingsCursor), cs.Name, hierarchy.ScopeSettings)
		gauge(ch, linkLagIndex, float64(cs.LagIndex), cs.Name, hierarchy.ScopeCatalog)
		gauge(ch, linkLagSeconds, cs.LagSeconds, cs.Name, hierarchy.ScopeCatalog)
		gauge(ch, linkLagIndex, float64(cs.PolicyLag), cs.Name, hierarchy.ScopePolicies)
		var settingsLag uint64
		if settingsIndex > cs.SettingsCursor {
			settingsLag = settingsIndex - cs.SettingsCursor
		}
		gauge(ch, linkLagIndex, float64(settingsLag), cs.Name, hierarchy.ScopeSettings)
	}
	c.collectRuns(ch, children, runs)
	current, err := c.cfg.Parent.Alerts()
	if err != nil {
		return err
	}
	byKind := map[string]int{}
	for _, a := range current {
		byKind[a.Kind]++
	}
	for kind, n := range byKind {
		gauge(ch, alerts, float64(n), kind)
	}
	return nil
}

// runKey is one series of patchtree_link_runs.
type runKey struct{ child, stream, mode, trigger, result string }

// collectRuns counts the run history of every enrolled child.
func (c *siteCollector) collectRuns(ch chan<- prometheus.Metric, children []hierarchy.ChildStatus, runs []*store.ReplicationRun) {
	enrolled := map[string]bool{}
	wire, raw, verifyFailures := map[string]int64{}, map[string]int64{}, map[string]int{}
	for _, cs := range children {
		enrolled[cs.Name] = true
	}
	counts := map[runKey]int{}
	for _, r := range runs {
		if !enrolled[r.Child] {
			continue
		}
		for _, stream := range strings.Split(r.Scope, "+") {
			counts[runKey{r.Child, stream, r.Mode, r.Trigger, runResult(r)}]++
		}
		wire[r.Child] += r.BytesWire
		raw[r.Child] += r.BytesRaw
		if !r.Verified {
			verifyFailures[r.Child]++
		}
	}
	for k, n := range counts {
		gauge(ch, linkRuns, float64(n), k.child, k.stream, k.mode, k.trigger, k.result)
	}
	for child := range enrolled {
		gauge(ch, linkWireBytes, float64(wire[child]), child)
		gauge(ch, linkRawBytes, float64(raw[child]), child)
		gauge(ch, linkVerifyFailures, float64(verifyFailures[child]), child)
	}
}

// linkStates are the states of the link to the parent.
var linkStates = []string{hierarchy.LinkJoining, hierarchy.LinkRunning, hierarchy.LinkFailed, hierarchy.LinkNotConfigured}

func (c *siteCollector) collectParentLink(ch chan<- prometheus.Metric, _ string) error {
	if c.cfg.ParentLink == nil {
		return nil
	}
	st := c.cfg.ParentLink()
	for _, s := range linkStates {
		gauge(ch, parentLinkState, boolValue(st.State == s), s)
	}
	for _, h := range healthStates {
		gauge(ch, parentLinkHealth, boolValue(st.Health == h), h)
	}
	gauge(ch, parentLinkFailures, float64(st.ConsecutiveFailures))
	gauge(ch, parentLinkConnected, boolValue(st.Connected))
	if !st.LastContact.IsZero() {
		gauge(ch, parentLinkContactAge, time.Since(st.LastContact).Seconds())
	}
	gauge(ch, parentLinkCursor, float64(st.Cursor))
	return nil
}
