package csaf

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestVerifyHash(t *testing.T) {
	const name = "2017/icsa-17-010-01a.json"
	data := []byte(`{"document":{}}`)
	s512 := sha512.Sum512(data)
	s256 := sha256.Sum256(data)
	h512, h256 := hex.EncodeToString(s512[:]), hex.EncodeToString(s256[:])
	other := sha512.Sum512([]byte("other"))
	hOther := hex.EncodeToString(other[:])

	tests := []struct {
		name, file, algo string
		want             string // "" = success
	}{
		{"two spaces", h512 + "  icsa-17-010-01a.json\n", "sha512", ""},
		{"binary marker", h512 + " *icsa-17-010-01a.json\r\n", "sha512", ""},
		{"bare upper-case digest", "\n" + strings.ToUpper(h512), "sha512", ""},
		{"BSD form", "SHA512 (icsa-17-010-01a.json) = " + h512 + "\n", "sha512", ""},
		{"sha256 with path", h256 + "  2017/icsa-17-010-01a.json", "sha256", ""},
		{"mismatch", hOther + "  icsa-17-010-01a.json\n", "sha512",
			"document 2017/icsa-17-010-01a.json: sha512 mismatch (want " + hOther[:12] + "…, got " + h512[:12] + "…)"},
		{"sha256 digest in sha512 file", h256, "sha512",
			"document 2017/icsa-17-010-01a.json: malformed .sha512 file: digest has 64 characters, want 128 hex digits"},
		{"not hex", strings.Repeat("zz", 64), "sha512",
			"document 2017/icsa-17-010-01a.json: malformed .sha512 file: digest is not hexadecimal"},
		{"names another file", h512 + "  icsa-17-012-01.json", "sha512",
			`document 2017/icsa-17-010-01a.json: malformed .sha512 file: it names another file, not "icsa-17-010-01a.json"`},
		{"empty", " \n\n", "sha256", "document 2017/icsa-17-010-01a.json: malformed .sha256 file: empty"},
		{"unknown algorithm", h512, "md5", `csaf: unsupported hash algorithm "md5" (want sha512 or sha256)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyHash(name, data, []byte(tc.file), tc.algo)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case err != nil && err.Error() != tc.want:
				t.Errorf("error = %q\n want %q", err, tc.want)
			}
			if got, want := errors.Is(err, ErrHashMismatch), tc.name == "mismatch"; got != want {
				t.Errorf("errors.Is(err, ErrHashMismatch) = %v", got)
			}
		})
	}
}
