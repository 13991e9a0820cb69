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
// whole in one entry. The outcome counts what was stored before an error, and the computers
// whose stored scan was newer than the one sent (ignored).
func (n *Node) ApplyScans(scans []store.Scan) (*store.ScanOutcome, error) {
	total := &store.ScanOutcome{}
	for start := 0; start < len(scans); {
		end, cells := start, 0
		for end < len(scans) && (end == start || cells+len(scans[end].Cells) <= maxScanCellsPerEntry) {
			cells += len(scans[end].Cells)
			end++
		}
		raw, err := store.EncodeScans(scans[start:end])
		if err != nil {
			return total, err
		}
		if len(raw) > MaxEntrySize-1024 {
			return total, fmt.Errorf("scan of computer %s is too large for one entry (%d bytes compressed): %w", scans[start].ComputerID, len(raw), store.ErrInvalid)
		}
		resp, _, err := n.applyResponse(ScansApplyRequestType, &ScansApplyRequest{Batch: raw})
		if err != nil {
			return total, err
		}
		if out, ok := resp.(*store.ScanOutcome); ok {
			total.Stored += out.Stored
			total.Results += out.Results
			total.Older = append(total.Older, out.Older...)
		}
		start = end
	}
	return total, nil
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
