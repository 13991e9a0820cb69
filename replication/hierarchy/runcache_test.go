package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/langalert"
	"patchtree/store"
)

// buildRun is a child's catalog run built without the cache (planCatalog with none).
func buildRun(v *store.CatalogView, child *store.Child, mode string) *RunPlan {
	p, err := planCatalog(nil, v, child, mode)
	if err != nil {
		panic(fmt.Sprintf("build a run: %v", err))
	}
	return p
}

// sectionLines is a section's chunks, decompressed, one JSON line each.
func sectionLines(t *testing.T, sec *catalogSection) [][]byte {
	t.Helper()
	if sec.chunks == 0 {
		if len(sec.frame) != 0 {
			t.Fatalf("a section of no chunk holds %d bytes", len(sec.frame))
		}
		return nil
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(sec.frame, nil)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != sec.raw {
		t.Fatalf("section says %d raw bytes, its frame holds %d", sec.raw, len(raw))
	}
	lines := bytes.SplitAfter(raw, []byte("\n"))
	if last := lines[len(lines)-1]; len(last) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != sec.chunks {
		t.Fatalf("section says %d chunks, its frame holds %d lines", sec.chunks, len(lines))
	}
	return lines
}

// refChunks is the run builder as it was before the change index and the line builder: every
// record marshalled to size the chunks, chunks encoded by json.Encoder. The tests compare the
// sections with it byte for byte.
type refChunks struct {
	out              []*store.CatalogBatch
	cur              *store.CatalogBatch
	size             int
	records, deletes int
	deleted          map[string]bool
}

func (c *refChunks) room(n int) *store.CatalogBatch {
	if c.cur == nil || (c.size > 0 && c.size+n > maxChunkBytes) {
		c.cur = &store.CatalogBatch{Replica: true}
		c.out = append(c.out, c.cur)
		c.size = 0
	}
	c.size += n
	return c.cur
}

func (c *refChunks) addUpdate(u *store.Update) {
	b := c.room(jsonLen(u))
	b.Updates = append(b.Updates, u)
	c.records++
}

func (c *refChunks) addBulletin(x *store.Bulletin) {
	b := c.room(jsonLen(x))
	b.Bulletins = append(b.Bulletins, x)
	c.records++
}

func (c *refChunks) deleteUpdate(id string) {
	if c.deleted["u/"+id] {
		return
	}
	c.deleted["u/"+id] = true
	b := c.room(len(id) + 4)
	b.DeleteUpdates = append(b.DeleteUpdates, id)
	c.deletes++
}

func (c *refChunks) deleteBulletin(id string) {
	if c.deleted["b/"+id] {
		return
	}
	c.deleted["b/"+id] = true
	b := c.room(len(id) + 4)
	b.DeleteBulletins = append(b.DeleteBulletins, id)
	c.deletes++
}

// refBuild is the former buildRun: a full scan of updates, bulletins and tombstones.
func refBuild(v *store.CatalogView, ranges, old []string, cursor uint64, complete bool) *refChunks {
	in := func(tag string) bool { return langalert.MatchAny(ranges, tag) }
	wasIn := func(tag string) bool { return langalert.MatchAny(old, tag) }
	cb := &refChunks{deleted: map[string]bool{}}
	moved := map[string]bool{}
	v.EachUpdate(func(u *store.Update) bool {
		switch {
		case in(u.Language):
			if complete || u.ModifyIndex > cursor || !wasIn(u.Language) {
				cb.addUpdate(u)
			}
			if !complete && !wasIn(u.Language) {
				moved[u.ID] = true
			}
		case !complete && wasIn(u.Language):
			cb.deleteUpdate(u.ID)
			moved[u.ID] = true
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		ids, tags := filteredIDs(v, b, ranges)
		changed := complete || b.ModifyIndex > cursor || anyOf(b.UpdateIDs, moved)
		if len(ids) == 0 {
			if !complete && changed {
				cb.deleteBulletin(b.ID)
			}
			return true
		}
		if changed {
			fb := *b
			fb.UpdateIDs, fb.UpdateTags = ids, tags
			cb.addBulletin(&fb)
		}
		return true
	})
	if !complete {
		v.Tombstones(cursor, func(t *store.Tombstone) bool {
			switch t.Kind {
			case "bulletin":
				if v.Bulletin(t.ID) == nil {
					cb.deleteBulletin(t.ID)
				}
			case "update":
				if in(t.Language) || wasIn(t.Language) {
					if u := v.Update(t.ID); u == nil || !in(u.Language) {
						cb.deleteUpdate(t.ID)
					}
				}
			}
			return true
		})
	}
	return cb
}

// sameAsRef fails unless sec holds exactly the reference's chunks, byte for byte.
func sameAsRef(t *testing.T, what string, sec *catalogSection, ref *refChunks) {
	t.Helper()
	lines := sectionLines(t, sec)
	if sec.records != ref.records || sec.deletes != ref.deletes || len(lines) != len(ref.out) {
		t.Fatalf("%s: %d records, %d deletes, %d chunks; the full scan has %d, %d, %d", what,
			sec.records, sec.deletes, len(lines), ref.records, ref.deletes, len(ref.out))
	}
	for i, b := range ref.out {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(lines[i], want.Bytes()) {
			t.Fatalf("%s: chunk %d differs from the full scan's:\n got %.300s\nwant %.300s", what, i, lines[i], want.Bytes())
		}
	}
}

// TestSectionsEqualFullScan drives random catalog changes and checks, for children of several
// filters at every cursor the catalog passed through, that each section (complete, and
// differential through the change index or the scan) is byte for byte what the former full
// scan built, and that a differential section with unchanged ranges read only the rows above
// its cursor. 4 seeds; 16 with PATCHTREE_SOAK=1.
func TestSectionsEqualFullScan(t *testing.T) {
	rangeSets := [][]string{{"de", "fr"}, {"en"}, {"*"}, {"ja", "dsb"}, {}}
	for seed := uint64(1); seed <= seeds(4, 16); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			parent := &parentModel{site: newMemSite(t), rng: rng, updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
			var versions []uint64
			for round := 0; round < 12; round++ {
				parent.mutate(t)
				v, err := parent.site.s.CatalogView(nil)
				if err != nil {
					t.Fatal(err)
				}
				versions = append(versions, v.Info.Version)
				cursor := versions[rng.IntN(len(versions))]
				for _, ranges := range rangeSets {
					old := rangeSets[rng.IntN(len(rangeSets))]
					if rng.IntN(2) == 0 {
						old = ranges
					}
					what := fmt.Sprintf("round %d, ranges %v (at the cursor %v), cursor %d of %d", round, ranges, old, cursor, v.Info.Version)
					for _, complete := range []bool{true, false} {
						in := sectionInput{view: v, ranges: ranges, old: old, cursor: cursor, complete: complete}
						sec, err := buildCatalogSection(in)
						if err != nil {
							t.Fatal(err)
						}
						sameAsRef(t, fmt.Sprintf("%s, complete %v", what, complete), sec, refBuild(v, ranges, old, cursor, complete))
						if complete {
							continue
						}
						in.scan = true
						scanned, err := buildCatalogSection(in)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(scanned.frame, sec.frame) {
							t.Fatalf("%s: the scan and the change index build different sections", what)
						}
						if sameRanges(ranges, old) {
							if want := rowsAbove(v, cursor); sec.visited != want {
								t.Fatalf("%s: visited %d rows, want the %d above the cursor", what, sec.visited, want)
							}
							checkChangedRecords(t, what, v, ranges, cursor, sec)
						}
					}
				}
			}
		})
	}
}

// rowsAbove counts, by full scan, the updates, bulletins and tombstones above cursor.
func rowsAbove(v *store.CatalogView, cursor uint64) int {
	n := 0
	v.EachUpdate(func(u *store.Update) bool {
		if u.ModifyIndex > cursor {
			n++
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		if b.ModifyIndex > cursor {
			n++
		}
		return true
	})
	v.Tombstones(cursor, func(*store.Tombstone) bool { n++; return true })
	return n
}

// checkChangedRecords checks that a differential section with unchanged ranges carries exactly
// the updates of the ranges and the bulletins holding any of them that were modified above
// the cursor.
func checkChangedRecords(t *testing.T, what string, v *store.CatalogView, ranges []string, cursor uint64, sec *catalogSection) {
	t.Helper()
	want := map[string]bool{}
	v.EachUpdate(func(u *store.Update) bool {
		if u.ModifyIndex > cursor && langalert.MatchAny(ranges, u.Language) {
			want["u/"+u.ID] = true
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		if ids, _ := filteredIDs(v, b, ranges); b.ModifyIndex > cursor && len(ids) > 0 {
			want["b/"+b.ID] = true
		}
		return true
	})
	got := map[string]bool{}
	for _, line := range sectionLines(t, sec) {
		var ch store.CatalogBatch
		if err := json.Unmarshal(line, &ch); err != nil {
			t.Fatal(err)
		}
		for _, u := range ch.Updates {
			got["u/"+u.ID] = true
		}
		for _, b := range ch.Bulletins {
			got["b/"+b.ID] = true
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: the section carries %d records, %d were modified above the cursor in the ranges", what, len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("%s: %s was modified above the cursor and is not in the section", what, k)
		}
	}
}

// TestNoopSectionReadsNoRow: a differential section from the current version reads no row
// (the change index holds nothing above it), and one after a small change reads only the
// changed rows, not the 6,000 updates of the catalog.
func TestNoopSectionReadsNoRow(t *testing.T) {
	p := bigParent(t)
	v, _ := p.site.s.CatalogView(nil)
	in := sectionInput{view: v, ranges: []string{"*"}, old: []string{"*"}, cursor: v.Info.Version}
	sec, err := buildCatalogSection(in)
	if err != nil {
		t.Fatal(err)
	}
	if sec.visited != 0 || sec.chunks != 0 || sec.records+sec.deletes != 0 || len(sec.frame) != 0 {
		t.Fatalf("no-op section: visited %d rows, %d chunks, %d records, %d deletes, %d bytes; want nothing",
			sec.visited, sec.chunks, sec.records, sec.deletes, len(sec.frame))
	}
	cursor := v.Info.Version
	u := *p.updates["u00042"]
	u.Title += " (revised)"
	p.updates[u.ID] = &u
	p.commit(t, &store.CatalogBatch{Updates: []*store.Update{&u}})
	v, _ = p.site.s.CatalogView(nil)
	in.view, in.cursor = v, cursor
	if sec, err = buildCatalogSection(in); err != nil {
		t.Fatal(err)
	}
	if sec.visited != 1 || sec.records != 1 || sec.deletes != 0 {
		t.Fatalf("after one update changed: visited %d rows, %d records, %d deletes; want 1, 1, 0", sec.visited, sec.records, sec.deletes)
	}
	in.scan = true
	scanned, err := buildCatalogSection(in)
	if err != nil {
		t.Fatal(err)
	}
	if scanned.visited < 6000 || !bytes.Equal(scanned.frame, sec.frame) {
		t.Fatalf("the full scan visited %d rows and built the same section: %v", scanned.visited, bytes.Equal(scanned.frame, sec.frame))
	}
}

// fakeSection is a section whose frame is n bytes, for the cache's accounting.
func fakeSection(n int) *catalogSection {
	return &catalogSection{frame: make([]byte, n), chunks: 1}
}

// TestRunCacheHitMissEviction: a second request is a hit; entries go least recently used
// first once the bound is passed; a section larger than the bound is built and not kept.
func TestRunCacheHitMissEviction(t *testing.T) {
	const each = 1000
	keyLen := len("k0")
	c := newRunCache(3 * (each + int64(keyLen) + entryOverhead))
	builds := map[string]int{}
	get := func(key string, n int) *catalogSection {
		t.Helper()
		sec, err := c.section(key, func() (*catalogSection, error) { builds[key]++; return fakeSection(n), nil })
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	a := get("k0", each)
	if get("k0", each) != a {
		t.Fatal("a hit returned another section")
	}
	get("k1", each)
	get("k2", each)
	get("k0", each) // k0 is now the most recently used: k1 is the oldest
	get("k3", each) // evicts k1
	st := c.snapshot()
	if st.Hits != 2 || st.Builds != 4 || st.Evictions != 1 || st.Entries != 3 || st.Bytes > c.max {
		t.Fatalf("stats %+v; want 2 hits, 4 builds, 1 eviction, 3 entries within %d bytes", st, c.max)
	}
	get("k0", each)
	get("k2", each)
	get("k1", each) // evicted: built again
	if builds["k1"] != 2 || builds["k0"] != 1 || builds["k2"] != 1 {
		t.Fatalf("builds %v; want k1 twice (evicted), k0 and k2 once", builds)
	}
	big := get("big", int(c.max)) // larger than the whole bound
	if big == nil || c.snapshot().Uncached != 1 {
		t.Fatalf("stats %+v; want the oversized section built and not kept", c.snapshot())
	}
	if get("big", int(c.max)); builds["big"] != 2 {
		t.Fatalf("an oversized section was kept: built %d times", builds["big"])
	}
	if _, err := c.section("bad", func() (*catalogSection, error) { return nil, io.ErrUnexpectedEOF }); err != io.ErrUnexpectedEOF {
		t.Fatalf("a failed build answered %v", err)
	}
	if _, ok := c.entries["bad"]; ok {
		t.Fatal("a failed build was kept")
	}
}

// TestConcurrentPullsBuildOnce: identical requests that arrive while the section is being built
// wait for that build instead of starting their own.
func TestConcurrentPullsBuildOnce(t *testing.T) {
	p := bigParent(t)
	v, _ := p.site.s.CatalogView(nil)
	c := newRunCache(DefaultRunCacheBytes)
	const pulls = 12
	plans := make([]*RunPlan, pulls)
	errs := make([]error, pulls)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range pulls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			plans[i], errs[i] = planCatalog(c, v, &store.Child{Name: fmt.Sprint("c", i), Ranges: []string{"de", "fr"}}, ModeComplete)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if plans[i].catalog != plans[0].catalog {
			t.Fatalf("pull %d got another section than pull 0", i)
		}
	}
	st := c.snapshot()
	if st.Builds != 1 || st.Hits+st.Shared != pulls-1 {
		t.Fatalf("stats %+v: want 1 build and %d hits or shared builds", st, pulls-1)
	}

	// A build in progress is waited for: hold one open and send identical requests meanwhile.
	release := make(chan struct{})
	built := 0
	results := make(chan *catalogSection, pulls)
	for range pulls {
		go func() {
			sec, _ := c.section("held", func() (*catalogSection, error) {
				built++
				<-release
				return fakeSection(10), nil
			})
			results <- sec
		}()
	}
	waitFor(t, 10*time.Second, "every pull to wait on the one build", func() bool {
		s := c.snapshot()
		return s.Builds == 2 && s.Shared == st.Shared+pulls-1
	})
	close(release)
	first := <-results
	for range pulls - 1 {
		if sec := <-results; sec != first {
			t.Fatal("a waiting pull got another section")
		}
	}
	if built != 1 {
		t.Fatalf("the held section was built %d times", built)
	}
}

// TestCachedRunIsFreshRun: a run whose section comes from the cache is byte for byte the run
// built fresh, whole and resumed from a chunk, and other filters or cursors do not share it.
func TestCachedRunIsFreshRun(t *testing.T) {
	p := bigParent(t)
	v, _ := p.site.s.CatalogView(nil)
	c := newRunCache(DefaultRunCacheBytes)
	write := func(plan *RunPlan) []byte {
		var buf bytes.Buffer
		if _, err := plan.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	child := &store.Child{Name: "a", Ranges: []string{"*"}}
	first, err := planCatalog(c, v, child, ModeComplete)
	if err != nil {
		t.Fatal(err)
	}
	if first.catalog.chunks < 3 {
		t.Fatalf("want a run of several chunks, got %d", first.catalog.chunks)
	}
	again, err := planCatalog(c, v, &store.Child{Name: "b", Ranges: []string{"*"}}, ModeComplete)
	if err != nil {
		t.Fatal(err)
	}
	if again.catalog != first.catalog || c.snapshot().Hits != 1 {
		t.Fatalf("the second child's section was not the cached one (stats %+v)", c.snapshot())
	}
	fresh := buildRun(v, child, ModeComplete)
	if !bytes.Equal(write(again), write(fresh)) {
		t.Fatal("a cached run differs from the same run built fresh")
	}
	for _, from := range []int{1, first.catalog.chunks - 1, first.catalog.chunks} {
		if !bytes.Equal(write(again.resumedFrom(from)), write(fresh.resumedFrom(from))) {
			t.Fatalf("resumed from chunk %d: the cached run differs from the fresh one", from)
		}
	}
	ref := refBuild(v, child.Ranges, nil, 0, true)
	sameAsRef(t, "cached complete section", again.catalog, ref)
	other, err := planCatalog(c, v, &store.Child{Name: "c", Ranges: []string{"de"}}, ModeComplete)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := planCatalog(c, v, &store.Child{Name: "d", Ranges: []string{"*"}, CursorRanges: []string{"*"}, Cursor: v.Info.Version}, ModeDifferential)
	if err != nil {
		t.Fatal(err)
	}
	if other.catalog == first.catalog || diff.catalog == first.catalog || diff.catalog.chunks != 0 {
		t.Fatal("runs of another filter or mode shared a section")
	}
	if k1, k2 := sectionKey(true, []string{"de", "fr"}, nil, 0, 5, "d"), sectionKey(true, []string{"fr", "de"}, []string{"x"}, 3, 5, "d"); k1 != k2 {
		t.Fatalf("complete keys depend on the ranges' order or the cursor: %q, %q", k1, k2)
	}
	if slices.Contains([]string{
		sectionKey(false, []string{"de"}, []string{"de"}, 4, 5, "d"),
		sectionKey(false, []string{"de"}, []string{"fr"}, 3, 5, "d"),
		sectionKey(true, []string{"de"}, []string{"de"}, 3, 5, "d"),
		sectionKey(false, []string{"de"}, []string{"de"}, 3, 6, "d"),
		sectionKey(false, []string{"de"}, []string{"de"}, 3, 5, "e"),
		sectionKey(false, []string{"de", ""}, []string{"de"}, 3, 5, "d"),
	}, sectionKey(false, []string{"de"}, []string{"de"}, 3, 5, "d")) {
		t.Fatal("two different sections share a key")
	}
}

// runLines decodes a run body (its frames as one stream) into its JSON lines.
func runLines(t *testing.T, body []byte) [][]byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("decode the run: %v", err)
	}
	lines := bytes.SplitAfter(raw, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// TestRunWireFormat: whether the catalog section is small (in the header's frame) or large
// (its own shared frame), a run, whole or resumed, reads as the header, the catalog chunks
// from the first one sent, then the other sections' chunks.
func TestRunWireFormat(t *testing.T) {
	p := bigParent(t)
	cursor := func() uint64 { v, _ := p.site.s.CatalogView(nil); return v.Info.Version }()
	for i := 0; i < 40; i++ { // a differential section of two small chunks
		u := *p.updates[fmt.Sprintf("u%05d", i)]
		u.Title = fmt.Sprintf("%s %0*d", u.Title, 200, i)
		p.updates[u.ID] = &u
		p.commit(t, &store.CatalogBatch{Updates: []*store.Update{&u}})
	}
	v, _ := p.site.s.CatalogView(nil)
	settings := &store.CatalogBatch{Replica: true, SettingDocs: []*store.SettingDoc{{Name: "s1", Body: json.RawMessage(`{"a":1}`)}}}
	for _, tc := range []struct {
		name  string
		child *store.Child
		mode  string
		small bool
	}{
		{"large complete", &store.Child{Name: "a", Ranges: []string{"*"}}, ModeComplete, false},
		{"small differential", &store.Child{Name: "b", Ranges: []string{"*"}, CursorRanges: []string{"*"}, Cursor: cursor}, ModeDifferential, true},
		{"empty differential", &store.Child{Name: "c", Ranges: []string{"*"}, CursorRanges: []string{"*"}, Cursor: v.Info.Version}, ModeDifferential, true},
	} {
		plan := buildRun(v, tc.child, tc.mode)
		if (plan.catalog.lines != nil || plan.catalog.chunks == 0) != tc.small {
			t.Fatalf("%s: %d raw bytes kept inline: %v", tc.name, plan.catalog.raw, plan.catalog.lines != nil)
		}
		plan.batches = []*store.CatalogBatch{settings}
		plan.header.Chunks = plan.chunks()
		sec := sectionLines(t, plan.catalog)
		var other bytes.Buffer
		json.NewEncoder(&other).Encode(settings)
		for from := 0; from <= plan.header.Chunks; from++ {
			var body bytes.Buffer
			if _, err := plan.resumedFrom(from).WriteTo(&body); err != nil {
				t.Fatal(err)
			}
			got := runLines(t, body.Bytes())
			want := append(slices.Clone(sec[min(from, len(sec)):]), other.Bytes())
			if from == len(sec)+1 {
				want = nil
			}
			var h RunHeader
			if err := json.Unmarshal(got[0], &h); err != nil || h.FirstChunk != from {
				t.Fatalf("%s from %d: header %s: %v", tc.name, from, got[0], err)
			}
			if len(got)-1 != len(want) {
				t.Fatalf("%s from %d: %d chunk lines, want %d", tc.name, from, len(got)-1, len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i+1], want[i]) {
					t.Fatalf("%s from %d: line %d differs:\n%.200q\n%.200q", tc.name, from, i+1, got[i+1], want[i])
				}
			}
		}
	}
}

// TestPullsShareSections: through the parent's pull path, children with the same filter share
// one built section per version and mode (a complete round builds once per filter), and a
// replicate-now to children already at the current version sends no-op runs that read no
// catalog row.
func TestPullsShareSections(t *testing.T) {
	p := bigParent(t)
	site := p.site
	be := fakeParentBackend{site}
	par := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	par.SetBackend(be)
	par.leading.Store(true)
	filters := [][]string{{"de", "fr"}, {"*"}, {"fr", "de"}} // the third is the first, reordered
	const children = 9
	for i := range children {
		name := fmt.Sprint("c", i)
		if err := site.s.AddChild(site.next(), &store.Child{Name: name, JoinTokenHash: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := be.UpdateChild(name, store.ChildUpdate{Ranges: &filters[i%len(filters)]}); err != nil {
			t.Fatal(err)
		}
	}
	pull := func(name string, cursor uint64, ranges []string) *RunPlan {
		t.Helper()
		plan, err := par.Pull(context.Background(), PullRequest{Child: name, Cursor: cursor, CursorRanges: ranges, Wait: time.Millisecond})
		if err != nil || plan == nil {
			t.Fatalf("pull of %s: plan %v, err %v", name, plan != nil, err)
		}
		return plan
	}
	version := func() uint64 { v, _ := site.s.Catalog(nil); return v.Version }()
	plans := map[string]*RunPlan{}
	for i := range children { // first runs: complete
		name := fmt.Sprint("c", i)
		plans[name] = pull(name, 0, nil)
		if h := plans[name].header; h.Mode != ModeComplete || h.RunID == "" {
			t.Fatalf("%s: first run %s %q", name, h.Mode, h.RunID)
		}
	}
	if st := par.cache.snapshot(); st.Builds != 2 || st.Hits != children-2 {
		t.Fatalf("first runs of %d children with 2 distinct filters: %+v", children, st)
	}
	if plans["c0"].catalog != plans["c2"].catalog || plans["c0"].header.RunID == plans["c3"].header.RunID {
		t.Fatal("children of one filter do not share the section, or share a run id")
	}
	if _, err := par.ReplicateNow(NowRequest{Scope: ScopeCatalog, Mode: ModeDifferential}); err != nil {
		t.Fatal(err)
	}
	for i := range children {
		name := fmt.Sprint("c", i)
		r := filters[i%len(filters)]
		if _, err := be.UpdateChild(name, store.ChildUpdate{Cursor: &version, CursorRanges: &r}); err != nil {
			t.Fatal(err)
		}
		plan := pull(name, version, r)
		if h := plan.header; h.Mode != ModeDifferential || h.Records+h.Deletes != 0 || plan.catalog.visited != 0 {
			t.Fatalf("%s: no-op run %s with %d records, %d deletes, %d rows read", name, h.Mode, h.Records, h.Deletes, plan.catalog.visited)
		}
	}
}
