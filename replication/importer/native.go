package importer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// feedNamer is a FeedHandler that wants the feed's name as soon as it is parsed, before the
// records that follow it.
type feedNamer interface {
	FeedName(name string) error
}

// ParseNative parses a patchtree.catalog/v1 document as a stream, handing each record to h as
// soon as it is decoded, so memory does not grow with the feed beyond what h keeps. It checks
// the format tag, dates, ids (present, unique) and that every bulletin's update_ids name an
// update of the feed. records counts decoded records, for progress. The JSON limits of
// jsonlimits.go (one token, one record, depth, keys, unknown fields) bound what it holds.
//
// The JSON is read with the json v2 packages (github.com/go-json-experiment/json): its streaming
// decoder took 1.4 s where encoding/json took 3.2 s for the records of a 500k-update feed. It is
// stricter than encoding/json: a key twice in one object and invalid UTF-8 are malformed JSON.
func ParseNative(r io.Reader, h FeedHandler, records func()) (*FeedHeader, error) {
	return parseNative(r, h, records, feedDefaults)
}

// decodeOptions are encoding/json's matching of field names, which feeds were written against.
var decodeOptions = json.MatchCaseInsensitiveNames(true)

// parseNative is ParseNative with the given limits.
func parseNative(r io.Reader, h FeedHandler, records func(), lim feedLimits) (*FeedHeader, error) {
	p := &nativeParser{
		dec: jsontext.NewDecoder(newJSONLimiter(r, lim)), h: h, records: records, maxUnknown: lim.fields,
		ids: map[string]updateRef{}, bulletins: map[string]struct{}{},
	}
	hdr, err := p.parse()
	if errors.Is(err, errStagingStopped) {
		return nil, err // the import's staging stopped the parse, not the feed
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFeed, p.locate(err))
	}
	return hdr, nil
}

type nativeParser struct {
	dec     *jsontext.Decoder
	h       FeedHandler
	records func()

	// ids has every update id seen, in an update or a bulletin's update_ids. Its key is the one
	// copy of the id that the records handed on share: a 500k feed's bulletins name 2.7 million
	// update ids, which the decoder allocated each on its own.
	ids        map[string]updateRef
	dangling   int // ids named by a bulletin and not (yet) seen as an update
	bulletins  map[string]struct{}
	unknown    int // top-level fields skipped
	maxUnknown int
}

// updateRef is what the parser knows of an update id.
type updateRef struct {
	id    string // the shared copy
	seen  bool   // as an update
	first int32  // the first bulletin naming it, while it is not seen
}

// locate adds the byte offset to decoder errors.
func (p *nativeParser) locate(err error) error {
	var syn *jsontext.SyntacticError
	var lim *LimitError
	switch {
	case errors.As(err, &lim):
		return lim
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("feed is truncated at byte %d", p.dec.InputOffset())
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d: an object has a key twice", syn.ByteOffset)
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d", syn.ByteOffset) // the message would quote the input
	}
	return err
}

func (p *nativeParser) parse() (*FeedHeader, error) {
	hdr := &FeedHeader{}
	if err := p.expectDelim('{', "the feed must be a JSON object"); err != nil {
		return nil, err
	}
	for {
		more, err := p.more('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		tok, err := p.dec.ReadToken()
		if err != nil {
			return nil, err
		}
		switch key := tok.String(); key {
		case "format":
			err = p.decodeString(key, &hdr.Format)
			if err == nil && hdr.Format != FormatNative {
				return nil, fmt.Errorf("\"format\" is not %q", FormatNative)
			}
		case "feed":
			err = p.decodeString(key, &hdr.Feed)
			if fn, ok := p.h.(feedNamer); ok && err == nil && hdr.Feed != "" {
				err = fn.FeedName(hdr.Feed)
			}
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
			err = p.dec.SkipValue() // token by token: the value is never held whole
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.expectDelim('}', "feed object not closed"); err != nil {
		return nil, err
	}
	if _, err := p.dec.ReadToken(); !errors.Is(err, io.EOF) {
		off := p.dec.InputOffset()
		var syn *jsontext.SyntacticError
		if errors.As(err, &syn) {
			off = syn.ByteOffset // where the data starts, not how far the decoder read
		}
		return nil, fmt.Errorf("data after the feed object at byte %d", off)
	}
	switch {
	case hdr.Format == "":
		return nil, fmt.Errorf("feed has no \"format\" (want %q)", FormatNative)
	case hdr.Feed == "":
		return nil, errors.New("feed has no \"feed\" name")
	}
	if p.dangling > 0 {
		first := int32(-1)
		for _, ref := range p.ids {
			if !ref.seen && (first < 0 || ref.first < first) {
				first = ref.first
			}
		}
		return nil, fmt.Errorf("bulletins[%d] names an update the feed does not contain (%d dangling update_ids in all)", first, p.dangling)
	}
	return hdr, nil
}

// more reports whether the object or array being read has another member before its closing
// delimiter; the error of what is not a value or that delimiter.
func (p *nativeParser) more(closing jsontext.Kind) (bool, error) {
	switch p.dec.PeekKind() {
	case closing:
		return false, nil
	case jsontext.KindInvalid:
		_, err := p.dec.ReadToken() // what PeekKind could not read
		if err == nil {
			err = errors.New("unexpected end of the feed")
		}
		return false, err
	}
	return true, nil
}

func (p *nativeParser) expectDelim(want jsontext.Kind, msg string) error {
	tok, err := p.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != want {
		return fmt.Errorf("%s (found %s at byte %d)", msg, tokenKind(tok.Kind()), p.dec.InputOffset())
	}
	return nil
}

func (p *nativeParser) decodeString(key string, dst *string) error {
	err := json.UnmarshalDecode(p.dec, dst, decodeOptions)
	var se *json.SemanticError
	if errors.As(err, &se) && se.JSONKind != jsontext.KindInvalid {
		return fmt.Errorf("field %q at byte %d: want a string, not %s", key, se.ByteOffset, tokenKind(se.JSONKind))
	}
	return err
}

// eachRecord decodes the array under key one element at a time.
func (p *nativeParser) eachRecord(key string, fn func(i int) error) error {
	if err := p.expectDelim('[', fmt.Sprintf("%q must be an array", key)); err != nil {
		return err
	}
	for i := 0; ; i++ {
		more, err := p.more(']')
		if err != nil {
			return err
		}
		if !more {
			break
		}
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
	if err := json.UnmarshalDecode(p.dec, &b, decodeOptions); err != nil {
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
	for j, u := range b.UpdateIDs {
		ref, known := p.ids[u]
		if known {
			b.UpdateIDs[j] = ref.id
			continue
		}
		p.ids[u] = updateRef{id: u, first: int32(min(i, math.MaxInt32))}
		p.dangling++
	}
	return p.h.Bulletin(&b)
}

func (p *nativeParser) update(i int) error {
	var u store.UpdateContent
	if err := json.UnmarshalDecode(p.dec, &u, decodeOptions); err != nil {
		return typeError(fmt.Sprintf("updates[%d]", i), err)
	}
	if u.ID == "" {
		return fmt.Errorf("updates[%d] has no id", i)
	}
	ref, known := p.ids[u.ID]
	if known && ref.seen {
		return fmt.Errorf("updates[%d]: its id appears twice", i)
	}
	if u.Size < 0 {
		return fmt.Errorf("updates[%d]: size is negative", i)
	}
	if known {
		u.ID = ref.id
		p.dangling--
	}
	p.ids[u.ID] = updateRef{id: u.ID, seen: true}
	return p.h.Update(&u)
}

// typeError explains a decode failure of one value by its position and the kinds involved,
// never by the value itself (a feed's content is not repeated in errors).
func typeError(where string, err error) error {
	var se *json.SemanticError
	if !errors.As(err, &se) || se.JSONKind == jsontext.KindInvalid {
		return err
	}
	// The pointer is the stream's: /<array>/<index>/<field>/...
	var field string
	n := 0
	for tok := range se.JSONPointer.Tokens() {
		if n == recordDepth-1 {
			field = tok
		}
		n++
	}
	if field == "" {
		return fmt.Errorf("%s must be a JSON object, not %s", where, tokenKind(se.JSONKind))
	}
	return fmt.Errorf("%s: field %q at byte %d: want %s, not %s", where, field, se.ByteOffset, wantKind(se.GoType), tokenKind(se.JSONKind))
}

// tokenKind names a JSON kind without a value.
func tokenKind(k jsontext.Kind) string {
	switch k {
	case '{', '}', '[', ']':
		return fmt.Sprintf("%q", string(k))
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
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
