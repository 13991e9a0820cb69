package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// pubSite is a store written with increasing indexes, as the FSM would.
type pubSite struct {
	s   *Store
	idx uint64
}

func (p *pubSite) next() uint64 { p.idx++; return p.idx }

// versionBatches is a catalog version in batches of at most per rows: n updates (in three
// languages) with content tag v, one bulletin per ten updates, and the deletion of the ids in del.
func versionBatches(n, per int, v string, delB, delU []string) []*CatalogBatch {
	langs := []string{"de", "en-US", ""}
	var out []*CatalogBatch
	cur := &CatalogBatch{Tombstones: true}
	rows := 0
	add := func() {
		rows++
		if rows == per {
			out, cur, rows = append(out, cur), &CatalogBatch{Tombstones: true}, 0
		}
	}
	for i := 0; i < n; i += 10 {
		b := &Bulletin{BulletinContent: BulletinContent{ID: fmt.Sprintf("B%05d", i), Title: "b " + v}, Feed: "f", Hash: "hb-" + v}
		for j := i; j < i+10 && j < n; j++ {
			b.UpdateIDs = append(b.UpdateIDs, fmt.Sprintf("U%05d", j))
			b.UpdateTags = append(b.UpdateTags, langs[j%3])
		}
		cur.Bulletins = append(cur.Bulletins, b)
		add()
	}
	for i := 0; i < n; i++ {
		cur.Updates = append(cur.Updates, &Update{UpdateContent: UpdateContent{ID: fmt.Sprintf("U%05d", i), Title: "u " + v,
			Language: langs[i%3]}, Feed: "f", Hash: "hu-" + v})
		add()
	}
	for _, id := range delB {
		cur.DeleteBulletins = append(cur.DeleteBulletins, id)
		add()
	}
	for _, id := range delU {
		cur.DeleteUpdates = append(cur.DeleteUpdates, id)
		add()
	}
	if rows > 0 {
		out = append(out, cur)
	}
	return out
}

func (p *pubSite) stage(t *testing.T, run string, batches []*CatalogBatch) {
	t.Helper()
	for _, b := range batches {
		raw, err := EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.s.StageCatalog(p.next(), run, raw); err != nil {
			t.Fatal(err)
		}
	}
}

// commitVersion stages and commits a version in one entry, as a replica does.
func (p *pubSite) commitVersion(t *testing.T, run string, batches []*CatalogBatch) {
	t.Helper()
	p.stage(t, run, batches)
	if err := p.s.CommitCatalog(p.next(), &ImportRun{ID: run, State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
}

// publishAll publishes every staged batch of run, checking each entry's bound, and returns the
// number of entries.
func (p *pubSite) publishAll(t *testing.T, run string, maxRows int) int {
	t.Helper()
	for n := 1; ; n++ {
		prog, err := p.s.PublishCatalog(p.next(), run, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Rows == 0 || prog.Rows > maxRows {
			t.Fatalf("publish entry %d wrote %d rows, want 1..%d", n, prog.Rows, maxRows)
		}
		if prog.Done() {
			return n
		}
	}
}

func newPubSite(t *testing.T) *pubSite {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return &pubSite{s: s}
}

// catalogState is what a reader of the catalog sees: version, counts, rows, tag digests.
func catalogState(t *testing.T, s *Store) string {
	t.Helper()
	v, err := s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d %d %d|", v.Info.Version, v.Info.Bulletins, v.Info.Updates)
	v.EachBulletin(func(b *Bulletin) bool { fmt.Fprintf(&buf, "%s:%s:%d ", b.ID, b.Hash, b.ModifyIndex); return true })
	v.EachUpdate(func(u *Update) bool { fmt.Fprintf(&buf, "%s:%s:%d ", u.ID, u.Hash, u.ModifyIndex); return true })
	v.Tombstones(0, func(ts *Tombstone) bool { fmt.Fprintf(&buf, "%s:%d ", ts.Key, ts.Index); return true })
	v.TagDigests(func(tag string, d Digest) { fmt.Fprintf(&buf, "%s=%s ", tag, d) })
	return buf.String()
}

func TestPublishInBoundedEntriesMatchesOneCommit(t *testing.T) {
	const per = 64
	old := versionBatches(300, per, "v1", nil, nil)
	next := versionBatches(500, per, "v2", nil, nil)
	next = append(next, &CatalogBatch{Tombstones: true, DeleteBulletins: []string{"B00290"}, DeleteUpdates: []string{"U00299"}})

	pub, ref := newPubSite(t), newPubSite(t)
	pub.commitVersion(t, "r1", old)
	ref.commitVersion(t, "r1", old)
	before := catalogState(t, pub.s)

	pub.stage(t, "r2", next)
	begin := pub.idx + 1
	entries := pub.publishAll(t, "r2", per)
	if entries != len(next) {
		t.Fatalf("%d publish entries for %d batches", entries, len(next))
	}
	if got := catalogState(t, pub.s); got != before {
		t.Fatal("readers see a change before the switch")
	}
	if err := pub.s.SwitchCatalog(pub.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	info, _ := pub.s.Catalog(nil)
	if info.Version != begin || info.Bulletins != 49 || info.Updates != 499 {
		t.Fatalf("after the switch: %+v, want version %d (the first publish entry), 49 bulletins, 499 updates", info, begin)
	}
	// Every row the import wrote carries the version, as a commit's rows carry its index.
	v, _ := pub.s.CatalogView(nil)
	v.EachUpdate(func(u *Update) bool {
		if u.ModifyIndex != begin {
			t.Fatalf("update %s: modify index %d, want the version %d", u.ID, u.ModifyIndex, begin)
		}
		return true
	})
	v.Tombstones(0, func(ts *Tombstone) bool {
		if ts.Index != begin {
			t.Fatalf("tombstone %s: index %d, want the version %d", ts.Key, ts.Index, begin)
		}
		return true
	})
	if run, _ := pub.s.Publishing(); run != "" {
		t.Fatalf("still publishing %q after the switch", run)
	}
	if runs, _ := pub.s.StagedRuns(); len(runs) != 0 {
		t.Fatalf("staged runs after the switch: %v", runs)
	}

	// The same version committed in one entry has the same counts, rows and tag digests.
	ref.commitVersion(t, "r2", next)
	refInfo, _ := ref.s.Catalog(nil)
	if refInfo.Bulletins != info.Bulletins || refInfo.Updates != info.Updates {
		t.Fatalf("counts %+v, one commit %+v", info, refInfo)
	}
	digests := func(s *Store) string {
		v, _ := s.CatalogView(nil)
		var buf bytes.Buffer
		v.TagDigests(func(tag string, d Digest) { fmt.Fprintf(&buf, "%s=%s ", tag, d) })
		v.EachUpdate(func(u *Update) bool { buf.WriteString(u.ID + u.Hash); return true })
		v.Tombstones(0, func(ts *Tombstone) bool { buf.WriteString(ts.Key); return true })
		return buf.String()
	}
	if a, b := digests(pub.s), digests(ref.s); a != b {
		t.Fatalf("published in entries:\n%.300s\none commit:\n%.300s", a, b)
	}
}

func TestPublishReadersSeeWholeVersions(t *testing.T) {
	p := newPubSite(t)
	p.commitVersion(t, "r1", versionBatches(200, 50, "v1", nil, nil))
	p.stage(t, "r2", versionBatches(400, 50, "v2", nil, nil))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errc := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				v, err := p.s.CatalogView(nil)
				if err != nil {
					errc <- err
					return
				}
				hashes := map[string]int{}
				n := 0
				v.EachUpdate(func(u *Update) bool { hashes[u.Hash]++; n++; return true })
				if !(n == 200 && hashes["hu-v1"] == 200 && v.Info.Updates == 200) && !(n == 400 && hashes["hu-v2"] == 400 && v.Info.Updates == 400) {
					errc <- fmt.Errorf("a reader saw %d updates %v under version %+v", n, hashes, v.Info)
					return
				}
				if u, _ := p.s.Update(nil, "U00300"); u != nil && v.Info.Updates == 200 {
					// a later read may see the new version; never an earlier one
					if info, _ := p.s.Catalog(nil); info.Updates != 400 {
						errc <- fmt.Errorf("U00300 visible under %+v", info)
						return
					}
				}
				reads.Add(1)
			}
		}()
	}
	// readAfter waits until some reader has read wholly after this point: each of the four
	// may finish one read begun before it (or until every reader failed).
	readAfter := func() {
		for r := reads.Load(); reads.Load() <= r+4 && len(errc) < cap(errc); {
			time.Sleep(100 * time.Microsecond)
		}
	}
	for {
		prog, err := p.s.PublishCatalog(p.next(), "r2", nil)
		if err != nil {
			t.Fatal(err)
		}
		readAfter() // the readers read between entries
		if prog.Done() {
			break
		}
	}
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	readAfter()
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads happened during the publish")
	}
}

func TestPublishAbortLeavesTheVersion(t *testing.T) {
	p := newPubSite(t)
	p.commitVersion(t, "r1", versionBatches(300, 40, "v1", nil, nil))
	before := catalogState(t, p.s)
	tables := func() string {
		d, err := p.s.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.Tables[tableBulletins].Digest + d.Tables[tableUpdates].Digest + d.Tables[tableTombstones].Digest +
			d.Tables[tableTagDigests].Digest
	}
	beforeTables := tables()

	next := versionBatches(400, 40, "v2", nil, nil)
	next = append(next, &CatalogBatch{Tombstones: true, DeleteBulletins: []string{"B00000"}, DeleteUpdates: []string{"U00001", "U00002"}})
	p.stage(t, "r2", next)
	// Publish all but the first... batches in order, up to the deletions, then abort.
	for i := 0; i < len(next); i++ {
		if _, err := p.s.PublishCatalog(p.next(), "r2", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.s.AbortCatalog(p.next(), "r2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("abort of a run with published batches: %v, want ErrConflict", err)
	}
	for n := 0; ; n++ {
		prog, err := p.s.UnpublishCatalog(p.next(), "r2")
		if err != nil {
			t.Fatal(err)
		}
		if prog.Rows > 40 || (prog.Published > 0 && prog.Rows == 0) {
			t.Fatalf("unpublish entry %d: %+v", n, prog)
		}
		if got := catalogState(t, p.s); got != before {
			t.Fatal("readers see a change while unpublishing")
		}
		if prog.Published == 0 {
			break
		}
	}
	if run, _ := p.s.Publishing(); run != "" {
		t.Fatalf("still publishing %q", run)
	}
	if err := p.s.AbortCatalog(p.next(), "r2"); err != nil {
		t.Fatal(err)
	}
	if got := catalogState(t, p.s); got != before {
		t.Fatalf("after the abort:\n%.300s\nbefore:\n%.300s", got, before)
	}
	if got := tables(); got != beforeTables {
		t.Fatal("the catalog tables differ from before the publish")
	}
	// The next run publishes as if nothing had happened.
	p.stage(t, "r3", next)
	p.publishAll(t, "r3", 40)
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r3", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	if info, _ := p.s.Catalog(nil); info.Updates != 398 || info.Bulletins != 39 {
		t.Fatalf("after r3: %+v", info)
	}
}

func restoreCopy(t *testing.T, s *Store) *Store {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPublishSnapshotRestoreMidPublish(t *testing.T) {
	for _, end := range []string{"switch", "abort"} {
		t.Run(end, func(t *testing.T) {
			a := newPubSite(t)
			a.commitVersion(t, "r1", versionBatches(200, 30, "v1", nil, nil))
			before := catalogState(t, a.s)
			next := versionBatches(300, 30, "v2", []string{"B00190"}, []string{"U00199"})
			a.stage(t, "r2", next)
			for i := 0; i < 4; i++ {
				if _, err := a.s.PublishCatalog(a.next(), "r2", nil); err != nil {
					t.Fatal(err)
				}
			}
			counts, err := a.s.Snapshot().TableCounts()
			if err != nil {
				t.Fatal(err)
			}
			b := &pubSite{s: restoreCopy(t, a.s), idx: a.idx}
			da, _ := a.s.Digest()
			db, _ := b.s.Digest()
			if da.Digest != db.Digest {
				t.Fatal("the restored store's digest differs mid-publish")
			}
			if counts[tableUpdates] != 200 {
				t.Fatalf("a snapshot mid-publish counts %d updates, want the published 200", counts[tableUpdates])
			}
			if got := catalogState(t, b.s); got != before {
				t.Fatal("readers of the restored store see a change before the switch")
			}
			if run, _ := b.s.Publishing(); run != "r2" {
				t.Fatalf("restored store publishing %q", run)
			}
			// Both go on with the same entries and end equal.
			for _, site := range []*pubSite{a, b} {
				if end == "switch" {
					site.publishAll(t, "r2", 30)
					if err := site.s.SwitchCatalog(site.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for {
					prog, err := site.s.UnpublishCatalog(site.next(), "r2")
					if err != nil {
						t.Fatal(err)
					}
					if prog.Published == 0 {
						break
					}
				}
				if err := site.s.AbortCatalog(site.next(), "r2"); err != nil {
					t.Fatal(err)
				}
			}
			da, _ = a.s.Digest()
			db, _ = b.s.Digest()
			if da.Digest != db.Digest || catalogState(t, a.s) != catalogState(t, b.s) {
				t.Fatal("the restored store and the original differ after the " + end)
			}
			if end == "abort" && catalogState(t, b.s) != before {
				t.Fatal("the abort on the restored store changed the catalog")
			}
			if info, _ := b.s.Catalog(nil); end == "switch" && info.Updates != 299 {
				t.Fatalf("after the switch: %+v", info)
			}
		})
	}
}

func TestPublishOtherWritesInterleave(t *testing.T) {
	p := newPubSite(t)
	p.commitVersion(t, "r1", versionBatches(100, 20, "v1", nil, nil))
	p.stage(t, "r2", versionBatches(200, 20, "v2", nil, nil))
	if _, err := p.s.PublishCatalog(p.next(), "r2", nil); err != nil {
		t.Fatal(err)
	}
	// Ordinary writes apply between publish entries and are visible at once.
	if err := p.s.PutSetting(p.next(), "x", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if err := p.s.SetLanguages(p.next(), LanguagesSite, []string{"de"}); err != nil {
		t.Fatal(err)
	}
	if set, _ := p.s.Setting(nil, "x"); set == nil {
		t.Fatal("a write during the publish is not visible")
	}
	// Writes to catalog rows wait for the switch; another import cannot commit or publish.
	disabled := true
	if err := p.s.SetBulletinAdmin(p.next(), "B00000", nil, &disabled); !errors.Is(err, ErrConflict) {
		t.Fatalf("bulletin admin during a publish: %v, want ErrConflict", err)
	}
	if err := p.s.CollectTombstones(p.next(), p.idx); !errors.Is(err, ErrConflict) {
		t.Fatalf("tombstone collection during a publish: %v, want ErrConflict", err)
	}
	p.stage(t, "r3", versionBatches(10, 20, "v3", nil, nil))
	if _, err := p.s.PublishCatalog(p.next(), "r3", nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second publish: %v, want ErrConflict", err)
	}
	if err := p.s.CommitCatalog(p.next(), &ImportRun{ID: "r3"}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a commit during a publish: %v, want ErrConflict", err)
	}
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r2"}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a switch before every batch is published: %v, want ErrConflict", err)
	}
	p.publishAll(t, "r2", 20)
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.s.SetBulletinAdmin(p.next(), "B00000", nil, &disabled); err != nil {
		t.Fatalf("bulletin admin after the switch: %v", err)
	}
}

func TestPublishWatchersWakeAtTheSwitchOnly(t *testing.T) {
	p := newPubSite(t)
	p.commitVersion(t, "r1", versionBatches(50, 10, "v1", nil, nil))
	p.stage(t, "r2", versionBatches(80, 10, "v2", nil, nil))
	if _, err := p.s.PublishCatalog(p.next(), "r2", nil); err != nil {
		t.Fatal(err)
	}
	ws := memdb.NewWatchSet()
	if _, err := p.s.Catalog(ws); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.Bulletin(ws, "B00000"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.PublishCatalog(p.next(), "r2", nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Watch(time.After(20 * time.Millisecond)) {
		t.Fatal("a catalog watcher woke during the publish (it would spin on the frozen view)")
	}
	p.publishAll(t, "r2", 10)
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(time.Second)) {
		t.Fatal("a catalog watcher did not wake at the switch")
	}
}

func TestPublishWithTheBatchInTheEntry(t *testing.T) {
	p := newPubSite(t)
	p.commitVersion(t, "r1", versionBatches(100, 25, "v1", nil, nil))
	before := catalogState(t, p.s)
	next := versionBatches(150, 25, "v2", nil, []string{"U00099"})
	for i, b := range next {
		raw, err := EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := p.s.PublishCatalog(p.next(), "r2", raw)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Batches != i+1 || prog.Published != i+1 || prog.Rows != batchRows(b) || !prog.Done() {
			t.Fatalf("entry %d: %+v", i, prog)
		}
	}
	if catalogState(t, p.s) != before {
		t.Fatal("readers see a change before the switch")
	}
	// A batch staged on its own must be published before the next one comes with its entry.
	p.stage(t, "r2", versionBatches(10, 25, "v3", nil, nil))
	raw, _ := EncodeBatch(next[0])
	if _, err := p.s.PublishCatalog(p.next(), "r2", raw); !errors.Is(err, ErrConflict) {
		t.Fatalf("a batch past an unpublished one: %v, want ErrConflict", err)
	}
	p.publishAll(t, "r2", 25)
	if err := p.s.SwitchCatalog(p.next(), &ImportRun{ID: "r2", State: ImportSucceeded}, nil); err != nil {
		t.Fatal(err)
	}
	if info, _ := p.s.Catalog(nil); info.Updates != 149 || info.Bulletins != 15 {
		t.Fatalf("after the switch: %+v", info)
	}
}
