package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"

	"patchtree/store"
)

// randomID returns n random bytes, hex encoded.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// newSecret returns a fresh token: its public id, the bearer string handed to the user once,
// and the row to store (which keeps only the secret's hash).
func newSecret() (id, bearer, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	id = randomID(8)
	secret := base64.RawURLEncoding.EncodeToString(b)
	return id, id + "." + secret, store.HashSecret(secret)
}
