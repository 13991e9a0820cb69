package procbench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"patchtree/replication/hierarchy"
	"patchtree/replication/policy"
	"patchtree/store"
)

// lightChild is a child site reduced to what the protocol needs, in the benchmark's process:
// it enrols, reports its languages, pulls runs, applies them to an in-memory replica (the
// digest contribution of each record, not the record), checks that the replica's digest is the
// one the run announced, and acknowledges with a sample, as a real child does. Every byte on
// its connections to the parent is counted.
type lightChild struct {
	name   string
	ranges []string
	parent *Server
	token  string
	inst   string
	client *http.Client
	down   atomic.Int64 // bytes read from the parent (TCP payload: HTTP headers included)
	up     atomic.Int64 // bytes sent to the parent

	// The replica. digestOnly keeps no per-record state (a 500k replica per child would be the
	// benchmark's memory, not the parent's): it verifies complete and empty runs only.
	digestOnly bool
	cursor     uint64
	curRanges  []string
	scursor    uint64
	digest     store.Digest
	updates    map[string][32]byte // update id -> its hash (digest contribution, sample hash)
	bulletins  map[string]bulletinHashes
	// keepRecords asks the next run's records to be kept (the benchmark's zstd baselines).
	keepRecords bool
	records     [][]byte
	encodeTime  time.Duration // spent marshalling the kept records
}

type bulletinHashes struct {
	pairs  store.Digest // sum of the (bulletin, update) pair hashes: its digest contribution
	sample [32]byte     // hierarchy.BulletinHash of the bulletin as held
}

// runResult is what one pull brought.
type runResult struct {
	header hierarchy.RunHeader
	wire   int64 // the run body as received (zstd)
	raw    int64 // the run body decompressed
}

func newLightChild(parent *Server, name string, ranges []string, digestOnly bool) *lightChild {
	c := &lightChild{name: name, ranges: ranges, parent: parent, digestOnly: digestOnly,
		updates: map[string][32]byte{}, bulletins: map[string]bulletinHashes{}}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("random instance id: %v", err))
	}
	c.inst = hex.EncodeToString(id[:])
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: conn, c: c}, nil
	}
	c.client = &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	return c
}

// countConn counts a connection's bytes into its child's totals.
type countConn struct {
	net.Conn
	c *lightChild
}

func (cc *countConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.down.Add(int64(n))
	return n, err
}

func (cc *countConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.up.Add(int64(n))
	return n, err
}

// wireBytes is every byte on the child's connections so far, both ways.
func (c *lightChild) wireBytes() int64 { return c.down.Load() + c.up.Load() }

// enrol adds the child at the parent (admin), joins with the join token and reports its ranges.
func (c *lightChild) enrol(ctx context.Context) error {
	var added struct {
		JoinToken string `json:"join_token"`
	}
	if _, err := c.parent.Do(ctx, "POST", "/v1/children", map[string]string{"name": c.name}, &added); err != nil {
		return fmt.Errorf("add child %s: %w", c.name, err)
	}
	var joined hierarchy.JoinResponse
	if _, err := c.call(ctx, "POST", "/join", "", hierarchy.JoinRequest{Name: c.name, JoinToken: added.JoinToken}, &joined); err != nil {
		return fmt.Errorf("join %s: %w", c.name, err)
	}
	c.token = joined.NodeToken
	rep := hierarchy.LanguageReport{Ranges: c.ranges, OwnRanges: c.ranges, Role: "child"}
	if _, err := c.call(ctx, "PUT", "/languages", c.token, rep, nil); err != nil {
		return fmt.Errorf("report the languages of %s: %w", c.name, err)
	}
	return nil
}

// call is one JSON request of the protocol; it returns the answer's status.
func (c *lightChild) call(ctx context.Context, method, path, token string, in, out any) (int, error) {
	h := http.Header{}
	h.Set(hierarchy.InstanceHeader, c.inst)
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return doJSON(ctx, c.client, method, c.parent.URL+hierarchy.ProtocolPath, path, h, in, out)
}

// pullApplyAck pulls once (waiting up to wait), applies the run, acknowledges it and checks the
// parent verified it. No run within wait is (nil, nil).
func (c *lightChild) pullApplyAck(ctx context.Context, wait time.Duration) (*runResult, error) {
	q := url.Values{}
	q.Set("cursor", fmt.Sprint(c.cursor))
	q.Set("ranges", strings.Join(c.curRanges, ","))
	q.Set("pcursor", "0")
	q.Set("scursor", fmt.Sprint(c.scursor))
	q.Set("wait", wait.String())
	q.Set(hierarchy.RevisionParam, strconv.Itoa(hierarchy.RevisionCompact))
	req, err := http.NewRequestWithContext(ctx, "GET", c.parent.URL+hierarchy.ProtocolPath+"/catalog?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set(hierarchy.InstanceHeader, c.inst)
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", c.name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	default:
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("pull %s: status %d: %s", c.name, resp.StatusCode, bytes.TrimSpace(raw))
	}
	res, ack, err := c.apply(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("apply a run of %s: %w", c.name, err)
	}
	ack.DurationMS = time.Since(start).Milliseconds()
	// As a real child: the ticket, with the header, only to a server that does not hold the run.
	ticket, err := hierarchy.DecodeTicket(resp.Header.Get(hierarchy.RunTicketHeader))
	if err != nil {
		return nil, fmt.Errorf("run %s of %s: %w", res.header.RunID, c.name, err)
	}
	var ans hierarchy.AckResponse
	body := hierarchy.TicketedAck{Ack: *ack}
	status, err := c.call(ctx, "POST", "/ack", c.token, body, &ans)
	if status == http.StatusNotFound && ticket != nil {
		ticket.Header = &res.header
		body.Ticket = ticket
		_, err = c.call(ctx, "POST", "/ack", c.token, body, &ans)
	}
	if err != nil {
		return nil, fmt.Errorf("acknowledge run %s of %s: %w", res.header.RunID, c.name, err)
	}
	if !ans.Verified {
		return nil, fmt.Errorf("run %s of %s did not verify at the parent (mismatches %v)", res.header.RunID, c.name, ans.Mismatches)
	}
	return res, nil
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// apply reads a run and applies it to the replica; the acknowledgement says what the replica
// holds afterwards.
func (c *lightChild) apply(body io.Reader) (*runResult, *hierarchy.Ack, error) {
	wire := &countingReader{r: body}
	dec, err := zstd.NewReader(wire, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(16<<20), hierarchy.RunDecoderDict())
	if err != nil {
		return nil, nil, fmt.Errorf("zstd: %w", err)
	}
	defer dec.Close()
	raw := &countingReader{r: dec}
	jd := json.NewDecoder(bufio.NewReaderSize(raw, 256<<10))
	res := &runResult{}
	h := &res.header
	if err := jd.Decode(h); err != nil {
		return nil, nil, fmt.Errorf("read the run header: %w", err)
	}
	if h.FirstChunk != 0 {
		return nil, nil, fmt.Errorf("run %s resumed at chunk %d: this client never cuts a run", h.RunID, h.FirstChunk)
	}
	if h.Policies != nil {
		return nil, nil, fmt.Errorf("run %s carries policies: the benchmark's parent has none", h.RunID)
	}
	catalog := h.HasCatalog()
	complete := catalog && h.Mode == hierarchy.ModeComplete
	if catalog && !complete && c.digestOnly && h.Records+h.Deletes > 0 {
		return nil, nil, fmt.Errorf("run %s is differential (%s, from %d to %d, %d records, %d deletes): a digest-only client applies complete and empty runs only",
			h.RunID, h.Trigger, h.From, h.To, h.Records, h.Deletes)
	}
	if complete {
		c.digest = store.Digest{}
		c.updates, c.bulletins = map[string][32]byte{}, map[string]bulletinHashes{}
	}
	c.records = c.records[:0]
	var docs []*store.SettingDoc
	var sample []hierarchy.SampleRecord
	pick := func() bool { return h.SamplePercent > 0 && mrand.Float64()*100 < h.SamplePercent }
	for i := 0; i < h.Chunks; i++ {
		ch, err := c.readChunk(jd)
		if err != nil {
			return nil, nil, fmt.Errorf("read chunk %d of %d: %w", i+1, h.Chunks, err)
		}
		for _, u := range ch.Updates {
			hash := store.UpdateRecordHash(u)
			if old, ok := c.updates[u.ID]; ok {
				c.digest.Sub(old)
			}
			c.digest.Add(hash)
			if !c.digestOnly {
				c.updates[u.ID] = hash
			} else if pick() {
				sample = append(sample, hierarchy.SampleRecord{Kind: "update", ID: u.ID, Hash: hex.EncodeToString(hash[:])})
			}
			c.keep(u)
		}
		for _, b := range ch.Bulletins {
			bh := bulletinHashes{sample: hierarchy.BulletinHash(b, b.UpdateIDs)}
			store.EachPairHash(b, func(_ int, h [32]byte) { bh.pairs.Add(h) })
			if len(b.UpdateIDs) == 0 {
				bh.pairs.Add(sha256.Sum256([]byte("empty-bulletin\x00" + b.ID)))
			}
			if old, ok := c.bulletins[b.ID]; ok {
				c.digest.Sub(digestBytes(old.pairs))
			}
			c.digest.AddDigest(bh.pairs)
			if !c.digestOnly {
				c.bulletins[b.ID] = bh
			} else if pick() {
				sample = append(sample, hierarchy.SampleRecord{Kind: "bulletin", ID: b.ID, Hash: hex.EncodeToString(bh.sample[:])})
			}
			c.keep(b)
		}
		for _, id := range ch.DeleteUpdates {
			if old, ok := c.updates[id]; ok {
				c.digest.Sub(old)
				delete(c.updates, id)
			}
		}
		for _, id := range ch.DeleteBulletins {
			if old, ok := c.bulletins[id]; ok {
				c.digest.Sub(digestBytes(old.pairs))
				delete(c.bulletins, id)
			}
		}
		docs = append(docs, ch.SettingDocs...)
	}
	// Nothing may follow the last chunk but the end of the stream.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, nil, fmt.Errorf("read the end of run %s: %w", h.RunID, err)
	}
	res.wire, res.raw = wire.n, raw.n
	ack := &hierarchy.Ack{Child: c.name, RunID: h.RunID, Applied: true, BytesWire: wire.n, BytesRaw: raw.n}
	if catalog {
		c.cursor, c.curRanges = h.To, h.Ranges
		ack.ChildDigest = c.digest.String()
		if ack.ChildDigest != h.Digest {
			return nil, nil, fmt.Errorf("run %s: replica digest %s, the run announced %s", h.RunID, ack.ChildDigest, h.Digest)
		}
		if h.Records+h.Deletes > 0 {
			if !c.digestOnly {
				sample = c.sample(h.SamplePercent)
			}
			ack.Sample = sample
		}
	}
	if h.Settings != nil {
		c.scursor = h.Settings.To
		ack.SettingsDigest = policy.SettingsDigest(docs)
	}
	return res, ack, nil
}

// slimChunk is a chunk with only the fields of its records that the digests and the sample
// cover: decoding it costs the client a fraction of a whole store.CatalogBatch.
type slimChunk struct {
	Bulletins []struct {
		ID             string   `json:"id"`
		UpdateIDs      []string `json:"update_ids"`
		Hash           string   `json:"hash"`
		CustomSeverity string   `json:"custom_severity"`
		Disabled       bool     `json:"disabled"`
	} `json:"bulletins"`
	Updates []struct {
		ID         string `json:"id"`
		Hash       string `json:"hash"`
		Superseded bool   `json:"superseded"`
	} `json:"updates"`
	DeleteBulletins []string            `json:"delete_bulletins"`
	DeleteUpdates   []string            `json:"delete_updates"`
	SettingDocs     []*store.SettingDoc `json:"setting_docs"`
}

// readChunk decodes the next chunk: whole when the records are kept, else slim, as records
// holding the fields the digests cover.
func (c *lightChild) readChunk(jd *json.Decoder) (*store.CatalogBatch, error) {
	if c.keepRecords {
		var ch store.CatalogBatch
		return &ch, jd.Decode(&ch)
	}
	var sc slimChunk
	if err := jd.Decode(&sc); err != nil {
		return nil, err
	}
	ch := &store.CatalogBatch{DeleteBulletins: sc.DeleteBulletins, DeleteUpdates: sc.DeleteUpdates, SettingDocs: sc.SettingDocs}
	for _, u := range sc.Updates {
		ch.Updates = append(ch.Updates, &store.Update{UpdateContent: store.UpdateContent{ID: u.ID}, Hash: u.Hash, Superseded: u.Superseded})
	}
	for _, b := range sc.Bulletins {
		ch.Bulletins = append(ch.Bulletins, &store.Bulletin{BulletinContent: store.BulletinContent{ID: b.ID, UpdateIDs: b.UpdateIDs},
			Hash: b.Hash, CustomSeverity: b.CustomSeverity, Disabled: b.Disabled})
	}
	return ch, nil
}

// keep records a record of the run as JSON, without the parent's Raft indexes (when asked).
func (c *lightChild) keep(rec any) {
	if !c.keepRecords {
		return
	}
	switch r := rec.(type) {
	case *store.Update:
		x := *r
		x.RaftIndex = store.RaftIndex{}
		rec = &x
	case *store.Bulletin:
		x := *r
		x.RaftIndex = store.RaftIndex{}
		rec = &x
	}
	t0 := time.Now()
	line, err := json.Marshal(rec)
	c.encodeTime += time.Since(t0)
	if err != nil {
		panic(fmt.Sprintf("marshal a record: %v", err))
	}
	c.records = append(c.records, line)
}

// sample is pct % of the replica's records with their hashes, as a real child sends.
func (c *lightChild) sample(pct float64) []hierarchy.SampleRecord {
	if pct <= 0 {
		return nil
	}
	var out []hierarchy.SampleRecord
	for id, h := range c.updates {
		if mrand.Float64()*100 < pct {
			out = append(out, hierarchy.SampleRecord{Kind: "update", ID: id, Hash: hex.EncodeToString(h[:])})
		}
	}
	for id, b := range c.bulletins {
		if mrand.Float64()*100 < pct {
			out = append(out, hierarchy.SampleRecord{Kind: "bulletin", ID: id, Hash: hex.EncodeToString(b.sample[:])})
		}
	}
	return out
}

// digestBytes is a digest as the 256-bit number Digest.Sub takes.
func digestBytes(d store.Digest) [32]byte {
	var b [32]byte
	raw, err := hex.DecodeString(d.String())
	if err != nil || len(raw) != 32 {
		panic(fmt.Sprintf("digest %s: %v", d, err))
	}
	copy(b[:], raw)
	return b
}
