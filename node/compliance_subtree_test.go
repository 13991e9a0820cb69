package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"patchtree/store"
)

// TestPutSubtreeSummariesSplitsEntries: what a relay forwarded is written in as many entries as
// its rows need, each under MaxEntrySize, and the last one drops the paths the relay no longer
// lists; a row too large for any entry is refused.
func TestPutSubtreeSummariesSplitsEntries(t *testing.T) {
	nodes, _ := testCluster(t, 1, &loopProbe{running: map[string]int{}})
	n := nodes[0]
	rng := rand.New(rand.NewPCG(3, 4))
	noise := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	var rows []*store.SubtreeSummary
	var keep []string
	for i := range 24 {
		path := fmt.Sprintf("emea/site-%02d", i)
		rows = append(rows, &store.SubtreeSummary{Path: path, Child: "emea", Seq: 1, Digest: "d", Summary: noise(100 << 10)})
		keep = append(keep, path)
	}
	if _, err := n.PutSubtreeSummaries("emea", []*store.SubtreeSummary{{Path: "emea/gone", Child: "emea", Seq: 1, Digest: "g", Summary: []byte("x")}}, []string{"emea/gone"}); err != nil {
		t.Fatal(err)
	}
	before := n.State().LatestIndex()
	out, err := n.PutSubtreeSummaries("emea", rows, keep)
	if err != nil {
		t.Fatal(err)
	}
	entries := n.State().LatestIndex() - before
	if out.Stored != 24 || out.Dropped != 1 || entries < 4 {
		t.Fatalf("outcome %+v in %d entries; want 24 stored, 1 dropped, several entries for 2.4 MiB of summaries", out, entries)
	}
	got, _ := n.State().SubtreeSummaries(nil, "emea")
	if len(got) != 24 {
		t.Fatalf("%d rows stored, want 24", len(got))
	}
	_, err = n.PutSubtreeSummaries("emea", []*store.SubtreeSummary{{Path: "emea/huge", Child: "emea", Seq: 1, Digest: "h", Summary: noise(600 << 10)}}, keep)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a row over an entry: %v, want ErrInvalid", err)
	}
	t.Logf("24 summaries of 100 KiB: %d entries", entries)
}
