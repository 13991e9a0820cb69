package hierarchy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"patchtree/store"
)

// TestCompactRunDecodes: a run written for a child of the compact revision holds the same
// lines as the run of revision 1, is smaller, and needs the run dictionary; the run of revision
// 1 (what a child that predates the dictionary asks for) decodes without it.
func TestCompactRunDecodes(t *testing.T) {
	parent := bigParent(t)
	view, err := parent.site.s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{ModeComplete, ModeDifferential} {
		plan := buildRun(view, &store.Child{Name: "c", Ranges: []string{"de"}, Cursor: view.Info.Version}, mode)
		var plain, compact bytes.Buffer
		if _, err := plan.WriteTo(&plain); err != nil {
			t.Fatal(err)
		}
		if _, err := plan.WriteCompact(&compact); err != nil {
			t.Fatal(err)
		}
		decode := func(b []byte, opts ...zstd.DOption) ([]byte, error) {
			dec, err := zstd.NewReader(bytes.NewReader(b), opts...)
			if err != nil {
				return nil, err
			}
			defer dec.Close()
			return io.ReadAll(dec)
		}
		want, err := decode(plain.Bytes())
		if err != nil {
			t.Fatalf("%s: the run of revision 1 without the dictionary: %v", mode, err)
		}
		got, err := decode(compact.Bytes(), RunDecoderDict())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: the compact run decodes to %d bytes (%v), want the %d of revision 1", mode, len(got), err, len(want))
		}
		if _, err := decode(compact.Bytes()); err == nil {
			t.Errorf("%s: the compact run decoded without the run dictionary", mode)
		}
		if compact.Len() >= plain.Len() {
			t.Errorf("%s: compact run %d B, revision 1 %d B: want smaller", mode, compact.Len(), plain.Len())
		}
	}
}

// TestAckSendsTicketOnlyWhenAsked: the child acknowledges without the run's ticket, and sends
// it, with the header, at once when the parent's server answers 404 (it does not hold the run).
func TestAckSendsTicketOnlyWhenAsked(t *testing.T) {
	stream := deRunStream(t, (*RunPlan).WriteCompact)
	var (
		mu   sync.Mutex
		acks []TicketedAck
	)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet {
			if r.URL.Query().Get(RevisionParam) != "2" {
				t.Errorf("pull %s: want %s=2", r.URL, RevisionParam)
			}
			h := http.Header{}
			h.Set(RunTicketHeader, compactTicketPrefix+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			return respond(http.StatusOK, stream.Bytes(), h), nil
		}
		var ta TicketedAck
		if err := json.NewDecoder(r.Body).Decode(&ta); err != nil {
			t.Errorf("acknowledgement: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		acks = append(acks, ta)
		if ta.Ticket == nil {
			return respond(http.StatusNotFound, []byte(`{"error":"unknown run"}`), nil), nil
		}
		return respond(http.StatusOK, []byte(`{"verified":true}`), nil), nil
	})}
	child := NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Client: client, Logger: slog.New(slog.DiscardHandler)})
	child.SetBackend(newMemSite(t))
	if err := child.pullOnce(context.Background(), &Link{Child: "c", NodeToken: "t"}, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acks) != 2 || acks[0].Ticket != nil || acks[1].Ticket == nil || acks[1].Ticket.Header == nil ||
		acks[1].Ticket.Header.RunID != "run-1" || acks[1].Ticket.Signature != compactTicketPrefix+"AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("acknowledgements %+v: want one without a ticket, then one with the compact ticket and the run's header", acks)
	}
}
