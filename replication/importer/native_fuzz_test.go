package importer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"patchtree/store"
)

// fuzzHandler keeps what ParseNative hands it.
type fuzzHandler struct {
	bulletins []*store.BulletinContent
	updates   []*store.UpdateContent
}

func (h *fuzzHandler) Bulletin(b *store.BulletinContent) error {
	h.bulletins = append(h.bulletins, b)
	return nil
}

func (h *fuzzHandler) Update(u *store.UpdateContent) error {
	h.updates = append(h.updates, u)
	return nil
}

// FuzzParseNative checks that the native parser never panics and that whatever it accepts is a
// consistent feed. The seed corpus is in testdata/fuzz/FuzzParseNative.
func FuzzParseNative(f *testing.F) {
	f.Add([]byte(`{"format":"patchtree.catalog/v1","feed":"f","bulletins":[{"id":"B","update_ids":["U"]}],"updates":[{"id":"U","language":"de"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := &fuzzHandler{}
		records := 0
		hdr, err := ParseNative(bytes.NewReader(data), h, func() { records++ })
		if err != nil {
			if hdr != nil {
				t.Fatalf("error %v with a header %+v", err, hdr)
			}
			if !errors.Is(err, ErrBadFeed) {
				t.Fatalf("error %v does not wrap ErrBadFeed", err)
			}
			return
		}
		if hdr == nil || hdr.Format != FormatNative || hdr.Feed == "" {
			t.Fatalf("accepted a feed with header %+v", hdr)
		}
		if records != len(h.bulletins)+len(h.updates) {
			t.Fatalf("records callback ran %d times for %d bulletins and %d updates", records, len(h.bulletins), len(h.updates))
		}
		updates := map[string]bool{}
		for _, u := range h.updates {
			if u.ID == "" {
				t.Fatal("accepted an update without id")
			}
			if updates[u.ID] {
				t.Fatalf("update %q handed over twice", u.ID)
			}
			updates[u.ID] = true
			if u.Size < 0 {
				t.Fatalf("update %q has negative size %d", u.ID, u.Size)
			}
		}
		bulletins := map[string]bool{}
		for _, b := range h.bulletins {
			if b.ID == "" {
				t.Fatal("accepted a bulletin without id")
			}
			if bulletins[b.ID] {
				t.Fatalf("bulletin %q handed over twice", b.ID)
			}
			bulletins[b.ID] = true
			for _, u := range b.UpdateIDs {
				if !updates[u] {
					t.Fatalf("bulletin %q names update %q, which was never handed over", b.ID, u)
				}
			}
			for _, d := range []string{b.Released, b.Revised} {
				if d != "" {
					if _, err := normDate("date", d); err != nil {
						t.Fatalf("bulletin %q kept a date that is not one: %v", b.ID, err)
					}
				}
			}
		}
	})
}

// fuzzLimits are limits small enough for the fuzzer to reach every one of them.
var fuzzLimits = feedLimits{token: 24, record: 160, depth: 5, keys: 6, fields: 2}

// FuzzNativeLimits checks the feed decoder's JSON limits: a feed accepted under small limits is
// accepted with the same records under the real ones (limits only refuse, never change what is
// read), every id it handed over fits the token limit, and a limit refusal wraps ErrBadFeed and
// names a byte offset within the input. (That errors repeat none of the feed is checked by
// TestNativeLimits and TestBadFeedsLeaveStateUnchanged.) The seed corpus is in
// testdata/fuzz/FuzzNativeLimits.
func FuzzNativeLimits(f *testing.F) {
	f.Add([]byte(`{"format":"patchtree.catalog/v1","feed":"f","bulletins":[{"id":"B","update_ids":["U"]}],"updates":[{"id":"U"}]}`))
	f.Add([]byte(`{"format":"patchtree.catalog/v1","feed":"f","x":[[[[[[1]]]]]],"updates":[]}`))
	f.Add([]byte(`{"format":"patchtree.catalog/v1","feed":"f","updates":[{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		small := &fuzzHandler{}
		_, errSmall := parseNative(bytes.NewReader(data), small, nil, fuzzLimits)
		full := &fuzzHandler{}
		_, errFull := ParseNative(bytes.NewReader(data), full, nil)
		if errSmall != nil {
			if !errors.Is(errSmall, ErrBadFeed) {
				t.Fatalf("error %v does not wrap ErrBadFeed", errSmall)
			}
			if msg := errSmall.Error(); strings.Contains(msg, "exceeds the limit") {
				var off int64
				if i := strings.Index(msg, " at byte "); i < 0 {
					t.Fatalf("limit error without an offset: %s", msg)
				} else if _, err := fmt.Sscanf(msg[i+len(" at byte "):], "%d", &off); err != nil || off < 0 || off > int64(len(data)) {
					t.Fatalf("limit error offset %d outside the %d-byte input: %s", off, len(data), msg)
				}
			}
			return
		}
		if errFull != nil {
			t.Fatalf("accepted under small limits, refused under the real ones: %v", errFull)
		}
		if len(small.bulletins) != len(full.bulletins) || len(small.updates) != len(full.updates) {
			t.Fatalf("records differ: %d/%d bulletins, %d/%d updates", len(small.bulletins), len(full.bulletins), len(small.updates), len(full.updates))
		}
		for _, u := range small.updates {
			if int64(len(u.ID)+2) > fuzzLimits.token {
				t.Fatalf("update id of %d bytes passed a %d-byte token limit", len(u.ID), fuzzLimits.token)
			}
		}
		for _, b := range small.bulletins {
			if int64(len(b.ID)+2) > fuzzLimits.token {
				t.Fatalf("bulletin id of %d bytes passed a %d-byte token limit", len(b.ID), fuzzLimits.token)
			}
		}
	})
}
