package hierarchy

import (
	"encoding/hex"
	"encoding/json"
	"io"

	"github.com/klauspost/compress/zstd"

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

// RunPlan is one run for one child, built from one consistent view of the catalog.
type RunPlan struct {
	header  RunHeader
	batches []*store.CatalogBatch
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

// filteredIDs is a bulletin's update ids (and their tags) that the ranges keep, in the
// bulletin's order.
func filteredIDs(v *store.CatalogView, b *store.Bulletin, ranges []string) (ids, tags []string) {
	for i, id := range b.UpdateIDs {
		var tag string
		if len(b.UpdateTags) == len(b.UpdateIDs) {
			tag = b.UpdateTags[i]
		} else if u := v.Update(id); u != nil {
			tag = u.Language
		} else {
			continue
		}
		if langalert.MatchAny(ranges, tag) {
			ids, tags = append(ids, id), append(tags, tag)
		}
	}
	return ids, tags
}

// buildRun computes what a child must receive. A complete run is the child's whole filtered view
// (the child drops anything else). A differential run is what changed since the child's cursor:
// records modified since, records that entered the view because the child's ranges grew, and
// deletions (tombstones since the cursor, and records that left the view because its ranges
// shrank). Either way the header carries the digest of the whole filtered view.
func buildRun(v *store.CatalogView, child *store.Child, mode string) *RunPlan {
	ranges, old, cursor := child.Ranges, child.CursorRanges, child.Cursor
	complete := mode == ModeComplete
	in := func(tag string) bool { return langalert.MatchAny(ranges, tag) }
	wasIn := func(tag string) bool { return langalert.MatchAny(old, tag) }

	p := &RunPlan{view: v, header: RunHeader{Mode: mode, From: cursor, To: v.Info.Version, Ranges: ranges}}
	if complete {
		p.header.From = 0
	}
	cb := &chunkBuilder{}
	// Updates whose membership in this child's view changed without their bulletins being
	// rewritten: only a change of the child's own ranges does that (a language change rewrites
	// the bulletins, whose rows carry their updates' tags).
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
			cb.deleteUpdate(u.ID) // the child's ranges no longer cover it
			moved[u.ID] = true
		}
		return true
	})
	v.EachBulletin(func(b *store.Bulletin) bool {
		ids, tags := filteredIDs(v, b, ranges)
		changed := complete || b.ModifyIndex > cursor || anyOf(b.UpdateIDs, moved)
		if len(ids) == 0 {
			if !complete && changed {
				cb.deleteBulletin(b.ID) // it left this child's view (a no-op if the child never had it)
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
				// It left the views of t.Language: a child that covered that language (now or
				// at its cursor) drops it unless it is still in this child's view.
				if in(t.Language) || wasIn(t.Language) {
					if u := v.Update(t.ID); u == nil || !in(u.Language) {
						cb.deleteUpdate(t.ID)
					}
				}
			}
			return true
		})
	}
	p.batches = cb.out
	p.header.Digest = ViewDigest(v, ranges)
	p.header.Records, p.header.Deletes, p.header.Chunks = cb.records, cb.deletes, len(p.batches)
	return p
}

func anyOf(ids []string, set map[string]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

// chunkBuilder splits a run into chunks of at most maxChunkBytes.
type chunkBuilder struct {
	out              []*store.CatalogBatch
	cur              *store.CatalogBatch
	size             int
	records, deletes int
	deleted          map[string]bool
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

func (c *chunkBuilder) addUpdate(u *store.Update) {
	b := c.room(jsonLen(u))
	b.Updates = append(b.Updates, u)
	c.records++
}

func (c *chunkBuilder) addBulletin(x *store.Bulletin) {
	b := c.room(jsonLen(x))
	b.Bulletins = append(b.Bulletins, x)
	c.records++
}

func (c *chunkBuilder) deleteUpdate(id string) {
	if c.seen("u/" + id) {
		return
	}
	b := c.room(len(id) + 4)
	b.DeleteUpdates = append(b.DeleteUpdates, id)
	c.deletes++
}

func (c *chunkBuilder) deleteBulletin(id string) {
	if c.seen("b/" + id) {
		return
	}
	b := c.room(len(id) + 4)
	b.DeleteBulletins = append(b.DeleteBulletins, id)
	c.deletes++
}

func (c *chunkBuilder) seen(key string) bool {
	if c.deleted == nil {
		c.deleted = map[string]bool{}
	}
	if c.deleted[key] {
		return true
	}
	c.deleted[key] = true
	return false
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
func (p *RunPlan) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	enc, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	je := json.NewEncoder(enc)
	if err := je.Encode(&p.header); err != nil {
		enc.Close()
		return cw.n, err
	}
	for _, b := range p.batches[p.from:] {
		if err := je.Encode(b); err != nil {
			enc.Close()
			return cw.n, err
		}
	}
	err = enc.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
