package store

import (
	"crypto/sha256"
	"strconv"
	"testing"
)

// PairHash is part of the digests parents and children compare: it stays the SHA-256 of these
// bytes, whichever way it is computed.
func TestPairHashIsTheMembershipsSHA256(t *testing.T) {
	for _, b := range []*Bulletin{
		{BulletinContent: BulletinContent{ID: "B1"}, Hash: "h1"},
		{BulletinContent: BulletinContent{ID: "MFSA-2024-01"}, Hash: "abc", CustomSeverity: "Critical", Disabled: true},
	} {
		for _, id := range []string{"", "U1", "firefox-120.0-de"} {
			want := sha256.Sum256([]byte("b\x00" + b.ID + "\x00" + b.Hash + "\x00" + b.CustomSeverity + "\x00" +
				strconv.FormatBool(b.Disabled) + "\x00" + id))
			if got := PairHash(b, id); got != want {
				t.Fatalf("PairHash(%s, %q) = %x, want %x", b.ID, id, got, want)
			}
		}
	}
}
