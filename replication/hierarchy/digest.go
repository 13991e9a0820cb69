package hierarchy

import (
	"crypto/sha256"
	"strconv"
	"strings"

	"patchtree/langalert"
	"patchtree/store"
)

// ViewDigest is the digest of a child's filtered view, summed from the parent's per-language
// digests (maintained by the store as the catalog changes): no scan of the view.
func ViewDigest(v *store.CatalogView, ranges []string) string {
	var d store.Digest
	v.TagDigests(func(tag string, td store.Digest) {
		if langalert.MatchAny(ranges, tag) {
			d.AddDigest(td)
		}
	})
	return d.String()
}

// ReplicaDigest is the digest of a child's whole replica, computed the same way from its rows:
// every update, and every (bulletin, update) membership. A bulletin that lists no update (which
// a correct replica never holds) adds a marker so that it cannot go unnoticed.
func ReplicaDigest(v *store.CatalogView) string {
	var d store.Digest
	v.EachUpdate(func(u *store.Update) bool { d.Add(store.UpdateRecordHash(u)); return true })
	v.EachBulletin(func(b *store.Bulletin) bool {
		store.EachPairHash(b, func(_ int, h [32]byte) { d.Add(h) })
		if len(b.UpdateIDs) == 0 {
			d.Add(sha256.Sum256([]byte("empty-bulletin\x00" + b.ID)))
		}
		return true
	})
	return d.String()
}

// UpdateHash identifies an update's replicated content, for the record-by-record sample.
func UpdateHash(u *store.Update) [32]byte { return store.UpdateRecordHash(u) }

// BulletinHash identifies a bulletin's replicated content as a child holds it, for the sample.
func BulletinHash(b *store.Bulletin, updateIDs []string) [32]byte {
	return sha256.Sum256([]byte("b\x00" + b.ID + "\x00" + b.Hash + "\x00" + b.CustomSeverity + "\x00" +
		strconv.FormatBool(b.Disabled) + "\x00" + strings.Join(updateIDs, "\x1f")))
}
