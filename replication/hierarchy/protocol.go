// Package hierarchy is the parent↔child protocol: child enrolment, language reports and
// alerts, and the pull replication of each child's language-filtered view of the catalog. The
// child's leader always dials out; the parent decides when data flows by answering its
// long-polls. The wire protocol is versioned under /v1/hierarchy/v1 (docs/hierarchy.md).
package hierarchy

import (
	"slices"

	"patchtree/store"
)

// ProtocolPath is the prefix of every parent/child request.
const ProtocolPath = "/v1/hierarchy/v1"

// JoinRequest exchanges a one-time join token for a node credential.
type JoinRequest struct {
	Name      string `json:"name"`
	JoinToken string `json:"join_token"`
}

// JoinResponse carries the child's node credential.
type JoinResponse struct {
	NodeToken  string `json:"node_token"`
	ParentName string `json:"parent_name"`
	ParentSite string `json:"parent_site_id"`
}

// LanguageReport is a child's managed ranges. Child, if given, must be the credential's child.
// Ranges is what the child must receive: its own ranges and, at a relay, every range of its
// subtree. OwnRanges (absent from a child that predates relays: Ranges), Role and Subtree
// describe the site and every site below it, for alerts and the tree view.
type LanguageReport struct {
	Child     string             `json:"child,omitempty"`
	Ranges    []string           `json:"ranges"`
	OwnRanges []string           `json:"own_ranges,omitempty"`
	Role      string             `json:"role,omitempty"`
	Subtree   []store.Descendant `json:"subtree,omitempty"`
}

// MaxSubtree bounds the sites one language report may describe below the reporter.
const MaxSubtree = 1000

// LanguageReportResponse tells the child which of its ranges the tree does not cover, and where
// it stands in the tree.
type LanguageReportResponse struct {
	ParentRanges []string `json:"parent_ranges"`
	Uncovered    []string `json:"uncovered"`
	// RootRanges are the root's ranges: what any site of the tree can receive. Path is the
	// reporter's path from the root ("hq/emea").
	RootRanges []string `json:"root_ranges,omitempty"`
	Path       string   `json:"path,omitempty"`
}

// RunHeader is the first line of a pulled run. The body is zstd-compressed JSON lines: the
// header, then Chunks lines each holding one store.CatalogBatch of at most ~512 KiB.
type RunHeader struct {
	RunID   string   `json:"run_id"`
	Mode    string   `json:"mode"` // "complete" or "differential"
	Trigger string   `json:"trigger"`
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	Ranges  []string `json:"ranges"`
	// Digest is the digest of the child's whole filtered view at To; the child must reach it.
	Digest  string `json:"digest"`
	Records int    `json:"records"`
	Deletes int    `json:"deletes"`
	Chunks  int    `json:"chunks"`
	// FirstChunk is the first chunk this response holds: 0, or where a cut run resumes.
	FirstChunk int `json:"first_chunk"`
	// SamplePercent asks the child to send this share of its records for a record-by-record check.
	SamplePercent float64 `json:"sample_percent"`

	// Scopes are the sections the run carries, in the order the child applies them ("catalog",
	// "policies", "settings"); empty means catalog only. Without "catalog", From = To = the
	// child's cursor and Digest is empty: the child's catalog does not move.
	Scopes   []string         `json:"scopes,omitempty"`
	Policies *PolicySection   `json:"policies,omitempty"`
	Settings *SettingsSection `json:"settings,omitempty"`

	// RootVersion is the root's catalog version that To reflects (To itself at the root).
	RootVersion uint64 `json:"root_version,omitempty"`
	// Cascade, on a replicate-now run, asks a relay to pass the request on to its own
	// children (Cascade.Children: the whole subtree) once it applied the run.
	Cascade *Cascade `json:"cascade,omitempty"`
}

// Cascade is a replicate-now request travelling down the tree. ID identifies it at every
// depth: each site records the ids of the cascades it applied and verified, and reports them
// up, so the root knows when every targeted site has the data.
type Cascade struct {
	ID     string `json:"id"`
	Scope  string `json:"scope,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Policy string `json:"policy,omitempty"`
	Folder string `json:"folder,omitempty"`
}

// HasCatalog reports whether the run carries the catalog section.
func (h *RunHeader) HasCatalog() bool {
	return len(h.Scopes) == 0 || slices.Contains(h.Scopes, ScopeCatalog)
}

// PolicySection describes the policies a run carries (in its chunks' "policies", after every
// catalog record) and which policies the parent has ("policy_keep": the child drops the
// parent's policies it holds that are not listed).
type PolicySection struct {
	Mode    string `json:"mode"`
	Trigger string `json:"trigger"`
	// Folders and IDs select the policies sent (replicate now for a folder or a policy); both
	// empty: every policy changed since From (differential) or every policy (complete).
	Folders []string `json:"folders,omitempty"`
	IDs     []string `json:"ids,omitempty"`
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	// Advance says the child's policy cursor becomes To (with Ranges): the run covers every
	// policy change up to To. Digest is then over every policy, else over the policies sent.
	Advance bool     `json:"advance"`
	Ranges  []string `json:"ranges"`
	Records int      `json:"records"`
	Keep    int      `json:"keep"`
	Digest  string   `json:"digest"`
}

// SettingsSection describes the settings documents a run carries: always all of them.
type SettingsSection struct {
	Trigger string `json:"trigger"`
	To      uint64 `json:"to"`
	Records int    `json:"records"`
	Digest  string `json:"digest"`
}

// Replication scopes.
const (
	ScopeCatalog  = "catalog"
	ScopePolicies = "policies"
	ScopeSettings = "settings"
)

// SampleRecord is one record of the child's replica, for the record-by-record check.
type SampleRecord struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Hash string `json:"hash"`
}

// Ack is a child's report after applying (or failing to apply) a run.
type Ack struct {
	Child       string         `json:"child,omitempty"`
	RunID       string         `json:"run_id"`
	Applied     bool           `json:"applied"`
	Error       string         `json:"error,omitempty"`
	ChildDigest string         `json:"child_digest"`
	Sample      []SampleRecord `json:"sample,omitempty"`
	BytesWire   int64          `json:"bytes_wire"`
	BytesRaw    int64          `json:"bytes_raw"`
	DurationMS  int64          `json:"duration_ms"`
	// PolicyDigest and SettingsDigest are the child's digests of what the run's sections
	// concern, computed after applying; PoliciesDeleted counts the policies it dropped.
	PolicyDigest    string `json:"policy_digest,omitempty"`
	SettingsDigest  string `json:"settings_digest,omitempty"`
	PoliciesDeleted int    `json:"policies_deleted,omitempty"`
	SettingsDeleted int    `json:"settings_deleted,omitempty"`

	// carried says (on the child, never sent) whether the run held any record or deletion:
	// one that held none needs no sample and no language re-report.
	carried bool
	// header is (on the child, never sent) the header of the run acknowledged.
	header RunHeader
}

// AckResponse says whether the run verified.
type AckResponse struct {
	Verified   bool     `json:"verified"`
	Mismatches []string `json:"mismatches,omitempty"`
}

// chunk is one line of a run body after the header.
type chunk = store.CatalogBatch
