package node

import (
	"encoding/json"
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

// SubtreeSummariesPutRequest stores part of what a child forwarded of the sites below it
// (store.PutSubtreeSummaries). The last entry of a report carries Keep and Prune.
type SubtreeSummariesPutRequest struct {
	Child string                  `json:"child"`
	Rows  []*store.SubtreeSummary `json:"rows,omitempty"`
	Keep  []string                `json:"keep,omitempty"`
	Prune bool                    `json:"prune,omitempty"`
}

// maxSubtreeEntryBytes bounds the rows and keep list of one subtree entry (their JSON, the
// summaries compressed and base64-encoded), under MaxEntrySize. A keep list is at most
// hierarchy.MaxSubtreeSummaries paths of at most hierarchy.MaxSubtreePathBytes each (512 KiB).
const maxSubtreeEntryBytes = 640 << 10

// PutSubtreeSummaries stores what child forwarded of the sites below it, in as many Raft
// entries as the rows need (each at most maxSubtreeEntryBytes of rows); the last one also drops
// the stored paths under child that keep does not list. Each entry is applied on its own: a
// path's row is whole in one entry, and an entry that fails leaves the earlier ones stored, which
// the child's next report completes. A row too large for an entry is refused (store.ErrInvalid).
func (n *Node) PutSubtreeSummaries(child string, rows []*store.SubtreeSummary, keep []string) (*store.SubtreeOutcome, error) {
	total := &store.SubtreeOutcome{}
	var batch []*store.SubtreeSummary
	size := 0
	flush := func(last bool) error {
		req := &SubtreeSummariesPutRequest{Child: child, Rows: batch}
		if last {
			req.Keep, req.Prune = keep, true
		}
		resp, _, err := n.applyResponse(SubtreeSummariesPutRequestType|IgnoreUnknownTypeFlag, req)
		if err != nil {
			return err
		}
		if out, ok := resp.(*store.SubtreeOutcome); ok {
			total.Stored += out.Stored
			total.Refreshed += out.Refreshed
			total.Dropped += out.Dropped
			total.Ignored = append(total.Ignored, out.Ignored...)
		}
		batch, size = nil, 0
		return nil
	}
	for _, r := range rows {
		buf, err := json.Marshal(r)
		if err != nil {
			return total, fmt.Errorf("encode subtree summary %s: %w", r.Path, err)
		}
		if len(buf) > maxSubtreeEntryBytes {
			return total, fmt.Errorf("summary of %s is too large for one entry (%d bytes encoded, limit %d): %w", r.Path, len(buf), maxSubtreeEntryBytes, store.ErrInvalid)
		}
		if size+len(buf) > maxSubtreeEntryBytes {
			if err := flush(false); err != nil {
				return total, err
			}
		}
		batch = append(batch, r)
		size += len(buf)
	}
	keepBytes := 0
	for _, p := range keep {
		keepBytes += len(p) + 3
	}
	if len(batch) > 0 && size+keepBytes > maxSubtreeEntryBytes {
		if err := flush(false); err != nil {
			return total, err
		}
	}
	return total, flush(true)
}

func (f *FSM) applySubtreeSummariesPut(buf []byte, idx uint64) any {
	var req SubtreeSummariesPutRequest
	decode(SubtreeSummariesPutRequestType, buf, idx, &req)
	out, err := f.State().PutSubtreeSummaries(idx, req.Child, req.Rows, req.Keep, req.Prune)
	if err != nil {
		return err
	}
	return out
}
