package hierarchy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"patchtree/langalert"
	"patchtree/store"
)

// errBuildPanicked is what pulls waiting on a section get when its build panicked.
var errBuildPanicked = errors.New("building the catalog section of a run failed")

// catalogSection is the catalog part of a run, shared by every run with the same key: its
// chunks as JSON lines (each a store.CatalogBatch of at most ~maxChunkBytes) in one zstd frame.
type catalogSection struct {
	frame []byte
	// lines are the chunks' JSON lines uncompressed, kept when they are at most inlineRawBytes:
	// a small section (a differential run) is compressed with each run's header in one frame,
	// which saves the second frame's overhead and lets the header and the records share a
	// window, for a few microseconds of CPU per run.
	lines            []byte
	chunks           int
	records, deletes int
	raw              int64 // the JSON lines' bytes, uncompressed
	// visited counts the rows read to build the section (updates, bulletins, tombstones).
	visited int
}

// inlineRawBytes is the largest section kept uncompressed too (catalogSection.lines).
const inlineRawBytes = 64 << 10

// linesFrom is the section's uncompressed lines from chunk from on (a small section only).
func (s *catalogSection) linesFrom(from int) []byte {
	rest := s.lines
	for i := 0; i < from && len(rest) > 0; i++ {
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[j+1:]
		} else {
			rest = nil
		}
	}
	return rest
}

// writeFrom writes the section from chunk from on: the frame as it is, or (a resumed run) the
// chunks from there compressed again.
func (s *catalogSection) writeFrom(w io.Writer, from int) error {
	if from >= s.chunks {
		return nil
	}
	if from == 0 {
		if _, err := w.Write(s.frame); err != nil {
			return fmt.Errorf("write the catalog chunks: %w", err)
		}
		return nil
	}
	dec, err := zstd.NewReader(bytes.NewReader(s.frame), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxRunWindow))
	if err != nil {
		return fmt.Errorf("read the catalog chunks: %w", err)
	}
	defer dec.Close()
	br := bufio.NewReaderSize(dec, 64<<10)
	for i := 0; i < from; i++ {
		if err := skipLine(br); err != nil {
			return fmt.Errorf("skip catalog chunk %d of %d: %w", i+1, s.chunks, err)
		}
	}
	f := newFrame(w)
	if _, err := br.WriteTo(f); err != nil {
		f.abort()
		return fmt.Errorf("write the catalog chunks from %d: %w", from, err)
	}
	return f.Close()
}

func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err == nil {
			return nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// sectionInput is what a catalog section is built from: the view, the child's ranges now and
// at its cursor, the cursor, and whether the section is complete.
type sectionInput struct {
	view     *store.CatalogView
	ranges   []string
	old      []string
	cursor   uint64
	complete bool
	// scan builds a differential section by scanning the whole catalog even when the change
	// index would do (tests compare both).
	scan bool
}

// buildCatalogSection computes and compresses what a child must receive. A complete section is
// the child's whole filtered view (the child drops anything else). A differential one is what
// changed since the child's cursor: records modified since, records that entered the view
// because the child's ranges grew, and deletions (tombstones since the cursor, and records that
// left the view because its ranges shrank). With the ranges unchanged, a differential section
// reads only the rows above the cursor in the change index (store/catalog_changes.go).
func buildCatalogSection(in sectionInput) (*catalogSection, error) {
	var buf bytes.Buffer
	f := newFrame(&buf)
	lb := newLineBuilder(f)
	var err error
	if !in.complete && !in.scan && sameRanges(in.ranges, in.old) {
		err = changedSince(in, lb)
	} else {
		err = scanSection(in, lb)
	}
	if err == nil {
		err = lb.finish()
	}
	if err != nil {
		f.abort()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	sec := &catalogSection{chunks: lb.chunks, records: lb.records, deletes: lb.deletes, raw: lb.raw, visited: lb.visited}
	if sec.chunks > 0 {
		sec.frame = bytes.Clone(buf.Bytes()) // exactly sized: the cache counts these bytes
		if sec.raw <= inlineRawBytes {
			sec.lines = bytes.Clone(lb.small.Bytes())
		}
	}
	return sec, nil
}

// scanSection walks every update and bulletin of the view: a complete section, or a
// differential one whose ranges changed (records moved in or out of the view whatever their
// modify index).
func scanSection(in sectionInput, lb *lineBuilder) error {
	v, ranges, old, cursor, complete := in.view, in.ranges, in.old, in.cursor, in.complete
	isIn := func(tag string) bool { return langalert.MatchAny(ranges, tag) }
	wasIn := func(tag string) bool { return langalert.MatchAny(old, tag) }
	// Updates whose membership in this child's view changed without their bulletins being
	// rewritten: only a change of the child's own ranges does that (a language change rewrites
	// the bulletins, whose rows carry their updates' tags).
	moved := map[string]bool{}
	if err := v.EachUpdate(func(u *store.Update) bool {
		lb.visited++
		switch {
		case isIn(u.Language):
			if complete || u.ModifyIndex > cursor || !wasIn(u.Language) {
				lb.addUpdate(u)
			}
			if !complete && !wasIn(u.Language) {
				moved[u.ID] = true
			}
		case !complete && wasIn(u.Language):
			lb.deleteUpdate(u.ID) // the child's ranges no longer cover it
			moved[u.ID] = true
		}
		return lb.err == nil
	}); err != nil {
		return err
	}
	if err := v.EachBulletin(func(b *store.Bulletin) bool {
		lb.visited++
		changed := complete || b.ModifyIndex > cursor || anyOf(b.UpdateIDs, moved)
		lb.bulletin(v, b, ranges, changed, complete)
		return lb.err == nil
	}); err != nil {
		return err
	}
	if complete {
		return lb.err
	}
	var ts []*store.Tombstone
	if err := v.TombstonesSince(cursor, func(t *store.Tombstone) bool { ts = append(ts, t); return true }); err != nil {
		return err
	}
	lb.tombstones(v, ts, isIn, wasIn)
	return lb.err
}

// changedSince is a differential section with the ranges unchanged: only the rows above the
// cursor, taken in id order as a scan would (so the chunks are the same bytes).
func changedSince(in sectionInput, lb *lineBuilder) error {
	v, ranges, cursor := in.view, in.ranges, in.cursor
	isIn := func(tag string) bool { return langalert.MatchAny(ranges, tag) }
	var (
		us []*store.Update
		bs []*store.Bulletin
		ts []*store.Tombstone
	)
	if err := v.UpdatesSince(cursor, func(u *store.Update) bool { us = append(us, u); return true }); err != nil {
		return err
	}
	if err := v.BulletinsSince(cursor, func(b *store.Bulletin) bool { bs = append(bs, b); return true }); err != nil {
		return err
	}
	if err := v.TombstonesSince(cursor, func(t *store.Tombstone) bool { ts = append(ts, t); return true }); err != nil {
		return err
	}
	lb.visited += len(us) + len(bs) + len(ts)
	slices.SortFunc(us, func(a, b *store.Update) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(bs, func(a, b *store.Bulletin) int { return strings.Compare(a.ID, b.ID) })
	for _, u := range us {
		if isIn(u.Language) {
			lb.addUpdate(u)
		}
	}
	for _, b := range bs {
		lb.bulletin(v, b, ranges, true, false)
	}
	lb.tombstones(v, ts, isIn, isIn)
	return lb.err
}

// bulletin adds a bulletin of the view that the section must carry (changed) filtered to the
// ranges, or deletes it when none of its updates is in the view (differential only: a no-op on
// a child that never held it).
func (lb *lineBuilder) bulletin(v *store.CatalogView, b *store.Bulletin, ranges []string, changed, complete bool) {
	if !changed {
		return
	}
	ids, tags := filteredIDs(v, b, ranges)
	if len(ids) == 0 {
		if !complete {
			lb.deleteBulletin(b.ID)
		}
		return
	}
	fb := *b
	fb.UpdateIDs, fb.UpdateTags = ids, tags
	lb.addBulletin(&fb)
}

// tombstones turns the tombstones since the cursor (in key order, as a scan reads them) into
// deletions for this child.
func (lb *lineBuilder) tombstones(v *store.CatalogView, ts []*store.Tombstone, isIn, wasIn func(string) bool) {
	slices.SortFunc(ts, func(a, b *store.Tombstone) int { return strings.Compare(a.Key, b.Key) })
	for _, t := range ts {
		switch t.Kind {
		case "bulletin":
			if v.Bulletin(t.ID) == nil {
				lb.deleteBulletin(t.ID)
			}
		case "update":
			// It left the views of t.Language: a child that covered that language (now or at
			// its cursor) drops it unless it is still in this child's view.
			if isIn(t.Language) || wasIn(t.Language) {
				if u := v.Update(t.ID); u == nil || !isIn(u.Language) {
					lb.deleteUpdate(t.ID)
				}
			}
		}
	}
}

func anyOf(ids []string, set map[string]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

// lineBuilder writes a section's chunks as JSON lines, each a store.CatalogBatch (Replica set)
// of at most maxChunkBytes of records. Each record is encoded once: its encoding sizes the
// chunk and goes into the line as it is, so the line is the bytes json.Encoder would write for
// the batch.
type lineBuilder struct {
	w                io.Writer
	open             bool
	size             int
	bulletins        bytes.Buffer // the current chunk's encoded bulletins, comma-separated
	updates          bytes.Buffer
	delB, delU       bytes.Buffer
	chunks           int
	records, deletes int
	raw              int64
	visited          int
	deleted          map[string]bool
	scratch          bytes.Buffer
	enc              *json.Encoder
	line             bytes.Buffer
	small            bytes.Buffer // the lines while they fit in inlineRawBytes
	err              error
}

func newLineBuilder(w io.Writer) *lineBuilder {
	lb := &lineBuilder{w: w, deleted: map[string]bool{}}
	lb.enc = json.NewEncoder(&lb.scratch)
	return lb
}

// room makes room for n more bytes of records, starting a new chunk when the current one would
// pass maxChunkBytes (a record larger than that goes alone).
func (lb *lineBuilder) room(n int) {
	if !lb.open || (lb.size > 0 && lb.size+n > maxChunkBytes) {
		lb.flush()
		lb.open = true
		lb.size = 0
	}
	lb.size += n
}

// encode is v's JSON (without the newline) in lb.scratch.
func (lb *lineBuilder) encode(v any) []byte {
	lb.scratch.Reset()
	if err := lb.enc.Encode(v); err != nil && lb.err == nil {
		lb.err = fmt.Errorf("encode a catalog record: %w", err)
	}
	return bytes.TrimSuffix(lb.scratch.Bytes(), []byte{'\n'})
}

func appendItem(list *bytes.Buffer, item []byte) {
	if list.Len() > 0 {
		list.WriteByte(',')
	}
	list.Write(item)
}

func (lb *lineBuilder) addUpdate(u *store.Update) {
	item := lb.encode(u)
	lb.room(len(item) + 1)
	appendItem(&lb.updates, item)
	lb.records++
}

func (lb *lineBuilder) addBulletin(b *store.Bulletin) {
	item := lb.encode(b)
	lb.room(len(item) + 1)
	appendItem(&lb.bulletins, item)
	lb.records++
}

func (lb *lineBuilder) deleteUpdate(id string) {
	if lb.seen("u/" + id) {
		return
	}
	lb.room(len(id) + 4)
	appendItem(&lb.delU, lb.encode(id))
	lb.deletes++
}

func (lb *lineBuilder) deleteBulletin(id string) {
	if lb.seen("b/" + id) {
		return
	}
	lb.room(len(id) + 4)
	appendItem(&lb.delB, lb.encode(id))
	lb.deletes++
}

func (lb *lineBuilder) seen(key string) bool {
	if lb.deleted[key] {
		return true
	}
	lb.deleted[key] = true
	return false
}

// flush writes the current chunk as one line, in store.CatalogBatch's field order.
func (lb *lineBuilder) flush() {
	if !lb.open || lb.err != nil {
		return
	}
	l := &lb.line
	l.Reset()
	l.WriteByte('{')
	field := func(name string, list *bytes.Buffer) {
		if list.Len() == 0 {
			return
		}
		if l.Len() > 1 {
			l.WriteByte(',')
		}
		l.WriteString(`"` + name + `":[`)
		l.Write(list.Bytes())
		l.WriteByte(']')
		list.Reset()
	}
	field("bulletins", &lb.bulletins)
	field("updates", &lb.updates)
	field("delete_bulletins", &lb.delB)
	field("delete_updates", &lb.delU)
	if l.Len() > 1 {
		l.WriteByte(',')
	}
	l.WriteString(`"replica":true}` + "\n")
	if _, err := lb.w.Write(l.Bytes()); err != nil {
		lb.err = fmt.Errorf("compress a catalog chunk: %w", err)
		return
	}
	if lb.raw+int64(l.Len()) <= inlineRawBytes {
		lb.small.Write(l.Bytes())
	}
	lb.raw += int64(l.Len())
	lb.chunks++
	lb.open = false
}

// finish writes the last chunk.
func (lb *lineBuilder) finish() error {
	lb.flush()
	return lb.err
}
