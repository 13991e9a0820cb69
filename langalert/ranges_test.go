package langalert

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"patchtree/integration/shareddata"
)

func TestParseRange(t *testing.T) {
	valid := []struct{ in, want string }{
		{"de", "de"},
		{"DE", "de"},
		{"pt-br", "pt-BR"},
		{"zh-hant-tw", "zh-Hant-TW"},
		{"sr-Latn", "sr-Latn"},
		{"es-419", "es-419"},
		{"dsb", "dsb"},
		{"ast", "ast"},
		{"*", "*"},
		{"  de-at\t", "de-AT"},
		{"iw", "iw"},                   // no alias mapping
		{"qaa", "qaa"},                 // private-use language, unregistered
		{"xx", "xx"},                   // well-formed, unregistered
		{"ca-valencia", "ca-valencia"}, // Mozilla, variant
		{"de-DE-1996", "de-DE-1996"},
		{"de-1996-1996", "de-1996-1996"}, // duplicate variant: well-formed (only invalid)
		{"zh-min-nan", "zh-min-nan"},     // extlangs are kept, not mapped to "nan"
		{"abc-def-ghi-jkl", "abc-def-ghi-jkl"},
		{"en-us-u-ca-gregory", "en-US-u-ca-gregory"},
		{"en-t-1234", "en-t-1234"}, // x/text rejects (UTS #35 rule), RFC 5646 allows
		{"aaaa", "aaaa"},           // 4-letter language: reserved but well-formed
		{"abcde-DE", "abcde-DE"},   // 5-8 letter language: well-formed
		{"az-latn-x-latn", "az-Latn-x-latn"},
		{"en-ca-x-ca", "en-CA-x-ca"},
		// Private use is well-formed BCP 47 and appears in real feeds (Mozilla's "x-testing"),
		// so it is accepted as a range; it matches only itself and its extensions.
		{"x-private", "x-private"},
		{"X-Testing", "x-testing"},
		// Irregular grandfathered tags are well-formed (RFC 5646 §2.1) and keep registry case.
		{"EN-GB-OED", "en-GB-oed"},
		{"sgn-be-fr", "sgn-BE-FR"},
		{"I-Klingon", "i-klingon"},
	}
	for _, tc := range valid {
		t.Run("valid/"+tc.in, func(t *testing.T) {
			got, err := ParseRange(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseRange(%q) = %q, %v; want %q, nil", tc.in, got, err, tc.want)
			}
		})
	}

	const notWF = "not a well-formed BCP 47 tag"
	invalid := []struct{ in, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"ja-JP-mac", "not a well-formed BCP 47 tag"},
		{"de_DE", `not "_" (want "de-DE")`},
		{"de_DE_mac", `not "_"`},
		{"*-DE", "only basic ranges"},
		{"de-*", "only basic ranges"},
		{"**", "only basic ranges"},
		{"de-", notWF},
		{"-de", notWF},
		{"de--DE", notWF},
		{"1234", notWF},
		{"a", notWF},
		{"x", notWF},
		{"toolongsubtag", notWF},
		{"abcdefghi", notWF},
		{"de DE", notWF},
		{"de,fr", notWF},
		{"dé", notWF},
		{"\u212aa", notWF},        // Kelvin sign, which strings.ToLower maps to "k"
		{"i-\u212alingon", notWF}, // ... and must not reach the grandfathered list
		{"de-DE-DE", notWF},
		{"de-12", notWF},
		{"de-1ab", notWF},
		{"de-x", notWF},
		{"de-a-x-y", notWF},
		{"de-u", notWF},
		{"i-foo", notWF},
		{"de-x-123456789", notWF},
		// Cases x/text accepts (nil error or ValueError) although they are not well-formed.
		{"de-aaa-bbb-ccc-ddd", notWF}, // at most 3 extlangs
		{"zh-Hant-Hant", notWF},       // 4-letter subtag after script
		{"de-419-Latn", notWF},        // script after region
		{"de-DE-abcd", notWF},         // 4-char variant must start with a digit
		{"de-Latn-DEU", notWF},        // regions are 2 letters or 3 digits, not ISO alpha-3
		{"BA-HAnB-Ant", notWF},        // found by the fuzzer
	}
	for _, tc := range invalid {
		t.Run("invalid/"+tc.in, func(t *testing.T) {
			got, err := ParseRange(tc.in)
			if err == nil {
				t.Fatalf("ParseRange(%q) = %q, nil; want error", tc.in, got)
			}
			if !errors.Is(err, ErrInvalidRange) {
				t.Errorf("error %v does not wrap ErrInvalidRange", err)
			}
			prefix := "invalid language range " + strconv.Quote(strings.TrimSpace(tc.in)) + ": "
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.msg) {
				t.Errorf("ParseRange(%q) error = %q; want prefix %q and %q", tc.in, msg, prefix, tc.msg)
			}
		})
	}
}

func TestParseRangeMessage(t *testing.T) {
	_, err := ParseRange("ja-JP-mac")
	want := `invalid language range "ja-JP-mac": not a well-formed BCP 47 tag (want "*" or a tag such as "de" or "pt-BR")`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestParseRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, []string{}},
		{"empty strings", []string{"", " , ,", ","}, []string{}},
		{"comma list", []string{"de,fr"}, []string{"de", "fr"}},
		{"mixed", []string{"pt-br, de", "fr"}, []string{"de", "fr", "pt-BR"}},
		{"dedupe case-insensitive", []string{"de-at", "DE-AT", "de,De"}, []string{"de", "de-AT"}},
		{"sorted", []string{"zh-TW", "en-US", "de"}, []string{"de", "en-US", "zh-TW"}},
		{"star kept with others", []string{"de", "*", " *"}, []string{"*", "de"}},
		{"stray commas", []string{",de,,fr,"}, []string{"de", "fr"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRanges(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseRanges(%q) = %#v; want %#v", tc.in, got, tc.want)
			}
		})
	}
	t.Run("invalid element", func(t *testing.T) {
		got, err := ParseRanges([]string{"de", "fr,ja-JP-mac"})
		if !errors.Is(err, ErrInvalidRange) || !strings.Contains(err.Error(), `"ja-JP-mac"`) || got != nil {
			t.Fatalf("got %v, %v; want error naming ja-JP-mac", got, err)
		}
	})
}

func TestMatch(t *testing.T) {
	tests := []struct {
		rng, tag string
		want     bool
	}{
		{"de", "de", true},
		{"de", "de-DE", true},
		{"de", "DE-at", true},
		{"de", "de-AT", true},
		{"DE", "de-ch", true},
		{"de", "dsb", false},
		{"de", "des", false},
		{"de", "d", false},
		{"de", "", false},
		{"de-DE", "de-DE", true},
		{"de-de", "DE-DE-1996", true},
		{"de-DE", "de", false},
		{"de-DE", "de-AT", false},
		{"de-DE", "de-DEx", false},
		{"ja", "ja-JP-mac", true}, // real tags need not be well-formed
		{"ja-JP", "ja-JP-mac", true},
		{"en", "en-GB", true},
		{"en", "en-US", true},
		{"en", "en-ZA", true},
		{"en-GB", "en-US", false},
		{"*", "", true},
		{"*", "anything", true},
		{"", "", false},
		{"", "-de", false},
		{"k", "\u212a", false}, // Kelvin sign: ASCII-only case folding
	}
	for _, tc := range tests {
		t.Run(tc.rng+"~"+tc.tag, func(t *testing.T) {
			if got := Match(tc.rng, tc.tag); got != tc.want {
				t.Fatalf("Match(%q, %q) = %v; want %v", tc.rng, tc.tag, got, tc.want)
			}
		})
	}
}

func TestMatchAny(t *testing.T) {
	tests := []struct {
		name   string
		ranges []string
		tag    string
		want   bool
	}{
		{"neutral, no ranges", nil, "", true},
		{"neutral", []string{"de"}, "", true},
		{"no ranges", nil, "de", false},
		{"one matches", []string{"fr", "de"}, "de-AT", true},
		{"none matches", []string{"fr", "de"}, "dsb", false},
		{"star", []string{"*"}, "ja-JP-mac", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MatchAny(tc.ranges, tc.tag); got != tc.want {
				t.Fatalf("MatchAny(%q, %q) = %v; want %v", tc.ranges, tc.tag, got, tc.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		parent []string
		child  string
		want   bool
	}{
		{[]string{"*"}, "de", true},
		{[]string{"*"}, "*", true},
		{[]string{"de", "en"}, "*", false},
		{[]string{"de"}, "de", true},
		{[]string{"de"}, "de-AT", true},
		{[]string{"DE"}, "de-at", true},
		{[]string{"de-AT"}, "de", false},
		{[]string{"de-AT", "de-DE"}, "de", false},
		{[]string{"de"}, "dsb", false},
		{[]string{"en"}, "de", false},
		{nil, "de", false},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.parent, ",")+"/"+tc.child, func(t *testing.T) {
			if got := Covers(tc.parent, tc.child); got != tc.want {
				t.Fatalf("Covers(%q, %q) = %v; want %v", tc.parent, tc.child, got, tc.want)
			}
		})
	}
}

func TestUncovered(t *testing.T) {
	tests := []struct {
		name          string
		parent, child []string
		want          []string
	}{
		{"all covered", []string{"de", "en"}, []string{"de-AT", "en", "en-GB"}, nil},
		{"star parent", []string{"*"}, []string{"*", "de"}, nil},
		{"de under en", []string{"en"}, []string{"de"}, []string{"de"}},
		{"de under en reported once", []string{"en"}, []string{"de", "en-US", "DE"}, []string{"de"}},
		{"child order kept", []string{"de-AT"}, []string{"fr", "de-AT", "de", "*"}, []string{"fr", "de", "*"}},
		{"no parent", nil, []string{"de"}, []string{"de"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Uncovered(tc.parent, tc.child); !slices.Equal(got, tc.want) {
				t.Fatalf("Uncovered(%q, %q) = %q; want %q", tc.parent, tc.child, got, tc.want)
			}
		})
	}
}

func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"", "de", "DE-at", "x-testing", "ca-valencia", "zh-Hant-TW", "i-klingon"} {
		if err := CheckTag(tag); err != nil {
			t.Errorf("CheckTag(%q) = %v; want nil", tag, err)
		}
	}
	for _, tag := range []string{"*", "ja-JP-mac", "de_DE", " de", "de-", "de-*"} {
		err := CheckTag(tag)
		if err == nil || !strings.HasPrefix(err.Error(), "invalid language tag ") || !strings.Contains(err.Error(), strings.TrimSpace(tag)) {
			t.Errorf("CheckTag(%q) = %v; want an error naming the tag", tag, err)
		}
	}
}

// TestXTextDivergence records, by experiment, where golang.org/x/text/language.Parse
// (v0.43.0) disagrees with RFC 5646 well-formedness, which is why wellFormed does not
// rely on it. If the x/text verdicts change after an upgrade, revisit that decision.
func TestXTextDivergence(t *testing.T) {
	const (
		ok     = "nil"
		value  = "ValueError"
		syntax = "syntax"
		other  = "other"
	)
	tests := []struct {
		in         string
		wellFormed bool
		xtext      string
	}{
		// Agreement, for reference.
		{"ja-JP-mac", false, syntax},
		{"de--DE", false, syntax},
		{"-de", false, syntax},
		{"de-", false, syntax},
		{"toolongsubtag", false, syntax},
		{"xx", true, value},
		{"de-1234", true, value},
		// x/text more lenient than RFC 5646.
		{"de_DE", false, ok},              // "_" is mapped to "-"
		{"de-aaa-bbb-ccc-ddd", false, ok}, // more than 3 extlangs
		{"zh-Hant-Hant", false, value},    // any 4-8 char subtag in variant position is taken as an unknown variant
		{"de-419-Latn", false, value},     // "
		{"de-DE-abcd", false, value},      // "
		{"de-Latn-DEU", false, ok},        // ISO 3166 alpha-3 region after a script, mapped to "DE"
		{"de-Latn-abc", false, value},     // "
		// x/text stricter than RFC 5646.
		{"aaaa", true, syntax},                       // 4-letter language subtag
		{"abcde", true, syntax},                      // 5-8 letter language subtag
		{"en-t-1234", true, syntax},                  // UTS #35 -t- rules
		{"en-u-ca-gregory-ca-buddhist", true, other}, // UTS #35: repeated -u- key
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := wellFormed(tc.in); got != tc.wellFormed {
				t.Errorf("wellFormed(%q) = %v; want %v", tc.in, got, tc.wellFormed)
			}
			_, err := language.Parse(tc.in)
			var ve language.ValueError
			got := other
			switch {
			case err == nil:
				got = ok
			case errors.As(err, &ve):
				got = value
			case err.Error() == "language: tag is not well-formed":
				got = syntax
			}
			if got != tc.xtext {
				t.Errorf("x/text verdict on %q = %s (%v); recorded %s", tc.in, got, err, tc.xtext)
			}
		})
	}
}

// knownNonBCP47 lists real Mozilla locale codes that are not well-formed BCP 47.
var knownNonBCP47 = []string{"ja-JP-mac"}

func TestRealLocaleCodes(t *testing.T) {
	path := shareddata.Path(t, "locales/languages.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("real data not present: %s", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	var codes map[string]json.RawMessage
	if err := json.Unmarshal(data, &codes); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var good, known int
	for code := range codes {
		rng, err := ParseRange(code)
		switch {
		case slices.Contains(knownNonBCP47, code):
			known++
			if err == nil {
				t.Errorf("%q is listed as non-BCP 47 but ParseRange accepts it", code)
			}
			if CheckTag(code) == nil {
				t.Errorf("CheckTag(%q) = nil; want a warning", code)
			}
		case err != nil:
			t.Errorf("real locale code rejected: %v", err)
		default:
			good++
			if !Match(rng, code) || CheckTag(code) != nil {
				t.Errorf("%q: range %q does not match it or CheckTag fails", code, rng)
			}
		}
	}
	t.Logf("%s: %d codes pass ParseRange, %d known non-BCP 47", path, good, known)
	if good+known < 100 {
		t.Errorf("only %d codes; expected 100+", good+known)
	}
}

func TestRangeLimits(t *testing.T) {
	many := make([]string, MaxRanges+1)
	for i := range many {
		many[i] = fmt.Sprintf("x-r%d", i)
	}
	long := "x-" + strings.Repeat("abcdefgh-", 7) + "a" // 66 bytes, well-formed
	for _, tc := range []struct {
		name string
		in   []string
		want string // "" for success
	}{
		{"at the count limit", many[:MaxRanges], ""},
		{"over the count limit", many, "more than 256 ranges"},
		{"over the limit in one comma list", []string{strings.Join(many, ",")}, "more than 256 ranges"},
		{"75,000 ranges", []string{strings.Repeat("de,", 75000)}, "more than 256 ranges"},
		{"at the byte limit", []string{long[:MaxRangeBytes-1]}, ""},
		{"over the byte limit", []string{long}, "a range of 66 bytes, limit is 64"},
		{"a megabyte range", []string{strings.Repeat("a", 1<<20)}, "limit is 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRanges(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseRanges: %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalidRange) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ParseRanges: %v; want an ErrInvalidRange containing %q", err, tc.want)
			case err != nil && len(err.Error()) > 200:
				t.Fatalf("error echoes the input: %d bytes", len(err.Error()))
			}
		})
	}
}
