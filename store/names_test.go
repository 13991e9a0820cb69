package store

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // "" for a valid name
	}{
		{"plain", "berlin-01", ""},
		{"spaces and unicode", "Zürich Büro 東京", ""},
		{"replacement character, as JSON decodes invalid UTF-8", "a\uFFFDb", "is not valid UTF-8 (at byte 1)"},
		{"at the limit", strings.Repeat("a", MaxNameBytes), ""},
		{"empty", "", "site name: is empty"},
		{"over the limit", strings.Repeat("a", MaxNameBytes+1), "site name: is 129 bytes, limit is 128"},
		{"a megabyte", strings.Repeat("a", 1<<20), "is 1048576 bytes, limit is 128"},
		{"newline", "a\nb", "site name: contains the control character U+000A at byte 1"},
		{"NUL", "\x00", "control character U+0000"},
		{"escape", "a\x1b[31m", "control character U+001B"},
		{"DEL", "a\x7f", "control character U+007F"},
		{"C1 control", "a\u0085", "control character U+0085"},
		{"RLO", "abc\u202Efdp.exe", "bidirectional formatting character U+202E at byte 3"},
		{"LRE", "\u202Aa", "U+202A"},
		{"isolate", "a\u2066b", "U+2066"},
		{"PDI", "a\u2069", "U+2069"},
		{"RLM", "a\u200F", "U+200F"},
		{"LRM", "a\u200E", "U+200E"},
		{"ALM", "a\u061C", "U+061C"},
		{"invalid UTF-8", "ab\xff", "is not valid UTF-8 (at byte 2)"},
		{"truncated UTF-8", "ab\xe2\x82", "is not valid UTF-8"},
		{"zero-width space", "a\u200Bb", "non-printable character U+200B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName("site", tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckName(%q): %v", tc.in, err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckName(%q) = %v; want ErrInvalid containing %q", tc.in, err, tc.want)
			case err != nil && len(err.Error()) > 120:
				t.Fatalf("error echoes the name: %q", err)
			}
		})
	}
}
