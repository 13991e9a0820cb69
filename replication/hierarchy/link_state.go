package hierarchy

// The link's status in the site's replicated state: written by the leader when it changes (the
// last contact only when it moves past contactGrain), read by every other server, and by a new
// leader as its starting point, so that no server reports a link it does not run as unknown.

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// SettingLinkStatus is the settings key of the parent link's status.
const SettingLinkStatus = "parent-link-status"

// contactGrain is the granularity of the replicated last contact: every successful request
// is a contact, and writing each would put one Raft entry per long-poll in the log.
const contactGrain = time.Minute

// linkRecord is the replicated status of the parent link.
type linkRecord struct {
	State          string    `json:"state"`
	URL            string    `json:"url,omitempty"`
	Error          string    `json:"error,omitempty"`
	Problem        string    `json:"problem,omitempty"`
	LastContact    time.Time `json:"last_contact,omitzero"`
	RangesReported bool      `json:"ranges_reported,omitempty"`
	Uncovered      []string  `json:"uncovered_ranges,omitempty"`
	LastRun        string    `json:"last_run,omitempty"`
	LastVerified   bool      `json:"last_verified,omitempty"`
	// Health changes are written; Failures only goes along with a write (a count per failed
	// request would be a Raft entry per retry while the parent is down).
	Health   string `json:"health,omitempty"`
	Failures int    `json:"consecutive_failures,omitempty"`
}

// recordOf is what of a status is replicated.
func recordOf(st ChildState) linkRecord {
	r := linkRecord{State: st.State, URL: st.URL, Error: st.Error, Problem: st.Problem, RangesReported: st.RangesReported,
		Uncovered: st.Uncovered, LastRun: st.LastRun, LastVerified: st.LastVerified,
		Health: st.Health, Failures: st.ConsecutiveFailures}
	if !st.LastContact.IsZero() {
		r.LastContact = st.LastContact.UTC().Truncate(contactGrain)
	}
	return r
}

func (r linkRecord) same(o linkRecord) bool {
	return r.State == o.State && r.URL == o.URL && r.Error == o.Error && r.Problem == o.Problem &&
		r.LastContact.Equal(o.LastContact) && r.RangesReported == o.RangesReported &&
		slices.Equal(r.Uncovered, o.Uncovered) && r.LastRun == o.LastRun && r.LastVerified == o.LastVerified && r.Health == o.Health
}

// loadRecord reads the replicated status (false: none yet).
func (c *Child) loadRecord() (linkRecord, bool, error) {
	var r linkRecord
	row, err := c.backend.State().Setting(nil, SettingLinkStatus)
	if err != nil || row == nil {
		return r, false, err
	}
	if err := json.Unmarshal(row.Value, &r); err != nil {
		return r, false, fmt.Errorf("decode the parent link's status: %w", err)
	}
	return r, true, nil
}

// saveState writes the status to the replicated state if it changed (only on the server that
// runs the link). One save at a time, each of the newest status, so an older one never lands
// after a newer one.
func (c *Child) saveState() {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	rec := recordOf(c.state)
	skip := !c.running || (c.savedOK && rec.same(c.saved))
	c.mu.Unlock()
	if skip {
		return
	}
	if _, err := c.backend.PutSetting(SettingLinkStatus, rec); err != nil {
		c.cfg.Logger.Debug("could not record the parent link's status", "error", err)
		return
	}
	c.mu.Lock()
	c.saved, c.savedOK = rec, true
	c.mu.Unlock()
}

// resumeState starts a leader's in-memory status from the replicated one: the last run, its
// verification and the last contact stay what the previous leader recorded.
func (c *Child) resumeState() {
	rec, ok, err := c.loadRecord()
	if err != nil {
		c.cfg.Logger.Warn("read the parent link's recorded status", "error", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved, c.savedOK = rec, ok
	if !ok {
		return
	}
	c.state.LastRun, c.state.LastVerified, c.state.LastContact = rec.LastRun, rec.LastVerified, rec.LastContact
	c.state.RangesReported, c.state.Error = rec.RangesReported, rec.Error
	if rec.Health != "" {
		// The previous leader's streak goes on here.
		c.runFailures, c.state.Health, c.state.ConsecutiveFailures = rec.Failures, rec.Health, rec.Failures
	}
	if rec.Uncovered != nil {
		c.state.Uncovered = rec.Uncovered
	}
}

// replicatedStatus is the status as the replicated state has it, on a server that does not run
// the link (a follower, or a leader whose loop has not started).
func (c *Child) replicatedStatus(mem ChildState) ChildState {
	st := ChildState{URL: c.cfg.ParentURL, State: LinkJoining, Uncovered: []string{}, LastSummary: mem.LastSummary,
		Health: HealthActive}
	link, err := c.link()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	if link != nil {
		st.Joined, st.URL, st.Addresses = link.NodeToken != "", link.URL, link.Addresses()
	} else if c.cfg.ParentURL == "" {
		st.State, st.Error = LinkNotConfigured, errNotConfigured.Error()
	}
	rec, ok, err := c.loadRecord()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	if ok {
		st.State, st.Error = rec.State, rec.Error
		if rec.URL != "" {
			st.URL = rec.URL
		}
		st.LastContact, st.RangesReported, st.LastRun, st.LastVerified = rec.LastContact, rec.RangesReported, rec.LastRun, rec.LastVerified
		if rec.Health != "" {
			st.Health, st.ConsecutiveFailures = rec.Health, rec.Failures
		}
		if rec.Uncovered != nil {
			st.Uncovered = rec.Uncovered
		}
	}
	if link != nil {
		// What this server lacks matters once it leads: it says so, whatever the leader lacks.
		st.Problem = c.tlsProblem(link)
	}
	return st
}
