// Package backup is the file format of a site backup (GET and PUT /v1/snapshot, `patchtree
// snapshot save|restore|inspect`): a header that says whose state it is, the store's snapshot
// stream compressed with zstd, and a SHA-256 trailer over everything before it.
//
// Layout:
//
//	magic    "PTBACKUP"
//	version  uint32, big-endian (FormatVersion)
//	length   uint32, big-endian: the header's size in bytes
//	header   JSON (Header)
//	payload  zstd-compressed store snapshot stream (store.Snapshot.WriteTo), the same bytes
//	         node's FSM restores from a Raft snapshot
//	trailer  "PTBKSUM1" + SHA-256 of every byte before the trailer
//
// The payload's size is not recorded: a reader holds the last TrailerSize bytes back. A file cut
// short therefore has no trailer or a wrong checksum, and nothing of it is used.
package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/store"
)

const (
	// Magic starts every backup file.
	Magic = "PTBACKUP"
	// FormatVersion is the version of the layout this package writes and reads.
	FormatVersion = 1
	// trailerMagic starts the trailer; the SHA-256 follows.
	trailerMagic = "PTBKSUM1"
	// TrailerSize is the size of the trailer in bytes.
	TrailerSize = len(trailerMagic) + sha256.Size
	// maxHeaderBytes bounds the header so that a corrupt length cannot exhaust memory.
	maxHeaderBytes = 1 << 20
	// maxWindow bounds the zstd decoder's window, as node's FSM does.
	maxWindow  = 64 << 20
	prefixSize = len(Magic) + 4 + 4
)

// Errors of a backup that cannot be used. All of them wrap ErrInvalid.
var (
	// ErrInvalid is the class of every error about a backup's bytes.
	ErrInvalid = errors.New("invalid snapshot file")
	// ErrNotBackup means the bytes do not start with Magic.
	ErrNotBackup = fmt.Errorf("%w: not a patchtree snapshot (no %q magic)", ErrInvalid, Magic)
	// ErrVersion means a format version this build does not read.
	ErrVersion = fmt.Errorf("%w: unsupported format version", ErrInvalid)
	// ErrTruncated means the file ends before its trailer.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrInvalid)
	// ErrChecksum means the trailer's SHA-256 does not match the bytes.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrInvalid)
	// ErrCorrupt means the checksum matched but the header or payload does not decode.
	ErrCorrupt = fmt.Errorf("%w: corrupt content", ErrInvalid)
)

// Header says whose state a backup holds and how much of it.
type Header struct {
	Format    int       `json:"format"`
	SiteID    string    `json:"site_id"`
	SiteName  string    `json:"site_name"`
	SiteRole  string    `json:"site_role"`
	Index     uint64    `json:"raft_index"`
	CreatedAt time.Time `json:"created_at"`
	// Tables is the row count of every table.
	Tables map[string]int `json:"tables"`
}

// Rows is the total row count of the header's tables.
func (h *Header) Rows() int {
	n := 0
	for _, c := range h.Tables {
		n += c
	}
	return n
}

// TableNames returns the header's table names sorted.
func (h *Header) TableNames() []string {
	names := make([]string, 0, len(h.Tables))
	for name := range h.Tables {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Info is a verified backup: its header, where the payload lies, its size and checksum.
type Info struct {
	Header        Header `json:"header"`
	PayloadOffset int64  `json:"-"`
	PayloadSize   int64  `json:"-"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256"`
}

// Write writes a backup of snap to w and returns its header and size. createdAt is recorded as
// the backup's time. An error after the first byte leaves w with an unusable (trailer-less)
// backup.
func Write(w io.Writer, snap *store.Snapshot, createdAt time.Time) (*Header, int64, error) {
	hdr := &Header{Format: FormatVersion, Index: snap.LatestIndex(), CreatedAt: createdAt.UTC()}
	site, err := snap.Site()
	if err != nil {
		return nil, 0, fmt.Errorf("read site identity: %w", err)
	}
	if site != nil {
		hdr.SiteID, hdr.SiteName, hdr.SiteRole = site.SiteID, site.Name, site.Role
	}
	if hdr.Tables, err = snap.TableCounts(); err != nil {
		return nil, 0, err
	}
	hw := &hashingWriter{w: w, h: sha256.New()}
	if err := writePrefix(hw, hdr); err != nil {
		return nil, hw.n, err
	}
	enc, err := zstd.NewWriter(hw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, hw.n, fmt.Errorf("zstd: %w", err)
	}
	if _, err := snap.WriteTo(enc); err != nil {
		enc.Close()
		return nil, hw.n, fmt.Errorf("write snapshot stream: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, hw.n, fmt.Errorf("finish zstd stream: %w", err)
	}
	trailer := append([]byte(trailerMagic), hw.h.Sum(nil)...)
	if _, err := w.Write(trailer); err != nil {
		return nil, hw.n, fmt.Errorf("write trailer: %w", err)
	}
	return hdr, hw.n + int64(len(trailer)), nil
}

// writePrefix writes the magic, the format version and the header.
func writePrefix(w io.Writer, hdr *Header) error {
	body, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	prefix := make([]byte, 0, prefixSize+len(body))
	prefix = append(prefix, Magic...)
	prefix = binary.BigEndian.AppendUint32(prefix, FormatVersion)
	prefix = binary.BigEndian.AppendUint32(prefix, uint32(len(body)))
	prefix = append(prefix, body...)
	if _, err := w.Write(prefix); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// Verify reads a whole backup from r and checks its format, header and checksum; it does not
// decode the payload (Decode does). The errors wrap ErrInvalid when the bytes are at fault.
func Verify(r io.Reader) (*Info, error) {
	h := sha256.New()
	tr := io.TeeReader(r, h)
	hdr, hdrSize, err := readHeader(tr)
	if err != nil {
		return nil, err
	}
	payload, trailer, err := holdBack(r, h, TrailerSize)
	if err != nil {
		return nil, err
	}
	if len(trailer) < TrailerSize || !bytes.HasPrefix(trailer, []byte(trailerMagic)) {
		return nil, fmt.Errorf("%w: the file ends without its checksum trailer (%d payload bytes read)", ErrTruncated, payload)
	}
	sum := h.Sum(nil)
	if !bytes.Equal(sum, trailer[len(trailerMagic):]) {
		return nil, fmt.Errorf("%w: content hashes to %x, trailer says %x", ErrChecksum, sum, trailer[len(trailerMagic):])
	}
	if payload == 0 {
		return nil, fmt.Errorf("%w: no snapshot stream between header and trailer", ErrCorrupt)
	}
	return &Info{
		Header: *hdr, PayloadOffset: hdrSize, PayloadSize: payload,
		Size: hdrSize + payload + int64(TrailerSize), SHA256: hex.EncodeToString(sum),
	}, nil
}

// readHeader reads the magic, version and header; it returns the header and the prefix size.
func readHeader(r io.Reader) (*Header, int64, error) {
	var prefix [prefixSize]byte
	if n, err := io.ReadFull(r, prefix[:]); err != nil {
		if !bytes.HasPrefix([]byte(Magic), prefix[:min(n, len(Magic))]) {
			return nil, 0, ErrNotBackup
		}
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than the header", ErrTruncated, n)
	}
	if string(prefix[:len(Magic)]) != Magic {
		return nil, 0, ErrNotBackup
	}
	if v := binary.BigEndian.Uint32(prefix[len(Magic):]); v != FormatVersion {
		return nil, 0, fmt.Errorf("%w %d: this build reads version %d", ErrVersion, v, FormatVersion)
	}
	size := binary.BigEndian.Uint32(prefix[len(Magic)+4:])
	if size == 0 || size > maxHeaderBytes {
		return nil, 0, fmt.Errorf("%w: header length %d outside 1..%d", ErrCorrupt, size, maxHeaderBytes)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, 0, fmt.Errorf("%w: header cut short", ErrTruncated)
	}
	var hdr Header
	if err := json.Unmarshal(body, &hdr); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if hdr.Format != FormatVersion {
		return nil, 0, fmt.Errorf("%w: header says format %d, prefix %d", ErrCorrupt, hdr.Format, FormatVersion)
	}
	return &hdr, int64(prefixSize) + int64(size), nil
}

// holdBack copies r into h except its last keep bytes, which it returns with the count hashed.
func holdBack(r io.Reader, h hash.Hash, keep int) (int64, []byte, error) {
	// buf[:held] are the bytes read but not hashed yet; each read appends after them, and all
	// but the last keep are hashed.
	buf := make([]byte, keep+256<<10)
	held := 0
	var hashed int64
	for {
		n, err := r.Read(buf[held:])
		held += n
		if over := held - keep; over > 0 {
			h.Write(buf[:over])
			hashed += int64(over)
			held = copy(buf, buf[over:held])
		}
		if errors.Is(err, io.EOF) {
			return hashed, buf[:held], nil
		}
		if err != nil {
			return hashed, nil, fmt.Errorf("read snapshot: %w", err)
		}
	}
}

// Payload returns the zstd-compressed snapshot stream of a verified backup.
func Payload(ra io.ReaderAt, info *Info) *io.SectionReader {
	return io.NewSectionReader(ra, info.PayloadOffset, info.PayloadSize)
}

// Decode decompresses and decodes the payload of a verified backup into a store, and checks its
// row counts against the header's.
func Decode(ra io.ReaderAt, info *Info) (*store.Store, error) {
	dec, err := zstd.NewReader(Payload(ra, info), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	defer dec.Close()
	s, err := store.Restore(dec)
	if err != nil {
		if errors.Is(err, store.ErrUnknownRecord) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	counts, err := s.Snapshot().TableCounts()
	if err != nil {
		return nil, err
	}
	for name, want := range info.Header.Tables {
		if got, known := counts[name]; known && got != want {
			return nil, fmt.Errorf("%w: table %s holds %d rows, header says %d", ErrCorrupt, name, got, want)
		}
	}
	return s, nil
}

// hashingWriter writes to w and hashes and counts what it wrote.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}
