package feedgen

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"runtime"
	"testing"
	"time"

	"patchtree/integration/shareddata"
)

// realFeedPath is the real Mozilla feed, or the test is skipped.
func realFeedPath(t testing.TB) string {
	t.Helper()
	return shareddata.Path(t, "catalogs/mozilla-2005-2019.catalog.json")
}

// shape holds per-record measures of a feed document.
type shape struct {
	Bulletins, Updates float64
	BytesPerUpdate     float64 // compact JSON bytes of one update object
	BytesPerBulletin   float64 // compact JSON bytes of one bulletin object
	UpdatesPerBulletin float64 // updates / bulletins
	IDsPerBulletin     float64 // mean update_ids per bulletin
	NamedPerUpdate     float64 // mean bulletins naming an update
	SharedShare        float64 // share of updates named by more than one bulletin
	NeutralShare       float64 // share of language-neutral updates
	Languages          float64 // distinct language values, "" included
}

func measure(t *testing.T, data []byte) shape {
	t.Helper()
	var doc struct{ Bulletins, Updates []json.RawMessage }
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var s shape
	named := map[string]int{}
	for _, raw := range doc.Bulletins {
		var b struct {
			UpdateIDs []string `json:"update_ids"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		s.BytesPerBulletin += float64(len(raw))
		s.IDsPerBulletin += float64(len(b.UpdateIDs))
		for _, id := range b.UpdateIDs {
			named[id]++
		}
	}
	langs := map[string]bool{}
	for _, raw := range doc.Updates {
		var u struct{ Language string }
		if err := json.Unmarshal(raw, &u); err != nil {
			t.Fatal(err)
		}
		s.BytesPerUpdate += float64(len(raw))
		langs[u.Language] = true
		if u.Language == "" {
			s.NeutralShare++
		}
	}
	for _, n := range named {
		s.NamedPerUpdate += float64(n)
		if n > 1 {
			s.SharedShare++
		}
	}
	s.Bulletins, s.Updates = float64(len(doc.Bulletins)), float64(len(doc.Updates))
	s.BytesPerBulletin /= s.Bulletins
	s.IDsPerBulletin /= s.Bulletins
	s.BytesPerUpdate /= s.Updates
	s.NamedPerUpdate /= s.Updates
	s.SharedShare /= s.Updates
	s.NeutralShare /= s.Updates
	s.UpdatesPerBulletin = s.Updates / s.Bulletins
	s.Languages = float64(len(langs))
	return s
}

func TestShapeVsRealFeed(t *testing.T) {
	real, err := os.ReadFile(realFeedPath(t))
	if err != nil {
		t.Fatal(err)
	}
	want := measure(t, real)
	data, st := generate(t, Options{})
	got := measure(t, data)
	t.Logf("real:      %d bytes %+v", len(real), want)
	t.Logf("generated: %d bytes %+v", st.Bytes, got)
	tests := []struct {
		name      string
		got, want float64
		tolerance float64 // relative
	}{
		{"bulletins", got.Bulletins, want.Bulletins, 0},
		{"updates", got.Updates, want.Updates, 0},
		{"language values", got.Languages, want.Languages, 0},
		{"bytes per update", got.BytesPerUpdate, want.BytesPerUpdate, 0.25},
		{"bytes per bulletin", got.BytesPerBulletin, want.BytesPerBulletin, 0.25},
		{"updates per bulletin", got.UpdatesPerBulletin, want.UpdatesPerBulletin, 0.25},
		{"update_ids per bulletin", got.IDsPerBulletin, want.IDsPerBulletin, 0.25},
		{"bulletins naming an update", got.NamedPerUpdate, want.NamedPerUpdate, 0.25},
		{"neutral share", got.NeutralShare, want.NeutralShare, 0.25},
		{"total bytes", float64(st.Bytes), float64(len(real)), 0.25},
	}
	for _, tc := range tests {
		if math.Abs(tc.got-tc.want) > tc.tolerance*tc.want {
			t.Errorf("%s: generated %.4g, real %.4g (tolerance %.0f%%)", tc.name, tc.got, tc.want, 100*tc.tolerance)
		}
	}
}

// counter is an io.Writer that discards and counts.
type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// TestGenerateLarge generates a large feed and decodes it as it streams. 40,000 updates (the
// size of the real Mozilla catalog, about 19 MB) by default: a generator that buffered the feed
// would allocate several times the 4 MiB bound. PATCHTREE_SOAK=1 (make soak) generates 500,000
// updates (about 240 MB), which takes minutes under -race.
func TestGenerateLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large feed skipped in -short mode")
	}
	opts := Options{Updates: 40000, Languages: 30}
	if os.Getenv("PATCHTREE_SOAK") == "1" {
		opts.Updates = 500000
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var n counter
	start := time.Now()
	st, err := Generate(&n, opts)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%+v in %v (%.0f MB/s), %d KiB allocated", st, elapsed, float64(st.Bytes)/1e6/elapsed.Seconds(), alloc>>10)
	if st.Updates != opts.Updates || st.Languages != 30 || st.Bulletins == 0 || st.Bytes != int64(n) {
		t.Errorf("stats %+v, %d bytes written", st, n)
	}
	// Streaming: allocations stay small and do not grow with the feed.
	if alloc > 4<<20 {
		t.Errorf("allocated %d bytes for a %d-byte feed", alloc, st.Bytes)
	}
	checkStream(t, opts, st)
}

// checkStream decodes the feed as it is generated and checks its referential integrity.
func checkStream(t *testing.T, opts Options, st Stats) {
	pr, pw := io.Pipe()
	go func() {
		_, err := Generate(pw, opts)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	dec := json.NewDecoder(pr)
	named := map[string]bool{} // id -> listed in updates
	var bulletins, updates int
	expect := func(want json.Delim) {
		tok, err := dec.Token()
		if err != nil || tok != want {
			t.Fatalf("token %v (%v), want %v", tok, err, want)
		}
	}
	expect('{')
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch key {
		case "bulletins":
			expect('[')
			for ; dec.More(); bulletins++ {
				var b struct {
					UpdateIDs []string `json:"update_ids"`
				}
				if err := dec.Decode(&b); err != nil {
					t.Fatal(err)
				}
				for _, id := range b.UpdateIDs {
					named[id] = false
				}
			}
			expect(']')
		case "updates":
			expect('[')
			for ; dec.More(); updates++ {
				var u struct {
					ID         string
					Supersedes []string
				}
				if err := dec.Decode(&u); err != nil {
					t.Fatal(err)
				}
				listed, ok := named[u.ID]
				if !ok || listed {
					t.Fatalf("update %q: named by no bulletin, or listed twice", u.ID)
				}
				named[u.ID] = true
				for _, s := range u.Supersedes {
					if !named[s] {
						t.Fatalf("update %q supersedes %q, not an earlier update", u.ID, s)
					}
				}
			}
			expect(']')
		default:
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect('}')
	for id, listed := range named {
		if !listed {
			t.Fatalf("bulletin names %q, which is not in updates", id)
		}
	}
	if bulletins != st.Bulletins || updates != st.Updates {
		t.Errorf("decoded %d bulletins and %d updates, stats %+v", bulletins, updates, st)
	}
}

func BenchmarkGenerate500k(b *testing.B) {
	opts := Options{Updates: 500000, Languages: 30}
	st, err := Generate(io.Discard, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(io.Discard, opts); err != nil {
			b.Fatal(err)
		}
	}
}
