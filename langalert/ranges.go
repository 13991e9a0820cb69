package langalert

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidRange is wrapped by every range validation error.
var ErrInvalidRange = errors.New("invalid language range")

const rangeHint = ` (want "*" or a tag such as "de" or "pt-BR")`

// MaxRanges bounds the language ranges of one site (after splitting comma-separated elements,
// before removing duplicates): every range is matched against every language tag of the
// catalog and every parent range, so a report's cost grows with it.
const MaxRanges = 256

// MaxRangeBytes bounds one range. The longest registered tags are about 30 bytes.
const MaxRangeBytes = 64

// ParseRange validates one managed language range: "*" or a well-formed BCP 47 language tag
// (RFC 5646 syntax) used as an RFC 4647 basic range. It trims spaces and returns the range in
// canonical case (primary language lower case, 4-letter script Title case, 2-letter region upper case,
// everything else lower case; "*" stays "*"). It does NOT otherwise canonicalize (no alias mapping,
// "iw" stays "iw"). Well-formed but unregistered subtags (e.g. "qaa", "xx") are accepted: validity
// against the IANA registry is not required, only well-formedness.
//
// Private-use tags ("x-testing") and RFC 5646 grandfathered tags ("i-klingon") are well-formed and
// therefore accepted. Underscores ("de_DE") and extended-range wildcards ("*-DE", "de-*") are rejected.
func ParseRange(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) > MaxRangeBytes:
		// Not echoed: the range may be megabytes.
		return "", fmt.Errorf("%w: a range of %d bytes, limit is %d", ErrInvalidRange, len(s), MaxRangeBytes)
	case s == "*":
		return s, nil
	case s == "":
		return "", fmt.Errorf("%w %q: empty"+rangeHint, ErrInvalidRange, s)
	case strings.Contains(s, "*"):
		return "", fmt.Errorf(`%w %q: only basic ranges are supported, "*" must stand alone`, ErrInvalidRange, s)
	}
	if msg := syntaxProblem(s, rangeHint); msg != "" {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidRange, s, msg)
	}
	return canonicalCase(s), nil
}

// ParseRanges validates a list; each element may itself be a comma-separated list ("de,fr").
// Empty elements from stray commas/spaces are ignored. Duplicates (case-insensitive) are removed.
// The result is sorted (byte order of canonical form) so equal sets compare equal. An empty input
// yields an empty, non-nil slice. "*" together with other ranges is allowed and kept.
// It returns the error for the first invalid element, and an error when there are more than
// MaxRanges ranges (counted before removing duplicates, and checked before any is parsed).
func ParseRanges(in []string) ([]string, error) {
	out := []string{}
	n := 0
	for _, elem := range in {
		for s := range strings.SplitSeq(elem, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			if n++; n > MaxRanges {
				return nil, fmt.Errorf("%w: more than %d ranges, limit is %d per site", ErrInvalidRange, MaxRanges, MaxRanges)
			}
			r, err := ParseRange(s)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Match reports whether basic range rng matches tag (RFC 4647 §3.3.1, case-insensitive):
// "*" matches every tag including ""; otherwise rng matches tag when they are equal or tag starts
// with rng followed by "-". "de" matches "de", "de-DE", "de-AT" but not "dsb" or "des"; "de-DE"
// matches only "de-DE" (and its extensions such as "de-DE-1996"). Tags need not be well-formed.
// Case folding is ASCII-only, as in BCP 47; an empty rng matches nothing.
func Match(rng, tag string) bool {
	switch {
	case rng == "*":
		return true
	case rng == "" || len(tag) < len(rng):
		return false
	case len(tag) > len(rng) && tag[len(rng)] != '-':
		return false
	}
	return asciiEqualFold(rng, tag[:len(rng)])
}

// MatchAny reports whether an update with language tag belongs to a site managing ranges:
// language-neutral updates (tag == "") always do; otherwise any range must Match.
func MatchAny(ranges []string, tag string) bool {
	if tag == "" {
		return true
	}
	return slices.ContainsFunc(ranges, func(r string) bool { return Match(r, tag) })
}

// Covers reports whether the parent's ranges cover a child's range: every tag the child range
// matches is matched by some parent range. "*" in parent covers everything; a child "*" is covered
// only by a parent "*"; parent "de" covers child "de" and "de-AT"; parent "de-AT" does not cover "de".
func Covers(parent []string, child string) bool {
	// A basic range matches itself and its extensions, so the child is covered exactly when a
	// parent range matches the child range read as a tag ("*" aside, which only "*" covers).
	if child == "*" {
		return slices.Contains(parent, "*")
	}
	return slices.ContainsFunc(parent, func(p string) bool { return Match(p, child) })
}

// Uncovered returns the child's ranges that the parent's ranges do not cover, in the child's order.
// Each uncovered range is reported once (duplicates compared case-insensitively); the result is
// nil when the parent covers every child range.
func Uncovered(parent, child []string) []string {
	var out []string
	for _, c := range child {
		if !Covers(parent, c) && !slices.ContainsFunc(out, func(o string) bool { return asciiEqualFold(o, c) }) {
			out = append(out, c)
		}
	}
	return out
}

// CheckTag reports whether tag is a well-formed BCP 47 language tag; "" (neutral) is fine. It is for
// import warnings: callers keep the tag verbatim either way. Its errors do not wrap ErrInvalidRange,
// and "*" is not a tag.
func CheckTag(tag string) error {
	if tag == "" {
		return nil
	}
	if msg := syntaxProblem(tag, ""); msg != "" {
		return fmt.Errorf("invalid language tag %q: %s", tag, msg)
	}
	return nil
}

// syntaxProblem returns why s is not a well-formed BCP 47 tag, or "" if it is. hint is
// appended unless a corrected spelling can be suggested instead.
func syntaxProblem(s, hint string) string {
	const underscore = `subtags are separated by "-", not "_"`
	switch {
	case !strings.Contains(s, "_"):
		if !wellFormed(s) {
			return "not a well-formed BCP 47 tag" + hint
		}
		return ""
	case wellFormed(strings.ReplaceAll(s, "_", "-")):
		return fmt.Sprintf("%s (want %q)", underscore, canonicalCase(strings.ReplaceAll(s, "_", "-")))
	default:
		return underscore + hint
	}
}

// irregular lists the irregular grandfathered tags of RFC 5646 §2.1, the only well-formed tags
// outside the langtag and privateuse productions (the regular ones, e.g. "zh-min-nan", fit langtag).
var irregular = map[string]bool{
	"en-gb-oed": true, "i-ami": true, "i-bnn": true, "i-default": true, "i-enochian": true,
	"i-hak": true, "i-klingon": true, "i-lux": true, "i-mingo": true, "i-navajo": true,
	"i-pwn": true, "i-tao": true, "i-tay": true, "i-tsu": true,
	"sgn-be-fr": true, "sgn-be-nl": true, "sgn-ch-de": true,
}

// wellFormed reports whether s matches the Language-Tag production of RFC 5646 §2.1:
//
//	langtag    = language ["-" script] ["-" region] *("-" variant) *("-" extension) ["-" privateuse]
//	language   = 2*3ALPHA ["-" extlang] / 4ALPHA / 5*8ALPHA
//	extlang    = 3ALPHA *2("-" 3ALPHA)
//	script     = 4ALPHA
//	region     = 2ALPHA / 3DIGIT
//	variant    = 5*8alphanum / (DIGIT 3alphanum)
//	extension  = singleton 1*("-" (2*8alphanum))   ; singleton: any alphanum but "x"
//	privateuse = "x" 1*("-" (1*8alphanum))
//
// golang.org/x/text/language.Parse is not used because its verdict differs from well-formedness
// in both directions (see TestXTextDivergence).
func wellFormed(s string) bool {
	// Check for ASCII first: strings.ToLower maps e.g. the Kelvin sign U+212A to "k".
	if !all(s, func(c byte) bool { return isAlnum(c) || c == '-' }) {
		return false
	}
	lower := strings.ToLower(s)
	if irregular[lower] {
		return true
	}
	sub := strings.Split(lower, "-")
	for _, t := range sub {
		if len(t) < 1 || len(t) > 8 {
			return false
		}
	}
	if sub[0] == "x" {
		return len(sub) > 1 // privateuse
	}
	if len(sub[0]) < 2 || !all(sub[0], isAlpha) {
		return false
	}
	i := 1
	if len(sub[0]) <= 3 {
		for n := 0; n < 3 && i < len(sub) && len(sub[i]) == 3 && all(sub[i], isAlpha); n++ {
			i++ // extlang
		}
	}
	if i < len(sub) && len(sub[i]) == 4 && all(sub[i], isAlpha) {
		i++ // script
	}
	if i < len(sub) && (len(sub[i]) == 2 && all(sub[i], isAlpha) || len(sub[i]) == 3 && all(sub[i], isDigit)) {
		i++ // region
	}
	for i < len(sub) && (len(sub[i]) >= 5 || len(sub[i]) == 4 && isDigit(sub[i][0])) {
		i++ // variant
	}
	for i < len(sub) && len(sub[i]) == 1 && sub[i] != "x" {
		j := i + 1
		for j < len(sub) && len(sub[j]) >= 2 {
			j++
		}
		if j == i+1 {
			return false // extension without subtags
		}
		i = j
	}
	if i < len(sub) && sub[i] == "x" {
		return i+1 < len(sub) // privateuse takes the rest; subtags were checked above
	}
	return i == len(sub)
}

// canonicalCase applies the RFC 5646 §2.1.1 case conventions to a well-formed tag: lower case,
// except that 2-letter subtags are upper case and 4-letter subtags Title case when they neither
// start the tag nor follow a singleton.
func canonicalCase(s string) string {
	sub := strings.Split(strings.ToLower(s), "-")
	for i := 1; i < len(sub) && len(sub[i-1]) != 1; i++ {
		switch len(sub[i]) {
		case 2:
			sub[i] = strings.ToUpper(sub[i])
		case 4:
			sub[i] = strings.ToUpper(sub[i][:1]) + sub[i][1:]
		}
	}
	return strings.Join(sub, "-")
}

func all(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
