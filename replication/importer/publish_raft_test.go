package importer

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"patchtree/store"
)

// TestImportOnRaftInterleavesWrites imports through a real Raft site while another writer writes
// every few milliseconds and reads the catalog: writes land between the import's first publish
// entry (the version) and its switch, so they completed before the publish ended, and every read
// saw the empty old catalog or the whole new one.
func TestImportOnRaftInterleavesWrites(t *testing.T) {
	n, im := raftSite(t, Config{MaxBatchRows: 200}, "*")
	src := filepath.Join(t.TempDir(), "feed.json")
	genFeed(t, src, 4000, 1)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes []uint64
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			idx, err := n.PutSetting("probe", i)
			if err != nil {
				bad = append(bad, fmt.Sprintf("write %d: %v", i, err))
				return
			}
			writes = append(writes, idx)
			v, err := n.State().CatalogView(nil)
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			count := 0
			v.EachUpdate(func(*store.Update) bool { count++; return true })
			if count != v.Info.Updates || (v.Info.Version == 0) != (count == 0) {
				bad = append(bad, fmt.Sprintf("a read saw %d updates under %+v", count, v.Info))
			}
		}
	}()
	p := runImport(t, im, Request{Source: src})
	close(stop)
	wg.Wait()
	if p.State != store.ImportSucceeded {
		t.Fatalf("import: %s %s", p.State, p.Error)
	}
	for _, b := range bad {
		t.Error(b)
	}
	version, switched := p.CatalogVersion, p.ModifyIndex
	during := 0
	for _, idx := range writes {
		if idx > version && idx < switched {
			during++
		}
	}
	t.Logf("%d batches, version %d, switch %d; %d of %d writes between them", p.Batches, version, switched, during, len(writes))
	if switched-version < uint64(p.Batches)-1 {
		t.Fatalf("version %d and switch %d are closer than the %d publish entries", version, switched, p.Batches)
	}
	if during == 0 {
		t.Fatal("no write applied between the first publish entry and the switch")
	}
}
