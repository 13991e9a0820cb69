package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"patchtree/store"
)

// testStore is a small initialised site with two tokens.
func testStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	admin := store.Token{ID: "admin", SecretHash: store.HashSecret("s-admin"), Role: store.RoleAdmin}
	if err := s.InitSite(7, &store.SiteInfo{SiteID: "id1", Name: "hq", Role: "parent"}, &admin, []string{"en", "de"}, nil); err != nil {
		t.Fatal(err)
	}
	agent := store.Token{ID: "agent", SecretHash: store.HashSecret("s-agent"), Role: store.RoleAgent}
	if err := s.CreateToken(9, &agent); err != nil {
		t.Fatal(err)
	}
	return s
}

func testBackup(t testing.TB, s *store.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	hdr, n, err := Write(&buf, s.Snapshot(), time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Write reported %d bytes, wrote %d", n, buf.Len())
	}
	if hdr.SiteName != "hq" || hdr.Index != 9 || hdr.Tables["tokens"] != 2 {
		t.Fatalf("header %+v: want site hq, index 9, 2 tokens", hdr)
	}
	return buf.Bytes()
}

// TestRoundTrip: a backup verifies, decodes to a store with the same digest, and says whose it is.
func TestRoundTrip(t *testing.T) {
	s := testStore(t)
	raw := testBackup(t, s)
	info, err := Verify(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(raw)) || info.Header.SiteID != "id1" || info.Header.SiteRole != "parent" || len(info.SHA256) != 64 {
		t.Fatalf("info %+v", info)
	}
	got, err := Decode(bytes.NewReader(raw), info)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	have, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if want.Digest != have.Digest {
		t.Errorf("restored digest %s, want %s", have.Digest, want.Digest)
	}
}

// TestBadInput: every way a file can be wrong has its own error, all of them ErrInvalid.
func TestBadInput(t *testing.T) {
	raw := testBackup(t, testStore(t))
	flip := func(i int) []byte {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return b
	}
	version := bytes.Clone(raw)
	binary.BigEndian.PutUint32(version[len(Magic):], 2)
	hugeHeader := bytes.Clone(raw)
	binary.BigEndian.PutUint32(hugeHeader[len(Magic)+4:], maxHeaderBytes+1)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"half magic", raw[:4], ErrTruncated},
		{"other format", []byte("PTSNAP1\nsomething else entirely"), ErrNotBackup},
		{"version", version, ErrVersion},
		{"header length", hugeHeader, ErrCorrupt},
		{"header cut", raw[:prefixSize+5], ErrTruncated},
		{"no trailer", raw[:len(raw)-TrailerSize], ErrTruncated},
		{"cut in trailer", raw[:len(raw)-1], ErrTruncated},
		{"payload bit", flip(len(raw) - TrailerSize - 3), ErrChecksum},
		{"header bit", flip(prefixSize + 2), ErrCorrupt},
		{"checksum bit", flip(len(raw) - 1), ErrChecksum},
	}
	for _, c := range cases {
		_, err := Verify(bytes.NewReader(c.in))
		if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestDecodeChecksCounts: a payload whose rows disagree with the header's counts is corrupt,
// even when the checksum (recomputed by a forger or a bug) matches.
func TestDecodeChecksCounts(t *testing.T) {
	raw := testBackup(t, testStore(t))
	info, err := Verify(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	info.Header.Tables["tokens"] = 3
	if _, err := Decode(bytes.NewReader(raw), info); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decode with a wrong token count: %v, want ErrCorrupt", err)
	}
}
