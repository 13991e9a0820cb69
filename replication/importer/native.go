package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"patchtree/store"
)

// FormatNative is the format tag of the native feed.
const FormatNative = "patchtree.catalog/v1"

// ErrBadFeed is wrapped by every error about a feed's content.
var ErrBadFeed = errors.New("bad feed")

// FeedHeader is the top-level metadata of a native feed.
type FeedHeader struct {
	Format      string
	Feed        string
	GeneratedAt string
}

// FeedHandler receives a native feed's records as they are parsed.
type FeedHandler interface {
	Bulletin(b *store.BulletinContent) error
	Update(u *store.UpdateContent) error
}

// ParseNative parses a patchtree.catalog/v1 document as a stream, handing each record to h as
// soon as it is decoded, so memory does not grow with the feed beyond what h keeps. It checks
// the format tag, dates, ids (present, unique) and that every bulletin's update_ids name an
// update of the feed. records counts decoded records, for progress. The JSON limits of
// jsonlimits.go (one token, one record, depth, keys, unknown fields) bound what it holds.
func ParseNative(r io.Reader, h FeedHandler, records func()) (*FeedHeader, error) {
	return parseNative(r, h, records, feedDefaults)
}

// parseNative is ParseNative with the given limits.
func parseNative(r io.Reader, h FeedHandler, records func(), lim feedLimits) (*FeedHeader, error) {
	p := &nativeParser{
		dec: json.NewDecoder(newJSONLimiter(r, lim)), h: h, records: records, maxUnknown: lim.fields,
		updates: map[string]struct{}{}, bulletins: map[string]struct{}{}, pending: map[string]int{},
	}
	hdr, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFeed, p.locate(err))
	}
	return hdr, nil
}

type nativeParser struct {
	dec     *json.Decoder
	h       FeedHandler
	records func()

	updates    map[string]struct{} // every update id seen
	bulletins  map[string]struct{}
	pending    map[string]int // update id referenced before it was seen → index of the first referring bulletin
	nBull      int
	nUpd       int
	unknown    int // top-level fields skipped
	maxUnknown int
}

// locate adds the byte offset to decoder errors.
func (p *nativeParser) locate(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d", syn.Offset) // the message would quote the input
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("feed is truncated at byte %d", p.dec.InputOffset())
	}
	return err
}

func (p *nativeParser) parse() (*FeedHeader, error) {
	hdr := &FeedHeader{}
	if err := p.expectDelim('{', "the feed must be a JSON object"); err != nil {
		return nil, err
	}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		switch key {
		case "format":
			err = p.decodeString(key, &hdr.Format)
			if err == nil && hdr.Format != FormatNative {
				return nil, fmt.Errorf("\"format\" is not %q", FormatNative)
			}
		case "feed":
			err = p.decodeString(key, &hdr.Feed)
		case "generated_at":
			if err = p.decodeString(key, &hdr.GeneratedAt); err == nil && hdr.GeneratedAt != "" {
				_, err = normDate("generated_at", hdr.GeneratedAt)
			}
		case "bulletins":
			err = p.eachRecord(key, p.bulletin)
		case "updates":
			err = p.eachRecord(key, p.update)
		default:
			if p.unknown++; p.unknown > p.maxUnknown {
				return nil, &LimitError{"an unknown field", p.dec.InputOffset(), int64(p.maxUnknown), "unknown fields"}
			}
			err = p.skipValue()
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.expectDelim('}', "feed object not closed"); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the feed object at byte %d", p.dec.InputOffset())
	}
	switch {
	case hdr.Format == "":
		return nil, fmt.Errorf("feed has no \"format\" (want %q)", FormatNative)
	case hdr.Feed == "":
		return nil, errors.New("feed has no \"feed\" name")
	}
	first := -1
	for _, i := range p.pending {
		if first < 0 || i < first {
			first = i
		}
	}
	if first >= 0 {
		return nil, fmt.Errorf("bulletins[%d] names an update the feed does not contain (%d dangling update_ids in all)", first, len(p.pending))
	}
	return hdr, nil
}

// skipValue reads past one value of a field the parser does not know, token by token, so that
// it is never held whole.
func (p *nativeParser) skipValue() error {
	depth := 0
	for {
		tok, err := p.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func (p *nativeParser) expectDelim(want json.Delim, msg string) error {
	tok, err := p.dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s (found %s at byte %d)", msg, tokenKind(tok), p.dec.InputOffset())
	}
	return nil
}

func (p *nativeParser) decodeString(key string, dst *string) error {
	err := p.dec.Decode(dst)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q at byte %d: want a string, not %s", key, te.Offset, valueKind(te.Value))
	}
	return err
}

// eachRecord decodes the array under key one element at a time.
func (p *nativeParser) eachRecord(key string, fn func(i int) error) error {
	if err := p.expectDelim('[', fmt.Sprintf("%q must be an array", key)); err != nil {
		return err
	}
	for i := 0; p.dec.More(); i++ {
		if err := fn(i); err != nil {
			return err
		}
		if p.records != nil {
			p.records()
		}
	}
	return p.expectDelim(']', fmt.Sprintf("%q array not closed", key))
}

func (p *nativeParser) bulletin(i int) error {
	var b store.BulletinContent
	if err := p.dec.Decode(&b); err != nil {
		return typeError(fmt.Sprintf("bulletins[%d]", i), err)
	}
	if b.ID == "" {
		return fmt.Errorf("bulletins[%d] has no id", i)
	}
	if _, dup := p.bulletins[b.ID]; dup {
		return fmt.Errorf("bulletins[%d]: its id appears twice", i)
	}
	p.bulletins[b.ID] = struct{}{}
	var err error
	if b.Released, err = normDate(fmt.Sprintf("bulletins[%d].released", i), b.Released); err != nil {
		return err
	}
	if b.Revised, err = normDate(fmt.Sprintf("bulletins[%d].revised", i), b.Revised); err != nil {
		return err
	}
	for _, u := range b.UpdateIDs {
		if _, seen := p.updates[u]; !seen {
			if _, already := p.pending[u]; !already {
				p.pending[u] = i
			}
		}
	}
	p.nBull++
	return p.h.Bulletin(&b)
}

func (p *nativeParser) update(i int) error {
	var u store.UpdateContent
	if err := p.dec.Decode(&u); err != nil {
		return typeError(fmt.Sprintf("updates[%d]", i), err)
	}
	if u.ID == "" {
		return fmt.Errorf("updates[%d] has no id", i)
	}
	if _, dup := p.updates[u.ID]; dup {
		return fmt.Errorf("updates[%d]: its id appears twice", i)
	}
	if u.Size < 0 {
		return fmt.Errorf("updates[%d]: size is negative", i)
	}
	p.updates[u.ID] = struct{}{}
	delete(p.pending, u.ID)
	p.nUpd++
	return p.h.Update(&u)
}

// typeError explains a decode failure of one value by its position and the kinds involved,
// never by the value itself (a feed's content is not repeated in errors).
func typeError(where string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return fmt.Errorf("%s must be a JSON object, not %s", where, valueKind(te.Value))
		}
		return fmt.Errorf("%s: field %q at byte %d: want %s, not %s", where, field, te.Offset, wantKind(te.Type), valueKind(te.Value))
	}
	return err
}

// valueKind is the JSON kind of an UnmarshalTypeError's Value ("number 1e999" → "number").
func valueKind(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	return kind
}

// tokenKind names the kind of a JSON token without its value.
func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a value"
}

// wantKind describes the Go type a JSON value was decoded into, as a JSON kind.
func wantKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// normDate accepts "YYYY-MM-DD" (kept) or an RFC 3339 time (converted to UTC, second precision).
func normDate(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return s, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if y := t.UTC().Year(); err != nil || y < 1 || y > 9999 {
		return "", fmt.Errorf("%s is not a date (YYYY-MM-DD) or an RFC 3339 time", field)
	}
	return t.UTC().Format("2006-01-02T15:04:05Z"), nil
}
