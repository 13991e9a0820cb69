package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"unicode/utf8"

	"patchtree/store"
)

// A row's Hash is the hex SHA-256 of a JSON document that encoding/json made in the first
// releases: stored rows keep their hashes, and a re-import compares against them, so the bytes
// must stay exactly what encoding/json writes. The appenders below write those bytes by hand:
// json.Marshal's reflection was 0.85 s of a 500k import's parse, which is its critical path.
// TestRowHashJSONIsEncodingJSON and FuzzRowHashJSON hold them to json.Marshal.

// hashBuffers are the JSON documents being hashed, reused.
var hashBuffers = sync.Pool{New: func() any { return new([]byte) }}

// hashUpdateRow sets row.Hash for an update row and returns the hashed JSON's length (its
// size estimate for batching): the JSON of {"C": content, "F": feed, "S": superseded}.
func hashUpdateRow(row *store.Update) int {
	return hashJSON(&row.Hash, func(b []byte) []byte {
		b = append(b, `{"C":`...)
		b = appendUpdateContent(b, &row.UpdateContent)
		b = append(b, `,"F":`...)
		b = appendJSONString(b, row.Feed)
		b = append(b, `,"S":`...)
		b = strconv.AppendBool(b, row.Superseded)
		return append(b, '}')
	})
}

// hashBulletinRow sets row.Hash for a bulletin row and returns the hashed JSON's length: the
// JSON of {"C": content, "T": update tags, "F": feed}.
func hashBulletinRow(row *store.Bulletin) int {
	return hashJSON(&row.Hash, func(b []byte) []byte {
		b = append(b, `{"C":`...)
		b = appendBulletinContent(b, &row.BulletinContent)
		b = append(b, `,"T":`...)
		b = appendJSONStrings(b, row.UpdateTags)
		b = append(b, `,"F":`...)
		b = appendJSONString(b, row.Feed)
		return append(b, '}')
	})
}

func hashJSON(dst *string, write func([]byte) []byte) int {
	pooled := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(pooled)
	buf := write((*pooled)[:0])
	*pooled = buf
	sum := sha256.Sum256(buf)
	*dst = hex.EncodeToString(sum[:])
	return len(buf)
}

// appendUpdateContent is json.Marshal of store.UpdateContent: its fields in order, the
// omitempty ones left out when empty.
func appendUpdateContent(b []byte, u *store.UpdateContent) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, u.ID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, u.Title)
	b = append(b, `,"language":`...)
	b = appendJSONString(b, u.Language)
	b = appendOmitEmpty(b, "file_name", u.FileName)
	b = appendOmitEmpty(b, "url", u.URL)
	if u.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, u.Size, 10)
	}
	b = appendOmitEmpty(b, "sha256", u.SHA256)
	b = appendOmitEmpty(b, "command_line", u.CommandLine)
	if u.RestartRequired {
		b = append(b, `,"restart_required":true`...)
	}
	if len(u.Supersedes) > 0 {
		b = append(b, `,"supersedes":`...)
		b = appendJSONStrings(b, u.Supersedes)
	}
	return append(b, '}')
}

// appendBulletinContent is json.Marshal of store.BulletinContent.
func appendBulletinContent(b []byte, c *store.BulletinContent) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = appendOmitEmpty(b, "vendor", c.Vendor)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, c.Title)
	b = appendOmitEmpty(b, "severity", c.Severity)
	b = appendOmitEmpty(b, "released", c.Released)
	b = appendOmitEmpty(b, "revised", c.Revised)
	b = appendOmitEmpty(b, "description", c.Description)
	if len(c.CVEs) > 0 {
		b = append(b, `,"cves":`...)
		b = appendJSONStrings(b, c.CVEs)
	}
	b = append(b, `,"update_ids":`...)
	b = appendJSONStrings(b, c.UpdateIDs)
	return append(b, '}')
}

func appendOmitEmpty(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

// appendJSONStrings is json.Marshal of a []string: null when nil.
func appendJSONStrings(b []byte, l []string) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with its default HTML escaping: '<', '>'
// and '&' as \u00XX, control bytes escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
