package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"patchtree/store"
)

// TestBodiesMustBeObjects: null, arrays and scalars are refused on routes that take a body,
// instead of decoding as an empty request.
func TestBodiesMustBeObjects(t *testing.T) {
	f := newFake(t)
	srv := New(f, Options{MaxBodyBytes: 1 << 20})
	admin := bearer(store.RoleAdmin)
	routes := []struct{ method, path string }{
		{"PUT", "/v1/languages"}, {"POST", "/v1/tokens"}, {"POST", "/v1/children"}, {"POST", "/v1/policies"},
		{"PUT", "/v1/settings/agent"}, {"PUT", "/v1/replication/rules"}, {"POST", "/v1/scans"},
	}
	for _, rt := range routes {
		for _, body := range []string{"null", " null ", "[]", `["de"]`, `"x"`, "42", "true", "\n\tfalse"} {
			t.Run(rt.method+" "+rt.path+" "+body, func(t *testing.T) {
				before, _ := f.s.Digest()
				req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+admin)
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				var e errorBody
				json.Unmarshal(rec.Body.Bytes(), &e)
				if rec.Code != http.StatusBadRequest || !strings.Contains(e.Error, "request body must be a JSON object") {
					t.Fatalf("got %d %s", rec.Code, rec.Body)
				}
				if after, _ := f.s.Digest(); after.Digest != before.Digest {
					t.Fatalf("state changed")
				}
			})
		}
	}
}

func zstdBytes(t *testing.T, plain []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(plain, nil)
}

// TestEncodedBodyCapped: a zstd body is decompressed as it is decoded and stops at the route's
// limit with 413, however well it compresses.
func TestEncodedBodyCapped(t *testing.T) {
	const limit = 1 << 20
	s := New(newFake(t), Options{MaxBodyBytes: limit})
	bomb := []byte(`{"child":"` + strings.Repeat("a", 64<<20) + `"}`)
	plainOK := []byte(`{"child":"c1","seq":3}`)
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		code           int
		want           string
	}{
		{"bomb", "zstd", zstdBytes(t, bomb), 413, "decompressed body exceeds 1048576 bytes"},
		{"at the limit", "zstd", zstdBytes(t, append([]byte(`{"child":"`+strings.Repeat("a", limit-12)), `"}`...)), 0, ""},
		{"one over", "zstd", zstdBytes(t, append([]byte(`{"child":"`+strings.Repeat("a", limit-11)), `"}`...)), 413, "exceeds 1048576 bytes"},
		{"plain", "", plainOK, 0, ""},
		{"zstd", "zstd", zstdBytes(t, plainOK), 0, ""},
		{"zstd null", "zstd", zstdBytes(t, []byte("null")), 400, "request body must be a JSON object"},
		{"corrupt zstd", "zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}, 400, "zstd"},
		{"gzip", "gzip", plainOK, 400, `Content-Encoding "gzip" is not accepted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/hierarchy/v1/compliance", bytes.NewReader(tc.body))
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			var v struct {
				Child string `json:"child"`
				Seq   int    `json:"seq"`
			}
			size, err := s.decodeEncodedBody(req, &v, 0)
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("decode: %v", err)
			case tc.code == 0:
				if size.wire != int64(len(tc.body)) || size.raw < int64(len(`{"child":"c1"}`)) {
					t.Fatalf("sizes %+v for %d bytes on the wire", size, len(tc.body))
				}
			case statusFor(err) != tc.code || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %d %v; want %d %q", statusFor(err), err, tc.code, tc.want)
			}
		})
	}
	// Other routes refuse compressed bodies rather than read them as JSON.
	req := httptest.NewRequest("PUT", "/v1/languages", bytes.NewReader(zstdBytes(t, []byte(`{"ranges":["de"]}`))))
	req.Header.Set("Content-Encoding", "zstd")
	var v languagesRequest
	if err := decodeBody(req, &v); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "not accepted on this route") {
		t.Fatalf("decodeBody of a zstd body: %v", err)
	}
}
