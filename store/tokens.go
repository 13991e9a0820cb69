package store

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Role is what a token may do (DESIGN.md §8).
type Role string

// The roles. RoleNode is a child site's credential at its parent, bound to the child's name.
const (
	RoleAdmin   Role = "admin"
	RoleRollout Role = "rollout"
	RoleAuditor Role = "auditor"
	RoleAgent   Role = "agent"
	RoleNode    Role = "node"
	// RoleServer is the site's own servers: a follower uses it to tell the leader its current
	// API address. Its one token is created with the site; people never hold it.
	RoleServer Role = "server"
)

// Roles lists every role in a stable order.
var Roles = []Role{RoleAdmin, RoleRollout, RoleAuditor, RoleAgent, RoleNode, RoleServer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

// Token is a bearer credential. Only the SHA-256 of its secret is stored; ID is public (the part
// of the bearer string before the dot) and is used to find the row, after which the secret's hash
// is compared in constant time.
type Token struct {
	ID         string    `json:"id"`
	SecretHash string    `json:"secret_hash"`
	Role       Role      `json:"role"`
	Name       string    `json:"name,omitempty"`
	Child      string    `json:"child,omitempty"` // for RoleNode: the child site it is bound to
	CreateTime time.Time `json:"create_time"`
	RaftIndex
}

func (t *Token) validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("token without id: %w", ErrInvalid)
	case len(t.SecretHash) != 64:
		return fmt.Errorf("token %q: secret hash must be 64 hex characters: %w", t.ID, ErrInvalid)
	case !t.Role.Valid():
		return fmt.Errorf("token %q: unknown role %q: %w", t.ID, t.Role, ErrInvalid)
	case t.Role == RoleNode && t.Child == "":
		return fmt.Errorf("token %q: node token without child: %w", t.ID, ErrInvalid)
	}
	return nil
}

// CreateToken stores a new token at Raft index idx. A token id that already exists is a conflict:
// tokens are immutable once issued.
func (s *Store) CreateToken(idx uint64, t *Token) error {
	if err := t.validate(); err != nil {
		return err
	}
	return s.write(func(txn *memdb.Txn) error {
		existing, err := txn.First(tableTokens, "id", t.ID)
		if err != nil {
			return fmt.Errorf("token lookup %q: %w", t.ID, err)
		}
		if existing != nil {
			return fmt.Errorf("token %q already exists: %w", t.ID, ErrConflict)
		}
		row := *t
		return upsertRow(txn, tableTokens, idx, row.ID, &row)
	})
}

// DeleteToken revokes the token with the given id.
func (s *Store) DeleteToken(idx uint64, id string) error {
	return s.write(func(txn *memdb.Txn) error { return deleteRow(txn, tableTokens, idx, id) })
}

// Token returns the token with the given id, or nil.
func (s *Store) Token(ws memdb.WatchSet, id string) (*Token, error) {
	raw, err := first(s.db.Txn(false), ws, tableTokens, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Token), nil
}

// Tokens lists every token ordered by id, with the tokens table's index.
func (s *Store) Tokens(ws memdb.WatchSet) (uint64, []*Token, error) {
	rows, err := all[*Token](s.db.Txn(false), ws, tableTokens)
	return s.Index(tableTokens), rows, err
}

// HashSecret returns the hex SHA-256 of a token secret: the only form in which secrets are stored.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SplitBearer splits a bearer string "<id>.<secret>" into its public id and its secret.
func SplitBearer(bearer string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(bearer, ".")
	if !ok || id == "" || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

// SecretMatches compares secret against the stored hash in constant time.
func (t *Token) SecretMatches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(t.SecretHash)) == 1
}
