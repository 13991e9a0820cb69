package store

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds a name: of a site, a child, a token, a policy or a folder.
const MaxNameBytes = 128

// CheckName applies the one rule for names that people read in lists, logs and audit entries:
// not empty, at most MaxNameBytes bytes, valid UTF-8 (and no U+FFFD, which JSON decoding puts
// in place of invalid UTF-8), and only printable characters, so no
// control characters and no bidirectional overrides, embeddings, isolates or marks (which can
// make a name display as another). what says whose name it is ("child", "site", ...). The error
// reads "<what> name: <reason>", wraps ErrInvalid, and never echoes the name.
func CheckName(what, name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("%s name: %s: %w", what, reason, ErrInvalid)
	}
	return nil
}

// nameProblem says what is wrong with a name, or "" if nothing is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("is %d bytes, limit is %d", len(name), MaxNameBytes)
	}
	for i, r := range name {
		switch {
		case r == utf8.RuneError:
			// Also U+FFFD itself: encoding/json puts it in place of invalid UTF-8.
			return fmt.Sprintf("is not valid UTF-8 (at byte %d)", i)
		case isBidiControl(r):
			return fmt.Sprintf("contains the bidirectional formatting character U+%04X at byte %d", r, i)
		case unicode.IsControl(r):
			return fmt.Sprintf("contains the control character U+%04X at byte %d", r, i)
		case !unicode.IsPrint(r):
			return fmt.Sprintf("contains the non-printable character U+%04X at byte %d", r, i)
		}
	}
	return ""
}

// isBidiControl reports the characters that change the direction text is displayed in:
// the marks LRM, RLM and ALM, the embeddings and overrides U+202A–U+202E and the isolates
// U+2066–U+2069.
func isBidiControl(r rune) bool {
	return r == 0x200E || r == 0x200F || r == 0x061C || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
