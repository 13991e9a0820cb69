package hierarchy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"strconv"
	"strings"

	"patchtree/store"
)

// Digest is an order-independent digest of a set of records: the sum modulo 2^256 of each
// record's SHA-256. Adding or removing one record is O(1), and a parent and a child that hold the
// same records get the same digest however they iterate.
type Digest [4]uint64

func (d *Digest) add(h [32]byte, sign int) {
	var carry uint64
	for i := 0; i < 4; i++ {
		x := binary.BigEndian.Uint64(h[24-8*i:])
		if sign < 0 {
			d[i], carry = bits.Sub64(d[i], x, carry)
		} else {
			d[i], carry = bits.Add64(d[i], x, carry)
		}
	}
}

// String is the digest as 64 hex digits.
func (d Digest) String() string {
	var b [32]byte
	for i := 0; i < 4; i++ {
		binary.BigEndian.PutUint64(b[24-8*i:], d[i])
	}
	return hex.EncodeToString(b[:])
}

// AddUpdate adds an update as held by a child.
func (d *Digest) AddUpdate(u *store.Update) { d.add(UpdateHash(u), 1) }

// AddBulletin adds a bulletin as held by a child (its update ids already filtered).
func (d *Digest) AddBulletin(b *store.Bulletin, updateIDs []string) {
	d.add(BulletinHash(b, updateIDs), 1)
}

// UpdateHash identifies an update's replicated content.
func UpdateHash(u *store.Update) [32]byte {
	return sha256.Sum256([]byte("u\x00" + u.ID + "\x00" + u.Hash + "\x00" + strconv.FormatBool(u.Superseded)))
}

// BulletinHash identifies a bulletin's replicated content: the parent's content hash, the
// administrator's fields, and the update ids the child holds.
func BulletinHash(b *store.Bulletin, updateIDs []string) [32]byte {
	return sha256.Sum256([]byte("b\x00" + b.ID + "\x00" + b.Hash + "\x00" + b.CustomSeverity + "\x00" +
		strconv.FormatBool(b.Disabled) + "\x00" + strings.Join(updateIDs, "\x1f")))
}

// ReplicaDigest is the digest of a child's whole catalog.
func ReplicaDigest(v *store.CatalogView) string {
	var d Digest
	v.EachUpdate(func(u *store.Update) bool { d.AddUpdate(u); return true })
	v.EachBulletin(func(b *store.Bulletin) bool { d.AddBulletin(b, b.UpdateIDs); return true })
	return d.String()
}
