package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// The row codec of catalog batches. A batch's rows are written in a fixed binary layout instead
// of JSON: the state machine decodes every batch of an import once on every server, and at
// 500,000 updates decoding their JSON was two thirds of the publish entries' apply time.
//
// A decompressed batch starts with its codec: '{' is the JSON of the first releases (still in
// Raft logs and snapshots, and still decoded), batchCodecRows is this layout:
//
//	codec byte, flags uvarint (1 tombstones, 2 replica)
//	bulletins: count, then per row its fields in declaration order
//	updates:   count, then per row its fields in declaration order
//	delete_bulletins, delete_updates: string lists
//	rest: length-prefixed JSON of the policies and settings documents (replica batches), or 0
//
// A string is a uvarint length and its bytes; a list is a uvarint of its length plus one, 0
// being a nil list, so that rows come back exactly as they were written (a nil list and an empty
// one marshal differently); an integer is a varint or uvarint, a bool one byte.
const batchCodecRows byte = 1

// batchRest is what the row codec carries as JSON: replicated policies and settings documents,
// a few per batch.
type batchRest struct {
	Policies          []*Policy     `json:"policies,omitempty"`
	PolicyKeep        []string      `json:"policy_keep,omitempty"`
	DeletePolicies    []string      `json:"delete_policies,omitempty"`
	SettingDocs       []*SettingDoc `json:"setting_docs,omitempty"`
	DeleteSettingDocs []string      `json:"delete_setting_docs,omitempty"`
}

func (r *batchRest) empty() bool {
	return r.Policies == nil && r.PolicyKeep == nil && r.DeletePolicies == nil && r.SettingDocs == nil && r.DeleteSettingDocs == nil
}

// appendBatchRows appends b in the row codec to dst.
func appendBatchRows(dst []byte, b *CatalogBatch) ([]byte, error) {
	w := rowWriter{buf: dst}
	w.buf = append(w.buf, batchCodecRows)
	var flags uint64
	if b.Tombstones {
		flags |= 1
	}
	if b.Replica {
		flags |= 2
	}
	w.uint(flags)
	w.uint(uint64(len(b.Bulletins)))
	for _, r := range b.Bulletins {
		w.str(r.ID)
		w.str(r.Vendor)
		w.str(r.Title)
		w.str(r.Severity)
		w.str(r.Released)
		w.str(r.Revised)
		w.str(r.Description)
		w.strs(r.CVEs)
		w.strs(r.UpdateIDs)
		w.strs(r.UpdateTags)
		w.str(r.Feed)
		w.str(r.Hash)
		w.str(r.CustomSeverity)
		w.bool(r.Disabled)
		w.uint(r.CreateIndex)
		w.uint(r.ModifyIndex)
	}
	w.uint(uint64(len(b.Updates)))
	for _, r := range b.Updates {
		w.str(r.ID)
		w.str(r.Title)
		w.str(r.Language)
		w.str(r.FileName)
		w.str(r.URL)
		w.buf = binary.AppendVarint(w.buf, r.Size)
		w.str(r.SHA256)
		w.str(r.CommandLine)
		w.bool(r.RestartRequired)
		w.strs(r.Supersedes)
		w.str(r.Feed)
		w.str(r.Hash)
		w.bool(r.Superseded)
		w.uint(r.CreateIndex)
		w.uint(r.ModifyIndex)
	}
	w.strs(b.DeleteBulletins)
	w.strs(b.DeleteUpdates)
	rest := batchRest{b.Policies, b.PolicyKeep, b.DeletePolicies, b.SettingDocs, b.DeleteSettingDocs}
	if rest.empty() {
		w.uint(0)
		return w.buf, nil
	}
	js, err := json.Marshal(&rest)
	if err != nil {
		return nil, fmt.Errorf("encode the batch's policies and settings: %w", err)
	}
	w.uint(uint64(len(js)))
	w.buf = append(w.buf, js...)
	return w.buf, nil
}

type rowWriter struct{ buf []byte }

func (w *rowWriter) uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

func (w *rowWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *rowWriter) strs(l []string) {
	if l == nil {
		w.uint(0)
		return
	}
	w.uint(uint64(len(l)) + 1)
	for _, s := range l {
		w.str(s)
	}
}

func (w *rowWriter) bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// errBatchCodec is wrapped by every error about a batch in the row codec.
var errBatchCodec = errors.New("malformed batch")

// decodeBatchRows decodes a batch written by appendBatchRows.
func decodeBatchRows(buf []byte) (*CatalogBatch, error) {
	r := rowReader{buf: buf, common: map[string]string{}}
	if r.byte() != batchCodecRows {
		return nil, fmt.Errorf("%w: not in the row codec", errBatchCodec)
	}
	flags := r.uint()
	b := &CatalogBatch{Tombstones: flags&1 != 0, Replica: flags&2 != 0}
	if n := r.count(16); n > 0 { // a bulletin's 16 fields take a byte each at least, an update's 15
		b.Bulletins = make([]*Bulletin, n)
		rows := make([]Bulletin, n)
		for i := range rows {
			row := &rows[i]
			row.ID = r.str()
			row.Vendor = r.short()
			row.Title = r.str()
			row.Severity = r.short()
			row.Released = r.short()
			row.Revised = r.short()
			row.Description = r.str()
			row.CVEs = r.strs(r.str)
			row.UpdateIDs = r.strs(r.str)
			row.UpdateTags = r.strs(r.short)
			row.Feed = r.short()
			row.Hash = r.str()
			row.CustomSeverity = r.short()
			row.Disabled = r.bool()
			row.CreateIndex = r.uint()
			row.ModifyIndex = r.uint()
			b.Bulletins[i] = row
		}
	}
	if n := r.count(15); n > 0 {
		b.Updates = make([]*Update, n)
		rows := make([]Update, n)
		for i := range rows {
			row := &rows[i]
			row.ID = r.str()
			row.Title = r.str()
			row.Language = r.short()
			row.FileName = r.str()
			row.URL = r.str()
			row.Size = r.int()
			row.SHA256 = r.str()
			row.CommandLine = r.str()
			row.RestartRequired = r.bool()
			row.Supersedes = r.strs(r.str)
			row.Feed = r.short()
			row.Hash = r.str()
			row.Superseded = r.bool()
			row.CreateIndex = r.uint()
			row.ModifyIndex = r.uint()
			b.Updates[i] = row
		}
	}
	b.DeleteBulletins = r.strs(r.str)
	b.DeleteUpdates = r.strs(r.str)
	if js := r.bytes(); r.err == nil && len(js) > 0 {
		var rest batchRest
		if err := json.Unmarshal(js, &rest); err != nil {
			return nil, fmt.Errorf("%w: its policies and settings: %v", errBatchCodec, err)
		}
		b.Policies, b.PolicyKeep, b.DeletePolicies = rest.Policies, rest.PolicyKeep, rest.DeletePolicies
		b.SettingDocs, b.DeleteSettingDocs = rest.SettingDocs, rest.DeleteSettingDocs
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.buf) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after its end", errBatchCodec, len(r.buf))
	}
	return b, nil
}

// rowReader reads the row codec. The first error sticks: later reads return zero values, and
// decodeBatchRows reports it once. Every length is checked against the bytes left, so a
// corrupt batch costs no more memory than its own size.
type rowReader struct {
	buf []byte
	err error
	// common holds one copy of each short string that repeats across rows (feed, language,
	// vendor, severity, dates, update tags): a 500k catalog's bulletins list 2.7 million tags in
	// some 30 languages.
	common map[string]string
}

func (r *rowReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at %d bytes from its end", errBatchCodec, what, len(r.buf))
	}
	r.buf = nil
}

func (r *rowReader) byte() byte {
	if len(r.buf) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

func (r *rowReader) uint() uint64 { return readVarint(r, binary.Uvarint, "bad unsigned integer") }

func (r *rowReader) int() int64 { return readVarint(r, binary.Varint, "bad integer") }

// readVarint reads one integer with decode (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *rowReader, decode func([]byte) (T, int), what string) T {
	v, n := decode(r.buf)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *rowReader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("bad boolean")
	return false
}

// count reads a number of items, each at least min bytes, bounded by the bytes left.
func (r *rowReader) count(min int) int {
	n := r.uint()
	if n > uint64(len(r.buf)/min) {
		r.fail("count beyond its size")
		return 0
	}
	return int(n)
}

func (r *rowReader) bytes() []byte {
	n := r.uint()
	if n > uint64(len(r.buf)) {
		r.fail("length beyond its size")
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *rowReader) str() string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// short is str for the fields whose values repeat: one string per distinct value.
func (r *rowReader) short() string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	if len(b) > 64 {
		return string(b)
	}
	if s, ok := r.common[string(b)]; ok {
		return s
	}
	s := string(b)
	r.common[s] = s
	return s
}

// strs reads a list whose items are read by item.
func (r *rowReader) strs(item func() string) []string {
	n := r.uint()
	if n == 0 {
		return nil
	}
	n--
	if n > uint64(len(r.buf)) { // an item is at least its length byte
		r.fail("list beyond its size")
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = item()
	}
	return l
}
