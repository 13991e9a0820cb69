package node

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// TestLargeSummaryFitsOneEntry: a child's summary of a catalog far larger than the Mozilla feed
// (15,000 bulletins; Mozilla has 1,118) still fits one Raft entry at the parent.
func TestLargeSummaryFitsOneEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sum := &compliance.Summary{Site: "c", Computers: 10000}
	for i := 0; i < 15000; i++ {
		var c [4]int64
		left := int64(10000)
		for s := 0; s < 3; s++ {
			c[s] = rng.Int64N(left + 1)
			left -= c[s]
		}
		c[3] = left
		sum.Bulletins = append(sum.Bulletins, compliance.BulletinCounts{ID: fmt.Sprintf("MFSA-%d-%02d", 2005+i/100, i%100), C: c})
	}
	raw, err := sum.Encode()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := Encode(ChildSummaryPutRequestType, &ChildSummaryPutRequest{Summary: store.ChildSummary{Child: "c", Seq: 1, Summary: raw}})
	if err != nil {
		t.Fatal(err)
	}
	if len(buf) > MaxEntrySize {
		t.Fatalf("summary entry is %d bytes, over %d", len(buf), MaxEntrySize)
	}
	back, err := compliance.DecodeStored(raw)
	if err != nil || len(back.Bulletins) != 15000 || back.Digest() != sum.Digest() {
		t.Fatalf("round trip: %v", err)
	}
	t.Logf("15,000 bulletins: entry %d bytes", len(buf))
}
