package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"patchtree/store"
)

// marshalHash is how rows were hashed before the appenders: json.Marshal of the same values.
func marshalHash(t testing.TB, v any) (string, int) {
	buf, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), len(buf)
}

func checkRowHashes(t testing.TB, u store.UpdateContent, b store.BulletinContent, tags []string, feed string, superseded bool) {
	t.Helper()
	ur := &store.Update{UpdateContent: u, Feed: feed, Superseded: superseded}
	n := hashUpdateRow(ur)
	want, wn := marshalHash(t, struct {
		C *store.UpdateContent
		F string
		S bool
	}{&u, feed, superseded})
	if ur.Hash != want || n != wn {
		got, _ := json.Marshal(&u)
		t.Fatalf("update %s: hash %s (%d bytes), json.Marshal's %s (%d bytes)", got, ur.Hash, n, want, wn)
	}
	br := &store.Bulletin{BulletinContent: b, UpdateTags: tags, Feed: feed}
	n = hashBulletinRow(br)
	want, wn = marshalHash(t, struct {
		C *store.BulletinContent
		T []string
		F string
	}{&b, tags, feed})
	if br.Hash != want || n != wn {
		got, _ := json.Marshal(&b)
		t.Fatalf("bulletin %s tags %q: hash %s (%d bytes), json.Marshal's %s (%d bytes)", got, tags, br.Hash, n, want, wn)
	}
}

// The appenders write exactly what json.Marshal wrote, so stored rows keep their hashes.
func TestRowHashJSONIsEncodingJSON(t *testing.T) {
	odd := "a\"b\\c<d>e&f\n\r\t\b\f\x00\x1f\x7f é \u2028 \u2029 \xff\xfe 😀 \xed\xa0\x80"
	full := store.UpdateContent{ID: "u1", Title: odd, Language: "de-DE", FileName: "f.exe", URL: "https://x/?a=1&b=<2>",
		Size: -5, SHA256: "ab", CommandLine: "/S", RestartRequired: true, Supersedes: []string{"u0", odd}}
	bull := store.BulletinContent{ID: "B1", Vendor: "Mozilla", Title: odd, Severity: "High", Released: "2024-01-01",
		Revised: "2024-01-02T00:00:00Z", Description: odd, CVEs: []string{"CVE-1"}, UpdateIDs: []string{"u1", "u2"}}
	for _, tc := range []struct {
		u    store.UpdateContent
		b    store.BulletinContent
		tags []string
	}{
		{full, bull, []string{"de-de", ""}},
		{store.UpdateContent{}, store.BulletinContent{}, nil}, // every omitempty empty, nil lists
		{store.UpdateContent{Supersedes: []string{}}, store.BulletinContent{CVEs: []string{}, UpdateIDs: []string{}}, []string{}}, // empty, not nil
		{store.UpdateContent{ID: "x", Size: 9223372036854775807}, store.BulletinContent{ID: "y", UpdateIDs: []string{""}}, []string{""}},
	} {
		for _, superseded := range []bool{false, true} {
			checkRowHashes(t, tc.u, tc.b, tc.tags, "feed<&>", superseded)
		}
	}
}

func FuzzRowHashJSON(f *testing.F) {
	f.Add("u1", "title", "de", "https://x/?a&b", int64(10), true, "B1", "desc <b>", "tag")
	f.Add("\xff", "\u2028", "", "", int64(-1), false, "", "\x00\x1f", "")
	f.Fuzz(func(t *testing.T, id, title, lang, url string, size int64, restart bool, bid, desc, tag string) {
		u := store.UpdateContent{ID: id, Title: title, Language: lang, URL: url, Size: size, RestartRequired: restart, SHA256: desc, Supersedes: []string{tag}}
		b := store.BulletinContent{ID: bid, Title: title, Description: desc, Vendor: lang, CVEs: []string{url}, UpdateIDs: []string{id, tag}}
		checkRowHashes(t, u, b, []string{lang, tag}, title, restart)
	})
}
