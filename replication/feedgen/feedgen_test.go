package feedgen

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

type testBulletin struct {
	ID          string   `json:"id"`
	Vendor      string   `json:"vendor"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Released    string   `json:"released"`
	Revised     string   `json:"revised"`
	Description string   `json:"description"`
	CVEs        []string `json:"cves"`
	UpdateIDs   []string `json:"update_ids"`
}

type testUpdate struct {
	ID              string   `json:"id"`
	Title           string   `json:"title"`
	Language        *string  `json:"language"`
	RestartRequired bool     `json:"restart_required"`
	FileName        string   `json:"file_name"`
	URL             string   `json:"url"`
	CommandLine     string   `json:"command_line"`
	Supersedes      []string `json:"supersedes"`
}

type testFeed struct {
	Format      string         `json:"format"`
	Feed        string         `json:"feed"`
	GeneratedAt string         `json:"generated_at"`
	Bulletins   []testBulletin `json:"bulletins"`
	Updates     []testUpdate   `json:"updates"`
}

func generate(t *testing.T, o Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Generate(&buf, o)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", o, err)
	}
	return buf.Bytes(), st
}

func TestDeterminism(t *testing.T) {
	base := Options{Bulletins: 300, Languages: 30, Seed: 42}
	tests := []struct {
		name string
		a, b Options
		same bool
	}{
		{"defaults", Options{}, Options{}, true},
		{"same options", base, base, true},
		{"seed 0 is seed 1", Options{Bulletins: 100}, Options{Bulletins: 100, Seed: 1}, true},
		{"different seeds", Options{Bulletins: 100, Seed: 1}, Options{Bulletins: 100, Seed: 2}, false},
		{"different feed names", base, Options{Bulletins: 300, Languages: 30, Seed: 42, Feed: "other"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := generate(t, tc.a)
			b, _ := generate(t, tc.b)
			if got := bytes.Equal(a, b); got != tc.same {
				t.Fatalf("outputs equal = %v, want %v (%d vs %d bytes)", got, tc.same, len(a), len(b))
			}
		})
	}
}

// lineOf is an update's product line: its id without the language and the version.
func lineOf(u testUpdate) string {
	id := strings.TrimSuffix(u.ID, "-"+*u.Language)
	return id[:strings.LastIndexByte(id, '-')]
}

func TestValidity(t *testing.T) {
	tests := []struct {
		name   string
		o      Options
		shared bool // some update must be named by several bulletins
	}{
		{"small default languages", Options{Bulletins: 60}, true},
		{"30 languages", Options{Bulletins: 200, Languages: 30, Seed: 7}, true},
		{"all tags, odd feed name", Options{Updates: 3000, Languages: MaxLanguages, Feed: "odd \"name\" \\ é\n"}, true},
		{"few bulletins, many updates", Options{Bulletins: 5, Updates: 20000}, true},
		{"more bulletins than releases", Options{Bulletins: 500, Updates: 50}, true},
		{"one language", Options{Languages: 1, Updates: 777}, true},
		{"one update", Options{Updates: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, st := generate(t, tc.o)
			validate(t, data, tc.o, st, tc.shared)
		})
	}
}

func validate(t *testing.T, data []byte, o Options, st Stats, shared bool) {
	t.Helper()
	var f testFeed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if dec.More() {
		t.Fatal("trailing data after the document")
	}
	wantFeed := cmpOr(o.Feed, "synthetic")
	if f.Format != "patchtree.catalog/v1" || f.Feed != wantFeed {
		t.Errorf("format %q feed %q, want patchtree.catalog/v1 and %q", f.Format, f.Feed, wantFeed)
	}
	genAt, err := time.Parse(time.RFC3339, f.GeneratedAt)
	if err != nil {
		t.Errorf("generated_at: %v", err)
	}
	if st.Bytes != int64(len(data)) || st.Bulletins != len(f.Bulletins) || st.Updates != len(f.Updates) {
		t.Errorf("stats %+v, document has %d bytes, %d bulletins, %d updates", st, len(data), len(f.Bulletins), len(f.Updates))
	}
	if o.Updates > 0 && st.Updates != o.Updates {
		t.Errorf("%d updates, want %d", st.Updates, o.Updates)
	}
	if o.Bulletins > 0 && st.Bulletins != o.Bulletins {
		t.Errorf("%d bulletins, want %d", st.Bulletins, o.Bulletins)
	}
	nLang := cmpOr(o.Languages, defLanguages)
	allowed := map[string]bool{"": true}
	for _, tg := range tagList[:nLang] {
		allowed[tg.name] = true
	}
	sevs := map[string]bool{}
	for _, s := range severities {
		sevs[s.name] = true
	}

	index := map[string]int{} // update id -> position
	langs := map[string]bool{}
	successor := map[string]string{}
	for i, u := range f.Updates {
		if _, dup := index[u.ID]; dup {
			t.Fatalf("duplicate update id %q", u.ID)
		}
		index[u.ID] = i
		if u.Title == "" || u.Language == nil {
			t.Fatalf("update %q: empty title or missing language", u.ID)
		}
		if !allowed[*u.Language] {
			t.Fatalf("update %q: language %q not among the first %d tags", u.ID, *u.Language, nLang)
		}
		if *u.Language != "" {
			langs[*u.Language] = true
		}
		for _, s := range u.Supersedes {
			j, ok := index[s]
			if !ok {
				t.Fatalf("update %q supersedes %q, not an earlier update", u.ID, s)
			}
			p := f.Updates[j]
			if *p.Language != *u.Language || lineOf(p) != lineOf(u) {
				t.Fatalf("update %q supersedes %q across languages or product lines", u.ID, s)
			}
			if prev, ok := successor[s]; ok {
				t.Fatalf("%q superseded by both %q and %q", s, prev, u.ID)
			}
			successor[s] = u.ID
		}
	}
	if len(langs) != st.Languages || len(langs) > nLang {
		t.Errorf("%d distinct tags, stats say %d, asked for %d", len(langs), st.Languages, nLang)
	}

	named := make([]int, len(f.Updates))
	ids := map[string]bool{}
	last := ""
	for _, b := range f.Bulletins {
		if ids[b.ID] {
			t.Fatalf("duplicate bulletin id %q", b.ID)
		}
		ids[b.ID] = true
		if b.Title == "" || b.Vendor == "" || b.Description == "" || !sevs[b.Severity] {
			t.Fatalf("bulletin %q: title %q vendor %q severity %q", b.ID, b.Title, b.Vendor, b.Severity)
		}
		d, err := time.Parse(time.DateOnly, b.Released)
		if err != nil || b.Revised != b.Released || b.Released < last || !d.Before(genAt) {
			t.Fatalf("bulletin %q: released %q revised %q after %q, generated %s", b.ID, b.Released, b.Revised, last, f.GeneratedAt)
		}
		last = b.Released
		if len(b.UpdateIDs) == 0 {
			t.Fatalf("bulletin %q names no update", b.ID)
		}
		seen := map[string]bool{}
		for _, id := range b.UpdateIDs {
			i, ok := index[id]
			if !ok || seen[id] {
				t.Fatalf("bulletin %q: dangling or repeated update id %q", b.ID, id)
			}
			seen[id] = true
			named[i]++
		}
	}
	if i := slices.Index(named, 0); i >= 0 {
		t.Errorf("update %q is named by no bulletin", f.Updates[i].ID)
	}
	if shared && slices.Max(named) < 2 {
		t.Error("no update is shared by several bulletins")
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func TestLanguages(t *testing.T) {
	tests := []struct {
		n       int
		wantErr bool
	}{
		{-1, true}, {1, false}, {30, false}, {0, false}, {MaxLanguages, false}, {MaxLanguages + 1, true},
	}
	// 15,000 updates are enough for every one of MaxLanguages tags to occur (8,000 are).
	for _, tc := range tests {
		st, err := Generate(io.Discard, Options{Languages: tc.n, Updates: 15000})
		if (err != nil) != tc.wantErr {
			t.Fatalf("Languages %d: err %v, want error %v", tc.n, err, tc.wantErr)
		}
		if err == nil && st.Languages != cmpOr(tc.n, defLanguages) {
			t.Errorf("Languages %d: %d tags in the feed", tc.n, st.Languages)
		}
	}
	// The 30 most frequent real tags, region, three-letter and two-letter ones side by side.
	m := newModel(30)
	var got []string
	for _, i := range m.locales[ffKind] {
		got = append(got, tagList[i].name)
	}
	for _, want := range []string{"de", "dsb", "hsb", "es-ES", "en-US", "bn-BD", "hy-AM"} {
		if !slices.Contains(got, want) {
			t.Errorf("30 languages %v lack %q", got, want)
		}
	}
	if tagList[MaxLanguages-2].name != "ja-JP-mac" || !slices.Contains(newModel(defLanguages).locales[ffKind], uint8(MaxLanguages-2)) {
		t.Error("the default languages must include ja-JP-mac")
	}
}
