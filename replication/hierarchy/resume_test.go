package hierarchy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"patchtree/store"
)

// cutReader yields the first n bytes of r, then fails like a dropped connection.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

// bigParent builds a parent catalog large enough for a run of several chunks.
func bigParent(t *testing.T) *parentModel {
	t.Helper()
	p := &parentModel{site: newMemSite(t), rng: rand.New(rand.NewPCG(3, 3)), updates: map[string]*store.Update{}, bulletins: map[string]*store.Bulletin{}}
	b := &store.CatalogBatch{}
	for i := 0; i < 6000; i++ {
		id := fmt.Sprintf("u%05d", i)
		u := &store.Update{UpdateContent: store.UpdateContent{ID: id, Title: strings.Repeat("title ", 20) + id,
			Language: testTags[i%len(testTags)], URL: "https://example.invalid/" + id}, Feed: "f", Hash: fmt.Sprintf("h%d", i)}
		p.updates[id] = u
		b.Updates = append(b.Updates, u)
	}
	for i := 0; i < 60; i++ {
		var ids []string
		for j := i * 100; j < i*100+100; j++ {
			ids = append(ids, fmt.Sprintf("u%05d", j))
		}
		bid := fmt.Sprintf("B%03d", i)
		p.bulletins[bid] = p.bulletinRow(bid, ids)
		b.Bulletins = append(b.Bulletins, p.bulletins[bid])
	}
	p.commit(t, b)
	return p
}

func TestCutRunResumesAtNextChunk(t *testing.T) {
	parent := bigParent(t)
	childSite := newMemSite(t)
	child := NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	child.SetBackend(childSite)
	view, _ := parent.site.s.CatalogView(nil)
	plan := buildRun(view, &store.Child{Name: "c", Ranges: []string{"*"}}, ModeComplete)
	if plan.header.Chunks < 3 {
		t.Fatalf("run has %d chunks; the test needs several", plan.header.Chunks)
	}
	var full bytes.Buffer
	if _, err := plan.WriteTo(&full); err != nil {
		t.Fatal(err)
	}

	// The stream is cut two thirds of the way through.
	ack, cut := child.apply(context.Background(), &Link{Child: "c"}, &cutReader{r: bytes.NewReader(full.Bytes()), n: full.Len() * 2 / 3}, time.Now())
	if cut == nil || child.partial == nil || child.partial.next == 0 {
		t.Fatalf("a cut after staged chunks was not kept for resuming: ack %+v, cut %v", ack, cut)
	}
	staged := child.partial.next
	if info, _ := childSite.s.Catalog(nil); info.Updates != 0 {
		t.Fatalf("a cut run is visible: %d updates", info.Updates)
	}

	// The parent resends the same run from the next chunk; the child completes it.
	var rest bytes.Buffer
	if _, err := plan.resumedFrom(staged).WriteTo(&rest); err != nil {
		t.Fatal(err)
	}
	restLen := rest.Len()
	if restLen >= full.Len() {
		t.Fatalf("resumed stream is %d bytes, the whole run %d", restLen, full.Len())
	}
	ack, cut = child.apply(context.Background(), &Link{Child: "c"}, &rest, time.Now())
	if cut != nil || !ack.Applied || ack.ChildDigest != plan.header.Digest {
		t.Fatalf("resumed run: cut %v, ack %+v, want digest %s", cut, ack, plan.header.Digest)
	}
	assertReplicaIsView(t, view, []string{"*"}, childSite.s)
	t.Logf("cut after %d of %d chunks; resumed with %d of %d bytes", staged, plan.header.Chunks, restLen, full.Len())
}

func TestCutRunDroppedWhenParentSendsAnother(t *testing.T) {
	parent := bigParent(t)
	childSite := newMemSite(t)
	child := NewChild(ChildConfig{ParentURL: "http://parent", Name: "c", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	child.SetBackend(childSite)
	view, _ := parent.site.s.CatalogView(nil)
	first := buildRun(view, &store.Child{Name: "c", Ranges: []string{"*"}}, ModeComplete)
	first.header.RunID = "run-1"
	var buf bytes.Buffer
	first.WriteTo(&buf)
	if _, cut := child.apply(context.Background(), &Link{Child: "c"}, &cutReader{r: &buf, n: buf.Len() / 2}, time.Now()); cut == nil {
		t.Fatal("not cut")
	}
	// The parent restarted and sends a fresh run: the cut one's staged chunks are dropped.
	second := buildRun(view, &store.Child{Name: "c", Ranges: []string{"de"}}, ModeComplete)
	second.header.RunID = "run-2"
	buf.Reset()
	second.WriteTo(&buf)
	ack, cut := child.apply(context.Background(), &Link{Child: "c"}, &buf, time.Now())
	if cut != nil || !ack.Applied || ack.ChildDigest != second.header.Digest {
		t.Fatalf("fresh run after a cut one: cut %v ack %+v", cut, ack)
	}
	if runs, _ := childSite.s.StagedRuns(); len(runs) != 0 {
		t.Fatalf("staged chunks of the abandoned run remain: %v", runs)
	}
	assertReplicaIsView(t, view, []string{"de"}, childSite.s)
}
