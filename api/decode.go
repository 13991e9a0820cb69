package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"patchtree/iocount"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// maxBodyZstdWindow bounds the window a zstd request body may declare (and so the decoder's
// memory), whatever the route's limit: zstd's own encoders use at most 8 MiB below level 20.
const maxBodyZstdWindow = 8 << 20

// errNotObject is the answer to a body that is valid JSON but not an object (null, an array,
// a string, a number, a boolean): encoding/json would decode null as {} and leave every field
// at its zero value.
var errNotObject = fmt.Errorf("%w: request body must be a JSON object", ErrBadRequest)

// decodeBody decodes exactly one JSON object from the request body into v, rejecting unknown
// fields and trailing data, and turns decoder errors into precise messages. Compressed bodies
// are refused: only the routes that take them call decodeEncodedBody.
func decodeBody(r *http.Request, v any) error {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return fmt.Errorf("%w: Content-Encoding %q is not accepted on this route; send plain JSON", ErrBadRequest, enc)
	}
	return decodeObject(r.Body, v)
}

// decodeObject decodes exactly one JSON object from body into v (see decodeBody).
func decodeObject(body io.Reader, v any) error {
	body, err := objectReader(body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return fmt.Errorf("%w: request body has data after the JSON object", ErrBadRequest)
	}
	return nil
}

// objectReader checks that body's first byte after white space opens a JSON object, and
// returns a reader of the whole body.
func objectReader(body io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(body, 512)
	for {
		c, err := br.ReadByte()
		if err != nil {
			return nil, bodyError(err)
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return io.MultiReader(strings.NewReader("{"), br), nil
		}
		return nil, errNotObject
	}
}

// bodySizes are a request body's bytes on the wire and after decompression.
type bodySizes struct{ wire, raw int64 }

// decodeEncodedBody is decodeBody for the routes that accept a zstd-compressed body
// (Content-Encoding: zstd): it decompresses as it decodes, stops with 413 as soon as the
// decompressed body passes maxRaw (0: the route's own body limit), and reports the sizes read.
func (s *Server) decodeEncodedBody(r *http.Request, v any, maxRaw int64) (bodySizes, error) {
	wire := &iocount.Reader{R: r.Body}
	raw := &iocount.Reader{R: wire}
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "zstd":
		limit := s.routeBodyLimit(r)
		if maxRaw > 0 {
			limit = min(limit, maxRaw)
		}
		dec, err := zstd.NewReader(wire, zstd.WithDecoderMaxMemory(uint64(limit)),
			zstd.WithDecoderMaxWindow(uint64(min(limit, maxBodyZstdWindow))), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return bodySizes{}, fmt.Errorf("%w: zstd body: %w", ErrBadRequest, err)
		}
		defer dec.Close()
		raw.R = &decompressedCap{r: dec, left: limit, limit: limit}
	default:
		return bodySizes{}, fmt.Errorf("%w: Content-Encoding %q is not accepted; send plain or zstd JSON", ErrBadRequest, enc)
	}
	err := decodeObject(raw, v)
	return bodySizes{wire: wire.N, raw: raw.N}, err
}

// bodyLimitKey holds the body limit wrap applied to the request (int64).
const bodyLimitKey ctxKey = 2

// routeBodyLimit is the body limit of the route serving r, as wrap applied it: the route's
// own, or Options.MaxBodyBytes.
func (s *Server) routeBodyLimit(r *http.Request) int64 {
	if limit, ok := r.Context().Value(bodyLimitKey).(int64); ok {
		return limit
	}
	return s.opts.MaxBodyBytes
}

// errDecompressedTooLarge is a decompressed body over its route's limit.
type errDecompressedTooLarge struct{ limit int64 }

func (e *errDecompressedTooLarge) Error() string {
	return fmt.Sprintf("decompressed body exceeds %d bytes", e.limit)
}

// decompressedCap reads at most limit bytes from a decompressor and fails on the next one, and
// names the decompressor's size errors as the same limit.
type decompressedCap struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *decompressedCap) Read(p []byte) (int, error) {
	// One byte more than is left tells a body of exactly limit bytes from a longer one.
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		return 0, &errDecompressedTooLarge{c.limit}
	}
	c.left -= int64(n)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrFrameSizeExceeded):
		return n, &errDecompressedTooLarge{c.limit}
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("zstd body: %w", err)
	}
	return n, err
}

// bodyError explains a JSON decoding failure.
func bodyError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		inflate *errDecompressedTooLarge
	)
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrTooLarge):
		return err
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, tooBig.Limit)
	case errors.As(err, &inflate):
		return fmt.Errorf("%w: %w", ErrTooLarge, inflate)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: request body is empty; want a JSON object", ErrBadRequest)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: request body is truncated JSON", ErrBadRequest)
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrBadRequest, syntax.Offset, err)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("%w: request body must be a JSON object, not %s", ErrBadRequest, typeErr.Value)
		}
		return fmt.Errorf("%w: field %q must be %s, not %s", ErrBadRequest, field, jsonKind(typeErr.Type.String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields.
		return fmt.Errorf("%w: %s", ErrBadRequest, strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Errorf("%w: %v", ErrBadRequest, err)
}

// jsonKind names a Go type the way a JSON user thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string" || strings.HasSuffix(goType, ".Role"):
		return "a string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	}
	return "an object"
}
