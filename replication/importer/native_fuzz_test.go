package importer

import (
	"bytes"
	"errors"
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
