package compliance

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func known(id string) bool { return strings.HasPrefix(id, "u") }

func TestParseKeepsValidRecords(t *testing.T) {
	body := `{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed","u2":"required","x9":"installed","u3":"broken"}}
{"computer_id":"","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed"}}
not json
{"computer_id":"pc-3","scanned_at":"yesterday","results":{}}

{"computer_id":"pc-4","scanned_at":"2026-11-21T08:00:00+02:00","results":{"u4":"not_required","u5":"unknown"}}
{"computer_id":"pc-5","scanned_at":"2027-01-01T00:00:00Z","results":{}}
`
	p, err := Parse(strings.NewReader(body), true, known, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Scans) != 2 || p.Cells != 4 || p.ErrorCount != 6 {
		t.Fatalf("scans %d cells %d errors %d: %+v", len(p.Scans), p.Cells, p.ErrorCount, p.Errors)
	}
	want := []string{
		`line 1 pc-1 x9: unknown update`, `line 1 pc-1 u3: state "broken"`, `line 2: computer_id is required`,
		`line 3: not a scan object`, `line 4 pc-3: scanned_at "yesterday"`, `line 7 pc-5: scanned_at 2027-01-01T00:00:00Z is in the future`,
	}
	for _, w := range want {
		found := false
		for _, e := range p.Errors {
			got := "line " + itoa(e.Line)
			if e.ComputerID != "" {
				got += " " + e.ComputerID
			}
			if e.UpdateID != "" {
				got += " " + e.UpdateID
			}
			got += ": " + e.Error
			found = found || strings.HasPrefix(got, w)
		}
		if !found {
			t.Errorf("no error %q in %+v", w, p.Errors)
		}
	}
	if p.Scans[1].ScannedAt != time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC) {
		t.Fatalf("scanned_at not normalised to UTC: %v", p.Scans[1].ScannedAt)
	}
	for _, c := range p.Scans[1].Cells {
		if (c.Update == "u4" && c.State != store.StateNotRequired) || (c.Update == "u5" && c.State != store.StateUnknown) {
			t.Fatalf("cells %+v", p.Scans[1].Cells)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestParseSingleObject(t *testing.T) {
	p, err := Parse(strings.NewReader(`{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed"}}`), false, known, now)
	if err != nil || len(p.Scans) != 1 || p.Cells != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{``, `[]`, `{"computer_id":"a","extra":1}`, `{"computer_id":"a"} {"computer_id":"b"}`, `{"computer_id":`} {
		if _, err := Parse(strings.NewReader(bad), false, known, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v, want ErrMalformed", bad, err)
		}
	}
}

func TestParseCapsListedErrors(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 1500; i++ {
		b.WriteString("{}\n")
	}
	p, err := Parse(strings.NewReader(b.String()), true, known, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.ErrorCount != 1500 || len(p.Errors) != maxErrors {
		t.Fatalf("count %d listed %d", p.ErrorCount, len(p.Errors))
	}
}

// FuzzParse: any input either fails as malformed or yields scans whose every cell names a known
// update with a valid state, and counts that add up.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed","x":"required"}}`), true)
	f.Add([]byte(`{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed"}}`), false)
	f.Add([]byte("{}\n\n{\"computer_id\":\"a\"}\nnull\n[1,2]\n"), true)
	f.Add([]byte(`{"computer_id":"pc","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"bogus","u2":"unknown"}}`), true)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		p, err := Parse(strings.NewReader(string(body)), ndjson, known, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		cells := 0
		for _, s := range p.Scans {
			if s.ComputerID == "" || s.ScannedAt.After(now.Add(time.Hour)) {
				t.Fatalf("invalid scan kept: %+v", s)
			}
			for _, c := range s.Cells {
				if !known(c.Update) || c.State > store.StateUnknown {
					t.Fatalf("invalid cell kept: %+v", c)
				}
			}
			cells += len(s.Cells)
		}
		if cells != p.Cells || len(p.Errors) > maxErrors || len(p.Errors) > p.ErrorCount {
			t.Fatalf("counts: cells %d/%d errors %d/%d", cells, p.Cells, len(p.Errors), p.ErrorCount)
		}
	})
}

// TestParseLimits: a body that is not an object, a scan over MaxScanBytes or over
// MaxScanResults refuses the whole submission with a precise error, without reading further.
func TestParseLimits(t *testing.T) {
	const okScan = `{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{"u1":"installed"}}`
	bigString := `{"computer_id":"` + strings.Repeat("a", MaxScanBytes) + `"}`
	var many strings.Builder
	many.WriteString(`{"computer_id":"pc-1","scanned_at":"2026-11-21T08:00:00Z","results":{`)
	for i := 0; i <= MaxScanResults; i++ {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `"u%d":"installed"`, i)
	}
	many.WriteString(`}}`)
	for _, tc := range []struct {
		name   string
		body   string
		ndjson bool
		is     error
		want   string
	}{
		{"null", `null`, false, ErrMalformed, "request body must be a JSON object"},
		{"array", ` [{}]`, false, ErrMalformed, "request body must be a JSON object"},
		{"number", "\n42", false, ErrMalformed, "request body must be a JSON object"},
		{"empty", "  ", false, ErrMalformed, "body is empty"},
		{"object over the byte limit", bigString, false, ErrTooLarge, "the scan exceeds 16777216 bytes"},
		{"line over the byte limit", okScan + "\n" + bigString + "\n" + okScan, true, ErrTooLarge, "line 2: scan too large: a scan exceeds 16777216 bytes"},
		{"too many results", many.String(), false, ErrMalformed, "a scan has 200001 results, limit is 200000"},
		{"too many results on a line", okScan + "\n" + many.String(), true, ErrMalformed, "line 2: a scan has 200001 results, limit is 200000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(strings.NewReader(tc.body), tc.ndjson, known, now)
			if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %+v, %v; want %v containing %q", p, err, tc.is, tc.want)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error echoes the body: %d bytes", len(err.Error()))
			}
		})
	}
	// null and arrays on an NDJSON line reject that line only.
	p, err := Parse(strings.NewReader("null\n[1]\n"+okScan+"\n"), true, known, now)
	if err != nil || len(p.Scans) != 1 || p.ErrorCount != 2 || !strings.Contains(p.Errors[0].Error, "must be a JSON object") {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
	// At the limits exactly, a scan is read.
	pad := strings.Repeat(" ", MaxScanBytes-len(okScan))
	if p, err := Parse(strings.NewReader(okScan+pad), false, known, now); err != nil || len(p.Scans) != 1 {
		t.Fatalf("a scan of exactly MaxScanBytes: %+v, %v", p, err)
	}
}
