package compliance

import (
	"testing"

	"patchtree/store"
)

// TestBuildCountsTheCatalogOfItsView: a summary counts every computer against the catalog read
// with the counts (one read transaction): each bulletin of the catalog is listed, and cells of
// updates no scan named are unknown.
func TestBuildCountsTheCatalogOfItsView(t *testing.T) {
	s := reportSite(t)
	sum, err := Build(s, "hq", now)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ViewUpdates != 3 || len(sum.Bulletins) != 2 || sum.Bulletins[0].ID != "B1" || sum.Bulletins[1].ID != "B2" {
		t.Fatalf("summary %+v", sum)
	}
	if store.Counts(sum.Cells).Sum() != sum.Computers*sum.ViewUpdates {
		t.Fatalf("cells %v do not cover %d computers × %d updates", sum.Cells, sum.Computers, sum.ViewUpdates)
	}
}
