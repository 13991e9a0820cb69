package api

import (
	"net/http"
	"testing"

	"patchtree/store"
)

// TestEveryAdminWriteIsAudited: each write an administrator or rollout operator may make is
// in exactly one of the audit tables: its change carries its audit entry (auditedInEntry), it is
// recorded by an entry of its own (auditOnly), or it is data, not administration (notAudited).
// A new write route without a decision fails here.
func TestEveryAdminWriteIsAudited(t *testing.T) {
	s := New(newFake(t), Options{TestHooks: true})
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		k := rt.key()
		seen[k] = true
		if rt.method == http.MethodGet || rt.access.public || !(rt.access.allows(store.RoleAdmin) || rt.access.allows(store.RoleRollout)) {
			continue
		}
		n := 0
		for _, in := range []bool{auditedInEntry[k], auditOnly[k] != "", notAudited[k]} {
			if in {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: in %d of auditedInEntry, auditOnly, notAudited; want exactly 1", k, n)
		}
	}
	for _, table := range []map[string]bool{auditedInEntry, notAudited} {
		for k := range table {
			if !seen[k] {
				t.Errorf("%s is in an audit table but is no route", k)
			}
		}
	}
	for k := range auditOnly {
		if !seen[k] {
			t.Errorf("%s is in auditOnly but is no route", k)
		}
	}
}
