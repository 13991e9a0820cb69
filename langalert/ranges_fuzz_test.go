package langalert

import (
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// Known, documented disagreements with x/text (see TestXTextDivergence).
var (
	// x/text accepts more than three extlangs, and ISO 3166 alpha-3 regions after a script.
	xtextLenient = regexp.MustCompile(`(?i)^[a-z]{2,3}((-[a-z]{3}){4}|(-[a-z]{3}){0,3}-[a-z]{4}-[a-z]{3}(-|$))`)
	// x/text rejects 4-8 letter language subtags and applies UTS #35 rules to -t- and -u-.
	xtextStricter = regexp.MustCompile(`(?i)^[a-z]{4}|-[tu]-`)
)

func FuzzParseRange(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseRange(s)
		tagErr := CheckTag(s)

		// Differential check against x/text, outside the known disagreements.
		trimmed := strings.TrimSpace(s)
		_, xerr := language.Parse(trimmed)
		if xerr == nil && err != nil && !strings.ContainsAny(trimmed, "_") && !xtextLenient.MatchString(trimmed) {
			t.Fatalf("x/text accepts %q but ParseRange rejects it: %v", trimmed, err)
		}
		if err == nil && got != "*" && xerr != nil && xerr.Error() == "language: tag is not well-formed" && !xtextStricter.MatchString(got) {
			t.Fatalf("ParseRange accepts %q but x/text reports a syntax error", s)
		}

		if err != nil {
			return
		}
		again, err := ParseRange(got)
		if err != nil || again != got {
			t.Fatalf("ParseRange(%q) = %q, but ParseRange(%q) = %q, %v", s, got, got, again, err)
		}
		if !Covers([]string{got}, got) {
			t.Fatalf("range %q does not cover itself", got)
		}
		if got == "*" {
			return
		}
		if !Match(got, got) || !Match(got, strings.ToUpper(got)) {
			t.Fatalf("range %q does not match itself case-insensitively", got)
		}
		if CheckTag(got) != nil || (s == got && tagErr != nil) {
			t.Fatalf("CheckTag rejects accepted range %q", got)
		}
	})
}
