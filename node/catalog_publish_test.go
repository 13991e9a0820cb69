package node

import (
	"bytes"
	"io"
	"testing"

	"patchtree/store"
)

// TestFSMSnapshotMidPublish: a Raft snapshot taken between publish entries restores the
// published version for readers and the publish itself, so the restored FSM applies the rest
// of the log exactly as the one that never restored.
func TestFSMSnapshotMidPublish(t *testing.T) {
	src := testFSM(t)
	applySteps(t, src)
	next := uint64(len(fsmSteps()))
	batch := func(id, lang string) []byte {
		return mustBatch(store.CatalogBatch{Tombstones: true, DeleteUpdates: []string{"U9"},
			Updates: []*store.Update{{UpdateContent: store.UpdateContent{ID: id, Title: id, Language: lang}, Feed: "f", Hash: "h-" + id}}})
	}
	apply := func(f *FSM, idx uint64, mt MessageType, req any) {
		t.Helper()
		if err, ok := f.Apply(makeLog(t, idx, mt, req)).(error); ok && err != nil {
			t.Fatalf("entry %d (%s): %v", idx, mt, err)
		}
	}
	first := next + 1
	apply(src, first, CatalogPublishRequestType, &CatalogPublishRequest{RunID: "r4", Batch: batch("U10", "fr")})
	before, _ := src.State().Catalog(nil)

	dst := testFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, src)))); err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, src.State()), digest(t, dst.State()); a != b {
		t.Fatal("digest after a restore mid-publish differs")
	}
	if run, _ := dst.State().Publishing(); run != "r4" {
		t.Fatalf("restored FSM publishing %q, want r4", run)
	}
	for _, f := range []*FSM{src, dst} {
		if u, _ := f.State().Update(nil, "U10"); u != nil {
			t.Fatal("an update of the version being published is visible")
		}
		if u, _ := f.State().Update(nil, "U9"); u == nil {
			t.Fatal("an update the publish removes is gone before the switch")
		}
		apply(f, first+1, CatalogPublishRequestType, &CatalogPublishRequest{RunID: "r4", Batch: batch("U11", "fr")})
		apply(f, first+2, CatalogSwitchRequestType, &CatalogCommitRequest{Run: store.ImportRun{ID: "r4", State: store.ImportSucceeded}})
	}
	if a, b := digest(t, src.State()), digest(t, dst.State()); a != b {
		t.Fatal("digests differ after the switch")
	}
	info, _ := dst.State().Catalog(nil)
	u10, _ := dst.State().Update(nil, "U10")
	u9, _ := dst.State().Update(nil, "U9")
	if info.Version != first || u10 == nil || u10.ModifyIndex != first || u9 != nil || info.Updates != before.Updates+1 {
		t.Fatalf("after the switch: catalog %+v (before %+v), U10 %+v, U9 %+v", info, before, u10, u9)
	}
}
