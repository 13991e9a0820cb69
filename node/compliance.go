package node

import (
	"fmt"

	"patchtree/store"
)

// ScansApplyRequest stores a bounded batch of validated scans (store.EncodeScans).
type ScansApplyRequest struct {
	Batch []byte `json:"batch"`
}

// ChildSummaryPutRequest stores a child's compliance summary (and the run that brought it).
type ChildSummaryPutRequest struct {
	Summary store.ChildSummary    `json:"summary"`
	Run     *store.ReplicationRun `json:"run,omitempty"`
}

// maxScanCellsPerEntry bounds one Raft entry of scans: about 3 MB of JSON, a few hundred KB
// once compressed, well under MaxEntrySize.
const maxScanCellsPerEntry = 100_000

// ApplyScans stores validated scans in bounded Raft entries; each computer's scan is applied
// whole in one entry. It returns how many scans were written before an error.
func (n *Node) ApplyScans(scans []store.Scan) (int, error) {
	done := 0
	for start := 0; start < len(scans); {
		end, cells := start, 0
		for end < len(scans) && (end == start || cells+len(scans[end].Cells) <= maxScanCellsPerEntry) {
			cells += len(scans[end].Cells)
			end++
		}
		raw, err := store.EncodeScans(scans[start:end])
		if err != nil {
			return done, err
		}
		if len(raw) > MaxEntrySize-1024 {
			return done, fmt.Errorf("scan of computer %s is too large for one entry (%d bytes compressed): %w", scans[start].ComputerID, len(raw), store.ErrInvalid)
		}
		if _, err := n.apply(ScansApplyRequestType, &ScansApplyRequest{Batch: raw}); err != nil {
			return done, err
		}
		done += end - start
		start = end
	}
	return done, nil
}

// SummaryOutcome is the FSM's answer to a child summary: stored, or why not.
type SummaryOutcome struct {
	Stored bool
	Reason string
}

// PutChildSummary stores a child's compliance summary at this parent (and the run that brought
// it, if stored): a replay or an older sequence is not stored.
func (n *Node) PutChildSummary(s *store.ChildSummary, run *store.ReplicationRun) (bool, string, error) {
	resp, _, err := n.applyResponse(ChildSummaryPutRequestType, &ChildSummaryPutRequest{Summary: *s, Run: run})
	if err != nil {
		return false, "", err
	}
	out, _ := resp.(*SummaryOutcome)
	if out == nil {
		return false, "", fmt.Errorf("child summary: unexpected FSM answer %T", resp)
	}
	return out.Stored, out.Reason, nil
}
