package hierarchy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"patchtree/store"
)

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// respond is a canned response of a roundTripFunc.
func respond(status int, body []byte, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body)), Header: h}
}

// deposingBackend ends the leader term when the run commits, as a leadership loss would.
type deposingBackend struct {
	*memSite
	depose func()
}

func (d deposingBackend) CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	d.depose()
	return d.memSite.CommitCatalog(run, src)
}

// TestAckNotSentAfterLeadershipEnds: a child whose leader term ends while it applies a run does
// not acknowledge it (the next leader pulls from its own cursor); while it leads, it does.
func TestAckNotSentAfterLeadershipEnds(t *testing.T) {
	stream := deRunStream(t, (*RunPlan).WriteTo)
	for _, tc := range []struct {
		name   string
		depose bool
	}{{"leading", false}, {"deposed while applying", true}} {
		t.Run(tc.name, func(t *testing.T) {
			term, end := context.WithCancel(context.Background())
			defer end()
			var mu sync.Mutex
			acks, liveAcks := 0, 0
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodGet {
					return respond(http.StatusOK, stream.Bytes(), nil), nil
				}
				mu.Lock()
				defer mu.Unlock()
				acks++
				if err := r.Context().Err(); err != nil {
					return nil, err
				}
				liveAcks++
				return respond(http.StatusOK, []byte(`{"verified":true}`), nil), nil
			})}
			child := NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			site := newMemSite(t)
			depose := func() {}
			if tc.depose {
				depose = end
			}
			child.SetBackend(deposingBackend{memSite: site, depose: depose})
			err := child.pullOnce(term, &Link{Child: "c", NodeToken: "t"}, 0)
			mu.Lock()
			defer mu.Unlock()
			if tc.depose {
				if err == nil || liveAcks != 0 {
					t.Fatalf("deposed leader: err %v, %d acknowledgements sent (%d attempted)", err, liveAcks, acks)
				}
				return
			}
			if err != nil || liveAcks != 1 {
				t.Fatalf("leader: err %v, %d acknowledgements sent", err, liveAcks)
			}
		})
	}
}

// deRunStream is run "run-1", complete, of bigParent's catalog for a child "c" managing "de", as
// write puts it on the wire (WriteTo, WriteCompact).
func deRunStream(t *testing.T, write func(*RunPlan, io.Writer) (int64, error)) *bytes.Buffer {
	t.Helper()
	parent := bigParent(t)
	view, err := parent.site.s.CatalogView(nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := buildRun(view, &store.Child{Name: "c", Ranges: []string{"de"}}, ModeComplete)
	plan.header.RunID = "run-1"
	var stream bytes.Buffer
	if _, err := write(plan, &stream); err != nil {
		t.Fatal(err)
	}
	return &stream
}
