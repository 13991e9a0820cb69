package compliance

import (
	"testing"
	"time"
)

// FuzzDecodeSummary checks the decoder of the summary a parent receives from a child: it never
// panics, refuses anything but a JSON object, and what it accepts survives the parent's
// store round trip (Encode, DecodeStored) with the same digest. DecodeStored never panics on
// arbitrary bytes either. The seed corpus is in testdata/fuzz/FuzzDecodeSummary.
func FuzzDecodeSummary(f *testing.F) {
	good := &Summary{Site: "berlin", AsOf: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Computers: 3, Compliant: 1,
		Cells: [4]int64{4, 1, 2, 5}, ViewUpdates: 4,
		Bulletins:  []BulletinCounts{{ID: "MFSA-2019-01", C: [4]int64{1, 1, 0, 1}}},
		Severities: []SeverityCounts{{Severity: "critical", C: [4]int64{1, 1, 0, 1}}}}
	if raw, err := good.Encode(); err == nil {
		f.Add(raw)
	}
	for _, s := range []string{`{}`, `null`, `[]`, `{"bulletins":null}`, `{"cells":[1,2,3,4,5]}`, `{"computers":-5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := DecodeStored(data); err == nil && s == nil {
			t.Fatal("DecodeStored: nil summary without error")
		}
		s, err := Decode(data)
		if err != nil {
			return
		}
		if len(data) == 0 || firstByte(data) != '{' {
			t.Fatalf("Decode accepted a body that is not an object: %q", data)
		}
		stored, err := s.Encode()
		if err != nil {
			return // a time out of JSON's range, say: the parent refuses to store it
		}
		back, err := DecodeStored(stored)
		if err != nil {
			t.Fatalf("DecodeStored of what Encode made: %v", err)
		}
		if back.Digest() != s.Digest() {
			t.Fatalf("digest changed in the store round trip")
		}
	})
}

// firstByte is data's first byte after JSON white space (0 if none).
func firstByte(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}
