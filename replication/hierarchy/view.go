package hierarchy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"patchtree/iocount"
	"patchtree/langalert"
	"patchtree/store"
)

// Run modes.
const (
	ModeComplete     = "complete"
	ModeDifferential = "differential"
)

// maxChunkBytes bounds one chunk of a run (encoded JSON), so that the child can stage each chunk
// as one Raft entry.
const maxChunkBytes = 512 << 10

// RunPlan is one run for one child, built from one consistent view of the catalog: its
// header (per child), the catalog section (shared by the children with the same filter and
// cursor, see runcache.go) and the chunks of the other sections.
type RunPlan struct {
	header  RunHeader
	catalog *catalogSection       // nil: the run carries no catalog chunks
	batches []*store.CatalogBatch // the chunks after the catalog's (policies, settings)
	view    *store.CatalogView
	from    int // first chunk to send (a resumed run)
}

// resumedFrom is the same run sent again from chunk from.
func (p *RunPlan) resumedFrom(from int) *RunPlan {
	r := *p
	r.from = from
	r.header.FirstChunk = from
	return &r
}

// chunks is how many chunks the run holds.
func (p *RunPlan) chunks() int {
	n := len(p.batches)
	if p.catalog != nil {
		n += p.catalog.chunks
	}
	return n
}

// filteredIDs is a bulletin's update ids (and their tags) that the ranges keep, in the
// bulletin's order.
func filteredIDs(v *store.CatalogView, b *store.Bulletin, ranges []string) (ids, tags []string) {
	eachKept(v, b, ranges, func(id, tag string) bool {
		ids, tags = append(ids, id), append(tags, tag)
		return true
	})
	return ids, tags
}

// keepsAny reports whether the ranges keep any of a bulletin's updates: filteredIDs without
// building the lists, stopping at the first one kept.
func keepsAny(v *store.CatalogView, b *store.Bulletin, ranges []string) bool {
	kept := false
	eachKept(v, b, ranges, func(string, string) bool {
		kept = true
		return false
	})
	return kept
}

// eachKept calls fn with each of a bulletin's update ids (and its tag) that the ranges keep, in
// the bulletin's order, until fn returns false.
func eachKept(v *store.CatalogView, b *store.Bulletin, ranges []string, fn func(id, tag string) bool) {
	for i, id := range b.UpdateIDs {
		var tag string
		if len(b.UpdateTags) == len(b.UpdateIDs) {
			tag = b.UpdateTags[i]
		} else if u := v.Update(id); u != nil {
			tag = u.Language
		} else {
			continue
		}
		if langalert.MatchAny(ranges, tag) && !fn(id, tag) {
			return
		}
	}
}

// planCatalog is the catalog part of a child's run: its header fields and its section, taken
// from the cache when another child with the same filter and cursor already had it (a nil
// cache builds it). Either way the header carries the digest of the whole filtered view.
func planCatalog(cache *runCache, v *store.CatalogView, child *store.Child, mode string) (*RunPlan, error) {
	ranges, old, cursor := child.Ranges, child.CursorRanges, child.Cursor
	complete := mode == ModeComplete
	p := &RunPlan{view: v, header: RunHeader{Mode: mode, From: cursor, To: v.Info.Version, Ranges: ranges}}
	if complete {
		p.header.From = 0
	}
	p.header.Digest = ViewDigest(v, ranges)
	key := sectionKey(complete, ranges, old, cursor, v.Info.Version, p.header.Digest)
	sec, err := cache.section(key, func() (*catalogSection, error) {
		return buildCatalogSection(sectionInput{view: v, ranges: ranges, old: old, cursor: cursor, complete: complete})
	})
	if err != nil {
		return nil, fmt.Errorf("build the catalog section (%s from %d to %d): %w", mode, cursor, v.Info.Version, err)
	}
	p.catalog = sec
	p.header.Records, p.header.Deletes, p.header.Chunks = sec.records, sec.deletes, sec.chunks
	return p, nil
}

// chunkBuilder splits the policies and settings sections of a run into chunks of at most
// maxChunkBytes (the catalog section has its lineBuilder, runcache_section.go).
type chunkBuilder struct {
	out  []*store.CatalogBatch
	cur  *store.CatalogBatch
	size int
}

func (c *chunkBuilder) room(n int) *store.CatalogBatch {
	if c.cur == nil || (c.size > 0 && c.size+n > maxChunkBytes) {
		c.cur = &store.CatalogBatch{Replica: true}
		c.out = append(c.out, c.cur)
		c.size = 0
	}
	c.size += n
	return c.cur
}

func jsonLen(v any) int {
	buf, _ := json.Marshal(v)
	return len(buf) + 1
}

// checkSample compares a child's sampled records with the view the run was built from.
func checkSample(v *store.CatalogView, ranges []string, sample []SampleRecord) []string {
	var bad []string
	for _, s := range sample {
		var want string
		switch s.Kind {
		case "update":
			if u := v.Update(s.ID); u != nil && langalert.MatchAny(ranges, u.Language) {
				h := UpdateHash(u)
				want = hex.EncodeToString(h[:])
			}
		case "bulletin":
			if b := v.Bulletin(s.ID); b != nil {
				if ids, _ := filteredIDs(v, b, ranges); len(ids) > 0 {
					h := BulletinHash(b, ids)
					want = hex.EncodeToString(h[:])
				}
			}
		}
		if want != s.Hash {
			bad = append(bad, s.Kind+" "+s.ID)
		}
	}
	return bad
}

// Header is the run's header.
func (p *RunPlan) Header() RunHeader { return p.header }

// WriteTo writes the run as the wire format: zstd-compressed JSON lines, the header first.
// The header, the catalog section and the other sections are consecutive zstd frames (a
// decoder reads them as one stream); the catalog section's frame is shared by every run that
// carries the same section.
func (p *RunPlan) WriteTo(w io.Writer) (int64, error) { return p.write(w, runEncoders) }

// WriteCompact writes the run as WriteTo does, but the frames written for this child (the
// header's and the sections not shared with other children) use the run dictionary: for a
// child that asked for it (RevisionCompact), which decodes with RunDecoderDict.
func (p *RunPlan) WriteCompact(w io.Writer) (int64, error) { return p.write(w, dictEncoders) }

// WriteFor writes the run for a child of RevisionCompact (WriteCompact) or of revision 1
// (WriteTo).
func (p *RunPlan) WriteFor(w io.Writer, compact bool) (int64, error) {
	if compact {
		return p.WriteCompact(w)
	}
	return p.WriteTo(w)
}

// write writes the run; the frames of this child come from pool, the shared one is cached.
func (p *RunPlan) write(w io.Writer, pool *sync.Pool) (int64, error) {
	cw := &iocount.Writer{W: w}
	f := newFrameFrom(pool, cw)
	if err := json.NewEncoder(f).Encode(&p.header); err != nil {
		f.abort()
		return cw.N, fmt.Errorf("write the run header: %w", err)
	}
	from := p.from
	if sec := p.catalog; sec != nil {
		if sec.lines != nil || from >= sec.chunks {
			// A small section goes in the header's frame (a large one has its own).
			if _, err := f.Write(sec.linesFrom(from)); err != nil {
				f.abort()
				return cw.N, fmt.Errorf("write the catalog chunks: %w", err)
			}
		} else {
			if err := f.Close(); err != nil {
				return cw.N, err
			}
			if err := sec.writeFrom(cw, from); err != nil {
				return cw.N, err
			}
			if max(0, from-sec.chunks) >= len(p.batches) {
				return cw.N, nil // no third frame for nothing
			}
			f = newFrameFrom(pool, cw)
		}
		from = max(0, from-sec.chunks)
	}
	je := json.NewEncoder(f)
	for _, b := range p.batches[min(from, len(p.batches)):] {
		if err := je.Encode(b); err != nil {
			f.abort()
			return cw.N, fmt.Errorf("write a chunk of the run: %w", err)
		}
	}
	return cw.N, f.Close()
}
