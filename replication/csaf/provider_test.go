package csaf

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readAll runs Read and collects what fn received, by path.
func readAll(t *testing.T, fetch FetchFunc, since time.Time, max int64) (map[string]*Advisory, []string, time.Time, error) {
	t.Helper()
	got := map[string]*Advisory{}
	var order []string
	newest, err := Read(context.Background(), fetch, since, max, func(p string, a *Advisory) error {
		if got[p] != nil {
			t.Errorf("%s delivered twice", p)
		}
		got[p] = a
		order = append(order, p)
		return nil
	})
	return got, order, newest, err
}

func changesOf(t *testing.T, dir string) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "changes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseChanges(f)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func histogram(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%q:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func TestReadCISA(t *testing.T) {
	dir := sharedData(t, "cisa-ot-2017")
	entries := changesOf(t, dir)
	ts := map[string]time.Time{}
	var latest time.Time
	for _, e := range entries {
		ts[e.Path] = e.Timestamp
		if e.Timestamp.After(latest) {
			latest = e.Timestamp
		}
	}
	got, order, newest, err := readAll(t, DirFetch(dir), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 187 || len(got) != 187 {
		t.Fatalf("changes.csv has %d entries, Read delivered %d; want 187", len(entries), len(got))
	}
	if !newest.Equal(latest) {
		t.Errorf("newest = %v, want %v", newest, latest)
	}
	if !slices.IsSortedFunc(order, func(a, b string) int { return ts[a].Compare(ts[b]) }) {
		t.Error("documents were not delivered oldest first")
	}
	sev, lang, warn := map[string]int{}, map[string]int{}, map[string]int{}
	ids, updateIDs := map[string]bool{}, map[string]bool{}
	updates, synthetic := 0, 0
	for _, p := range order {
		a := got[p]
		b := a.Bulletin
		if ids[b.ID] {
			t.Errorf("%s: duplicate bulletin id %s", p, b.ID)
		}
		ids[b.ID] = true
		if len(a.Updates) == 0 || len(b.UpdateIDs) != len(a.Updates) {
			t.Errorf("%s: %d updates, %d update ids", p, len(a.Updates), len(b.UpdateIDs))
		}
		for i, u := range a.Updates {
			if updateIDs[u.ID] || u.ID != b.UpdateIDs[i] || u.Title == "" {
				t.Errorf("%s: bad or duplicate update %+v", p, u)
			}
			updateIDs[u.ID] = true
			lang[u.Language]++
			if strings.HasSuffix(u.ID, "/advisory") {
				synthetic++
			}
		}
		updates += len(a.Updates)
		if b.Title == "" || b.Vendor == "" || b.Released == "" || b.Revised == "" || len(b.CVEs) == 0 {
			t.Errorf("%s: incomplete bulletin %+v", p, b)
		}
		sev[b.Severity]++
		for _, w := range a.Warnings {
			warn[strings.SplitN(w, ";", 2)[0]]++
		}
	}
	t.Logf("%d bulletins, %d updates (%d vendor_fix, %d synthesized for advisories without a vendor_fix)",
		len(got), updates, updates-synthetic, synthetic)
	t.Logf("severity histogram: %s", histogram(sev))
	t.Logf("update language histogram: %s", histogram(lang))
	t.Logf("warnings: %s", histogram(warn))
}

func TestReadSince(t *testing.T) {
	dir := sharedData(t, "cisa-ot-2017")
	entries := changesOf(t, dir)
	byAge := slices.SortedFunc(slices.Values(entries), func(a, b Entry) int { return b.Timestamp.Compare(a.Timestamp) })
	since := byAge[9].Timestamp
	var want []string
	for _, e := range entries {
		if e.Timestamp.After(since) {
			want = append(want, e.Path)
		}
	}
	got, _, newest, err := readAll(t, DirFetch(dir), since, 0)
	if err != nil {
		t.Fatal(err)
	}
	if gotPaths := slices.Sorted(maps.Keys(got)); !slices.Equal(gotPaths, slices.Sorted(slices.Values(want))) {
		t.Errorf("since %v: got %v\nwant %v", since, gotPaths, want)
	}
	t.Logf("since %v (10th newest): %d of %d documents are newer", since.Format(time.RFC3339), len(got), len(entries))
	if !newest.Equal(byAge[0].Timestamp) {
		t.Errorf("newest = %v, want %v", newest, byAge[0].Timestamp)
	}
	// Nothing is newer than the watermark: nothing is read and the watermark stays.
	got, _, again, err := readAll(t, DirFetch(dir), newest, 0)
	if err != nil || len(got) != 0 || !again.Equal(newest) {
		t.Errorf("re-read: %d documents, newest %v, err %v", len(got), again, err)
	}
}

func TestReadTamperedCISA(t *testing.T) {
	src := sharedData(t, "cisa-ot-2017")
	dir := t.TempDir()
	copyTree(t, src, dir)
	const victim = "2017/icsa-17-136-01.json"
	p := filepath.Join(dir, filepath.FromSlash(victim))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, newest, err := readAll(t, DirFetch(dir), time.Time{}, 0)
	if err == nil {
		t.Fatal("Read accepted a tampered document")
	}
	t.Logf("error: %v (after %d documents)", err, len(got))
	var de *DocError
	if !strings.Contains(err.Error(), "document "+victim+": sha512 mismatch (want ") ||
		!errors.Is(err, ErrHashMismatch) || !errors.As(err, &de) || de.Path != victim {
		t.Errorf("error = %v", err)
	}
	if got[victim] != nil {
		t.Error("the tampered document was delivered")
	}
	for _, e := range changesOf(t, dir) {
		if e.Path == victim && !newest.Before(e.Timestamp) {
			t.Errorf("watermark %v does not precede the failed document's %v", newest, e.Timestamp)
		}
	}
}

// provider writes a synthetic provider: changes.csv and documents with hash files.
type provider struct {
	t   *testing.T
	dir string
	csv strings.Builder
}

func newProvider(t *testing.T) *provider { return &provider{t: t, dir: t.TempDir()} }

// add writes a document listed at ts, with a hash file of algo ("" = none).
func (pv *provider) add(p, ts string, data []byte, algo string) {
	full := filepath.Join(pv.dir, filepath.FromSlash(p))
	must(pv.t, os.MkdirAll(filepath.Dir(full), 0o755))
	must(pv.t, os.WriteFile(full, data, 0o644))
	var sum string
	switch algo {
	case "sha512":
		s := sha512.Sum512(data)
		sum = hex.EncodeToString(s[:])
	case "sha256":
		s := sha256.Sum256(data)
		sum = hex.EncodeToString(s[:])
	}
	if sum != "" {
		must(pv.t, os.WriteFile(full+"."+algo, []byte(sum+"  "+filepath.Base(p)+"\n"), 0o644))
	}
	fmt.Fprintf(&pv.csv, "%q,%q\n", p, ts)
	must(pv.t, os.WriteFile(filepath.Join(pv.dir, "changes.csv"), []byte(pv.csv.String()), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func docID(t *testing.T, id string) []byte {
	return docWith(t, func(d obj) { trackOf(d)["id"] = id })
}

func TestReadSynthetic(t *testing.T) {
	t1, t2 := "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"
	wm1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		build   func(pv *provider)
		max     int64
		fnErr   bool
		wantN   int       // documents delivered
		wantWM  time.Time // watermark returned
		wantErr string    // substring; "" = success
	}{
		{"sha256 fallback", func(pv *provider) {
			pv.add("2024/ex-1.json", t1, docID(t, "EX-1"), "sha256")
		}, 0, false, 1, wm1, ""},
		{"no hash file", func(pv *provider) {
			pv.add("2024/ex-1.json", t1, docID(t, "EX-1"), "sha512")
			pv.add("2024/ex-2.json", t2, docID(t, "EX-2"), "")
		}, 0, false, 1, wm1, "csaf: document 2024/ex-2.json: no .sha512 or .sha256 hash file beside it"},
		{"document missing", func(pv *provider) {
			pv.add("2024/ex-1.json", t1, docID(t, "EX-1"), "sha512")
			must(t, os.Remove(filepath.Join(pv.dir, "2024", "ex-1.json")))
		}, 0, false, 0, time.Time{}, "csaf: document 2024/ex-1.json: no such file"},
		{"document too large", func(pv *provider) {
			pv.add("2024/ex-1.json", t1, docID(t, "EX-1"), "sha512")
		}, 100, false, 0, time.Time{}, "csaf: document 2024/ex-1.json: file exceeds size limit ("},
		{"not CSAF", func(pv *provider) {
			pv.add("2024/ex-1.json", t1, []byte(`{"hello":1}`), "sha512")
		}, 0, false, 0, time.Time{}, "csaf: document 2024/ex-1.json: not a CSAF document: missing document"},
		{"fn error; tie keeps the watermark", func(pv *provider) {
			pv.add("2024/ex-0.json", t1, docID(t, "EX-0"), "sha512")
			pv.add("2024/ex-2.json", t2, docID(t, "EX-2"), "sha512")
			pv.add("2024/ex-1.json", t2, docID(t, "EX-1"), "sha512")
		}, 0, true, 2, wm1, "csaf: document 2024/ex-2.json: refused"},
		{"no changes.csv", func(pv *provider) {}, 0, false, 0, time.Time{}, "csaf: changes.csv: no such file"},
		{"file name warning", func(pv *provider) {
			pv.add("2024/other.json", t1, docID(t, "EX-1"), "sha512")
		}, 0, false, 1, wm1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pv := newProvider(t)
			tc.build(pv)
			n := 0
			newest, err := Read(context.Background(), DirFetch(pv.dir), time.Time{}, tc.max, func(p string, a *Advisory) error {
				if n++; tc.fnErr && n == 3 {
					return errors.New("refused")
				}
				if p == "2024/other.json" && (len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], `"ex-1.json"`)) {
					t.Errorf("warnings = %q", a.Warnings)
				}
				return nil
			})
			if tc.fnErr {
				n--
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if n != tc.wantN || !newest.Equal(tc.wantWM) {
				t.Errorf("delivered %d, watermark %v; want %d, %v", n, newest, tc.wantN, tc.wantWM)
			}
		})
	}
}

func TestDirFetch(t *testing.T) {
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "a.json"), []byte("{}"), 0o644))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")))
	must(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
	fetch := DirFetch(root)
	ctx := context.Background()
	if b, err := fetch(ctx, "a.json"); err != nil || string(b) != "{}" {
		t.Fatalf("a.json: %q, %v", b, err)
	}
	for _, p := range []string{"../" + filepath.Base(outside) + "/secret", "/etc/passwd", "link", "sub", ".", "a\\b", "missing.json"} {
		t.Run(p, func(t *testing.T) {
			b, err := fetch(ctx, p)
			if err == nil {
				t.Fatalf("read %q", b)
			}
			if got, want := errors.Is(err, fs.ErrNotExist), p == "missing.json"; got != want {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v", err, got)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := fetch(cctx, "a.json"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch: %v", err)
	}
}
