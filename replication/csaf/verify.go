package csaf

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"path"
	"strings"
	"unicode"
)

// ErrHashMismatch is matched (with errors.Is) by a *HashError for a digest that differs.
var ErrHashMismatch = errors.New("csaf: hash mismatch")

// HashError reports a document whose hash file is malformed or does not match it.
type HashError struct {
	Name string // the document's path
	Algo string // "sha512" or "sha256"
	// Want and Got are the hex digests of a mismatch; Reason describes a malformed hash file.
	Want, Got string
	Reason    string
}

// Error returns, for a mismatch, "document <name>: sha512 mismatch (want ab12…, got cd34…)".
func (e *HashError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("document %s: malformed .%s file: %s", e.Name, e.Algo, e.Reason)
	}
	return fmt.Sprintf("document %s: %s mismatch (want %s, got %s)", e.Name, e.Algo, abbrev(e.Want), abbrev(e.Got))
}

// Is reports whether target is ErrHashMismatch and e is a mismatch.
func (e *HashError) Is(target error) bool { return target == ErrHashMismatch && e.Reason == "" }

func abbrev(h string) string {
	if len(h) <= 12 {
		return h
	}
	return h[:12] + "…"
}

// VerifyHash checks a document's data against the contents of its .sha512 or .sha256 file;
// algo is "sha512" or "sha256" and name is the document's path, used in errors. The hash file's
// first non-blank line is "<hex>  <filename>", "<hex> *<filename>", "<hex>" or the BSD form
// "SHA512 (<filename>) = <hex>"; hex digits may be in either case. When a filename is given,
// its last element must equal name's. Failures are *HashError values.
func VerifyHash(name string, data, hashFile []byte, algo string) error {
	var h hash.Hash
	switch algo {
	case "sha512":
		h = sha512.New()
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("csaf: unsupported hash algorithm %q (want sha512 or sha256)", algo)
	}
	bad := func(format string, args ...any) error {
		return &HashError{Name: name, Algo: algo, Reason: fmt.Sprintf(format, args...)}
	}
	line := firstLine(hashFile)
	if line == "" {
		return bad("empty")
	}
	digest, file := splitHashLine(line, algo)
	if len(digest) != 2*h.Size() {
		return bad("digest has %d characters, want %d hex digits", len(digest), 2*h.Size())
	}
	want, err := hex.DecodeString(digest)
	if err != nil {
		return bad("digest is not hexadecimal")
	}
	if file != "" && path.Base(file) != path.Base(name) {
		return bad("it names another file, not %q", path.Base(name))
	}
	h.Write(data)
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return &HashError{Name: name, Algo: algo, Want: hex.EncodeToString(want), Got: hex.EncodeToString(got)}
	}
	return nil
}

// firstLine returns the first non-blank line of b, trimmed, without a byte order mark.
func firstLine(b []byte) string {
	s := strings.TrimPrefix(string(b), "\ufeff")
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// splitHashLine splits a hash file line into its digest and the filename it names, if any.
func splitHashLine(line, algo string) (digest, file string) {
	prefix := strings.ToUpper(algo) + " ("
	if rest, ok := strings.CutPrefix(line, prefix); ok {
		if i := strings.LastIndex(rest, ") = "); i >= 0 {
			return strings.TrimSpace(rest[i+4:]), rest[:i]
		}
	}
	i := strings.IndexFunc(line, unicode.IsSpace)
	if i < 0 {
		return line, ""
	}
	file = strings.TrimPrefix(strings.TrimSpace(line[i:]), "*")
	return line[:i], file
}
