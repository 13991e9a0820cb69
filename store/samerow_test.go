package store

import "testing"

// TestSameRowIgnoresIndexes: a replicated row equal to the stored one but for its Raft indexes
// is the same row (it keeps its modify index); any other difference is a change.
func TestSameRowIgnoresIndexes(t *testing.T) {
	a := &Update{UpdateContent: UpdateContent{ID: "u", Language: "de"}, Hash: "h"}
	b := *a
	a.ModifyIndex, b.ModifyIndex = 3, 9
	if !sameRow(a, &b) {
		t.Fatal("rows differing only in Raft indexes are not the same")
	}
	b.Hash = "other"
	if sameRow(a, &b) {
		t.Fatal("rows with other content are the same")
	}
	if a.ModifyIndex != 3 {
		t.Fatal("sameRow changed its argument")
	}
}
