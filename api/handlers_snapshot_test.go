package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"patchtree/backup"
	"patchtree/node"
	"patchtree/store"
)

// RestoreSnapshot makes the fake a snapshotRestorer: verify, decode, check the site, swap.
func (f *fakeBackend) RestoreSnapshot(body io.Reader, force bool) (*node.SnapshotRestored, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	info, err := backup.Verify(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	fresh, err := backup.Decode(bytes.NewReader(raw), info)
	if err != nil {
		return nil, err
	}
	if site, _ := f.s.Site(nil); !force && site != nil && site.Name != info.Header.SiteName {
		return nil, fmt.Errorf("%w: %w", node.ErrSnapshotOtherSite, store.ErrConflict)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s = fresh
	f.idx = max(f.idx, info.Header.Index) + 1
	return &node.SnapshotRestored{Backup: info, Index: f.idx, Forced: force}, nil
}

// MaxSnapshotBytes is the fake's upload limit: small, so that the limit can be tested.
func (f *fakeBackend) MaxSnapshotBytes() int64 { return 1 << 20 }

// snapBackupOf returns a backup of s.
func snapBackupOf(t *testing.T, s *store.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := backup.Write(&buf, s.Snapshot(), time.Now()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSnapshotSaveRestore: GET /v1/snapshot is a valid backup of the state; PUT of it after a
// change brings the state back (the change is gone) and the restore is audited after it.
func TestSnapshotSaveRestore(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	admin := bearer(store.RoleAdmin)
	rec := send(t, srv, "GET", "/v1/snapshot", admin, nil)
	if rec.Code != 200 {
		t.Fatalf("GET /v1/snapshot: %d %s", rec.Code, rec.Body)
	}
	saved := rec.Body.Bytes()
	info, err := backup.Verify(bytes.NewReader(saved))
	if err != nil {
		t.Fatalf("downloaded backup: %v", err)
	}
	if info.Header.SiteName != "hq" || info.Header.Tables["tokens"] != 4 {
		t.Fatalf("header %+v: want site hq with 4 tokens", info.Header)
	}
	if _, err := f.CreateToken(store.Actor{}, store.RoleAgent, "extra"); err != nil {
		t.Fatal(err)
	}
	if rec := send(t, srv, "PUT", "/v1/snapshot", admin, saved); rec.Code != 200 {
		t.Fatalf("PUT /v1/snapshot: %d %s", rec.Code, rec.Body)
	}
	_, toks, err := f.State().Tokens(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 4 {
		t.Errorf("after the restore %d tokens, want the backup's 4 (the extra one removed)", len(toks))
	}
	var actions []string
	if err := f.State().Audit(nil, "", func(e *store.AuditEntry) bool { actions = append(actions, e.Action); return true }); err != nil {
		t.Fatal(err)
	}
	if len(actions) == 0 || actions[len(actions)-1] != "snapshot.restore" {
		t.Errorf("audit log after the restore: %v, want a snapshot.restore entry last", actions)
	}
}

// TestSnapshotRestoreBadInput: a truncated, altered or foreign upload is a 400 naming the fault,
// and the state is unchanged.
func TestSnapshotRestoreBadInput(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	admin := bearer(store.RoleAdmin)
	good := snapBackupOf(t, f.s)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	cases := []struct {
		name, want string
		body       []byte
	}{
		{"truncated", "truncated", good[:len(good)-10]},
		{"checksum", "checksum mismatch", flipped},
		{"json", "not a patchtree snapshot", []byte(`{"tokens": []}`)},
		{"version", "unsupported format version", append(append([]byte(backup.Magic), 0, 0, 0, 9), good[len(backup.Magic)+4:]...)},
		{"empty", "truncated", nil},
	}
	before, err := f.State().Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		body := c.body
		if body == nil {
			body = []byte{}
		}
		rec := send(t, srv, "PUT", "/v1/snapshot", admin, body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: got %d %s, want 400 with %q", c.name, rec.Code, rec.Body, c.want)
		}
	}
	after, err := f.State().Digest()
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, before, after) {
		t.Errorf("a refused restore changed the state")
	}
	big := make([]byte, f.MaxSnapshotBytes()+1)
	if rec := send(t, srv, "PUT", "/v1/snapshot", admin, big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over the limit: %d %s, want 413", rec.Code, rec.Body)
	}
}

// TestSnapshotRestoreOtherSite: another site's backup is a 409 without force and restored with it.
func TestSnapshotRestoreOtherSite(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{})
	other, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	admin := store.Token{ID: "admin", SecretHash: store.HashSecret("s-admin"), Role: store.RoleAdmin}
	if err := other.InitSite(1, &store.SiteInfo{SiteID: "site2", Name: "branch", Role: node.RoleParent}, &admin, []string{"de"}, nil); err != nil {
		t.Fatal(err)
	}
	foreign := snapBackupOf(t, other)
	if rec := send(t, srv, "PUT", "/v1/snapshot", bearer(store.RoleAdmin), foreign); rec.Code != http.StatusConflict {
		t.Fatalf("another site's backup without force: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := send(t, srv, "PUT", "/v1/snapshot?force=true", bearer(store.RoleAdmin), foreign); rec.Code != 200 {
		t.Fatalf("another site's backup with force: %d %s", rec.Code, rec.Body)
	}
	if site, _ := f.State().Site(nil); site == nil || site.Name != "branch" {
		t.Errorf("after a forced restore the site is %+v, want branch", site)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
