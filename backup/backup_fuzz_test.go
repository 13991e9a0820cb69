package backup

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to the reader: it never panics, every refusal is ErrInvalid,
// and what it accepts decodes or is refused as corrupt, with the header's row counts.
func FuzzVerify(f *testing.F) {
	raw := testBackup(f, testStore(f))
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := Verify(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v is not ErrInvalid", err)
			}
			return
		}
		if info.Size != int64(len(in)) {
			t.Fatalf("verified %d bytes of %d", info.Size, len(in))
		}
		s, err := Decode(bytes.NewReader(in), info)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode refusal %v is not ErrInvalid", err)
			}
			return
		}
		counts, err := s.Snapshot().TableCounts()
		if err != nil {
			t.Fatal(err)
		}
		for name, n := range info.Header.Tables {
			if c, ok := counts[name]; ok && c != n {
				t.Fatalf("table %s: decoded %d rows, header %d", name, c, n)
			}
		}
	})
}
