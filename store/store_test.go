package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpsertKeepsCreateIndexAndBumpsTableIndex(t *testing.T) {
	s := newStore(t)
	if err := s.SetLanguages(3, LanguagesSite, []string{"en"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLanguages(7, LanguagesSite, []string{"de"}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Languages(nil, LanguagesSite)
	if l.CreateIndex != 3 || l.ModifyIndex != 7 || l.Ranges[0] != "de" {
		t.Fatalf("row = %+v", l)
	}
	if s.Index(tableLanguages) != 7 || s.Index(tableTokens) != 0 || s.LatestIndex() != 7 {
		t.Fatalf("indexes: languages %d tokens %d latest %d", s.Index(tableLanguages), s.Index(tableTokens), s.LatestIndex())
	}
}

func TestWatchSetFiresOnWrite(t *testing.T) {
	s := newStore(t)
	ws := memdb.NewWatchSet()
	if _, err := s.Languages(ws, LanguagesSite); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLanguages(1, LanguagesSite, []string{"ja"}); err != nil {
		t.Fatal(err)
	}
	if timedOut := ws.Watch(time.After(10 * time.Second)); timedOut {
		t.Fatal("watch set did not fire on a write to the watched row")
	}
}

func TestTokens(t *testing.T) {
	s := newStore(t)
	tok := &Token{ID: "a1", SecretHash: HashSecret("sekrit"), Role: RoleAuditor}
	if err := s.CreateToken(1, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(2, tok); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate token: %v", err)
	}
	bad := []*Token{
		{ID: "", SecretHash: HashSecret("x"), Role: RoleAdmin},
		{ID: "b", SecretHash: "short", Role: RoleAdmin},
		{ID: "c", SecretHash: HashSecret("x"), Role: "root"},
		{ID: "d", SecretHash: HashSecret("x"), Role: RoleNode},
	}
	for _, b := range bad {
		if err := s.CreateToken(3, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("token %+v: %v", b, err)
		}
	}
	got, _ := s.Token(nil, "a1")
	if !got.SecretMatches("sekrit") || got.SecretMatches("sekrit2") {
		t.Fatal("secret comparison")
	}
	if err := s.DeleteToken(4, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	id, secret, ok := SplitBearer("abc.def.ghi")
	if !ok || id != "abc" || secret != "def.ghi" {
		t.Fatalf("SplitBearer = %q %q %v", id, secret, ok)
	}
	for _, b := range []string{"", "abc", ".x", "x."} {
		if _, _, ok := SplitBearer(b); ok {
			t.Errorf("SplitBearer(%q) accepted", b)
		}
	}
}

func TestInitSiteOnce(t *testing.T) {
	s := newStore(t)
	admin := &Token{ID: "adm", SecretHash: HashSecret("x"), Role: RoleAdmin}
	info := &SiteInfo{SiteID: "s", Name: "hq", Role: "parent"}
	if err := s.InitSite(1, info, admin, []string{"en"}, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Digest()
	admin2 := &Token{ID: "adm2", SecretHash: HashSecret("y"), Role: RoleAdmin}
	if err := s.InitSite(2, info, admin2, nil, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("second init: %v", err)
	}
	after, _ := s.Digest()
	if before.Digest != after.Digest {
		t.Fatal("failed init changed state")
	}
	got, _ := s.Site(nil)
	if got.AdminTokenID != "adm" || got.Name != "hq" {
		t.Fatalf("site = %+v", got)
	}
}

func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTripAndCorruption(t *testing.T) {
	s := newStore(t)
	admin := &Token{ID: "adm", SecretHash: HashSecret("x"), Role: RoleAdmin}
	if err := s.InitSite(1, &SiteInfo{SiteID: "s", Name: "hq", Role: "parent"}, admin, []string{"en"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertServer(2, &Server{ID: "n1", RaftAddr: "r", APIAddr: "a"}); err != nil {
		t.Fatal(err)
	}
	good := snapshotBytes(t, s)
	restored, err := Restore(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Digest()
	b, _ := restored.Digest()
	if a.Digest != b.Digest || a.Index != 2 || b.Index != 2 {
		t.Fatalf("digests %s/%d vs %s/%d", a.Digest, a.Index, b.Digest, b.Index)
	}

	wrongCount := append([]byte{}, good...)
	// The trailer is the last two bytes: 0x00 and the row count as a one-byte uvarint.
	wrongCount[len(wrongCount)-1]++
	unknownTable := append([]byte(snapshotMagic), 99, 2, '{', '}', 0, 1)
	var hugeLen [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hugeLen[:], 1<<40)
	hugeRecord := append(append([]byte(snapshotMagic), 2), hugeLen[:n]...)
	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      []byte("NOTASNAP"),
		"no trailer":     good[:len(good)-2],
		"cut mid-row":    good[:len(snapshotMagic)+10],
		"wrong count":    wrongCount,
		"after trailer":  append(append([]byte{}, good...), 'x'),
		"huge record":    hugeRecord,
		"row not a JSON": append([]byte(snapshotMagic), 2, 3, 'x', 'y', 'z', 0, 1),
	}
	for name, buf := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Restore(bytes.NewReader(buf)); !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("err = %v, want ErrCorruptSnapshot", err)
			}
		})
	}

	// A table this version does not know: an error naming the cause unless its byte carries
	// IgnoreUnknownRecordFlag, in which case the rows are skipped and counted.
	if _, err := Restore(bytes.NewReader(unknownTable)); !errors.Is(err, ErrUnknownRecord) {
		t.Fatalf("unknown table: err = %v, want ErrUnknownRecord", err)
	}
	ignorable := append([]byte(snapshotMagic), IgnoreUnknownRecordFlag|99, 2, '{', '}')
	ignorable = append(ignorable, good[len(snapshotMagic):len(good)-1]...)
	ignorable = append(ignorable, good[len(good)-1]+1)
	skipped, err := Restore(bytes.NewReader(ignorable))
	if err != nil {
		t.Fatalf("ignorable unknown table: %v", err)
	}
	if c, _ := skipped.Digest(); c.Digest != a.Digest || skipped.SkippedRecords() != 1 {
		t.Fatalf("ignorable unknown table: digest %s (want %s), skipped %d", c.Digest, a.Digest, skipped.SkippedRecords())
	}
}

func TestSettings(t *testing.T) {
	s := newStore(t)
	if err := s.PutSetting(1, "k", []byte(`{`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid JSON accepted: %v", err)
	}
	if err := s.PutSetting(1, "k", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	row, _ := s.Setting(nil, "k")
	if string(row.Value) != `{"a":1}` {
		t.Fatalf("setting = %s", row.Value)
	}
	if site, err := s.Site(nil); site != nil || err != nil {
		t.Fatalf("site before init = %+v, %v", site, err)
	}
}

func TestPruneReplicationRunsKeepsTheNewest(t *testing.T) {
	s, _ := New()
	idx := uint64(0)
	for _, c := range []string{"a", "b"} {
		idx++
		if err := s.AddChild(idx, &Child{Name: c, JoinTokenHash: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		for _, c := range []string{"a", "b"} {
			idx++
			run := &ReplicationRun{ID: fmt.Sprintf("2026112%d-%s", i, c), Child: c}
			if err := s.RecordReplicationRun(idx, run, &ChildUpdate{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	idx++
	n, err := s.PruneReplicationRuns(idx, "a", 2)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	runs, _ := s.ReplicationRuns(nil)
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if got := fmt.Sprint(ids); got != "[20261120-b 20261121-b 20261122-b 20261123-a 20261123-b 20261124-a 20261124-b]" {
		t.Fatalf("runs after pruning a to 2: %s", got)
	}
	if c, _ := s.ChildRunCount("b"); c != 5 {
		t.Fatalf("b has %d runs", c)
	}
	if _, err := s.PruneReplicationRuns(idx+1, "a", 0); err == nil {
		t.Fatal("keep 0 accepted")
	}
}
