package hierarchy

// The parent's run tickets: an HMAC, under a key in the parent site's replicated state, over
// the header of each run it hands to a child. The runs in flight are the leader's memory; the
// ticket is what lets a server that became leader since (a failover between the pull and the
// acknowledgement) record the run all the same.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"patchtree/store"
)

// settingRunKey is the settings key of the parent site's run ticket key.
const settingRunKey = "hierarchy-run-key"

// ticketMaxAge bounds how old a run's ticket may be when its acknowledgement is recorded: an
// acknowledgement is retried for as long as a child's leader lives, but a replay of an old one
// must not move the child's cursor back (a run older than this is answered by a resync).
const ticketMaxAge = 24 * time.Hour

// ErrBadTicket means an acknowledgement's run ticket does not verify: it is refused (400).
var ErrBadTicket = fmt.Errorf("the run ticket does not verify: %w", store.ErrInvalid)

// runKey is the stored ticket key.
type runKey struct {
	Key string `json:"key"` // 32 random bytes, hex
}

// runKeyMu serialises the creation of a site's ticket key (its first run ever), so that two
// runs started at once cannot each store a key of their own.
var runKeyMu sync.Mutex

// settingWriter is the part of the backend that stores a setting (node.Node has it).
type settingWriter interface {
	PutSetting(key string, v any) (uint64, error)
}

// ticketKey reads the site's ticket key; with create, a site that has none gets one (on the
// leader: it is a Raft write).
func (p *Parent) ticketKey(create bool) ([]byte, error) {
	read := func() ([]byte, error) {
		row, err := p.backend.State().Setting(nil, settingRunKey)
		if err != nil || row == nil {
			return nil, err
		}
		var k runKey
		if err := json.Unmarshal(row.Value, &k); err != nil {
			return nil, fmt.Errorf("decode the run ticket key: %w", err)
		}
		key, err := hex.DecodeString(k.Key)
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("the stored run ticket key is malformed: %w", store.ErrInvalid)
		}
		return key, nil
	}
	key, err := read()
	if key != nil || err != nil || !create {
		return key, err
	}
	runKeyMu.Lock()
	defer runKeyMu.Unlock()
	if key, err := read(); key != nil || err != nil {
		return key, err
	}
	w, ok := p.backend.(settingWriter)
	if !ok {
		return nil, errors.New("this parent's backend cannot store a run ticket key")
	}
	key = make([]byte, 32)
	rand.Read(key)
	if _, err := w.PutSetting(settingRunKey, runKey{Key: hex.EncodeToString(key)}); err != nil {
		return nil, fmt.Errorf("store the run ticket key: %w", err)
	}
	return key, nil
}

// ticketSum is HMAC-SHA256 under label over what a run's ticket signs: the child, the start
// and the header (FirstChunk aside: a resumed stream carries the same ticket).
func ticketSum(key []byte, label, child string, started time.Time, h RunHeader) ([]byte, error) {
	h.FirstChunk = 0
	msg, err := json.Marshal(struct {
		Child     string    `json:"child"`
		StartedAt time.Time `json:"started_at"`
		Header    RunHeader `json:"header"`
	}{child, started.UTC(), h})
	if err != nil {
		return nil, fmt.Errorf("encode run header %s for its ticket: %w", h.RunID, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	mac.Write(msg)
	return mac.Sum(nil), nil
}

// ticketMAC is the signature of a run's ticket, hex.
func ticketMAC(key []byte, child string, started time.Time, h RunHeader) (string, error) {
	sum, err := ticketSum(key, "patchtree run ticket v1\x00", child, started, h)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}

// compactTicketPrefix starts a compact ticket (RevisionCompact), and its signature as an
// acknowledgement echoes it.
const compactTicketPrefix = "2."

// compactMACBytes is the length of a compact ticket's signature: HMAC-SHA256 cut to 128 bits
// (RFC 2104 section 5 allows a truncated MAC of at least half the hash; NIST SP 800-107 counts a
// 128-bit tag as 128 bits of security against forgery).
const compactMACBytes = 16

// compactMAC is the signature of a compact ticket: HMAC-SHA256 over the same message as
// ticketMAC under a label of its own (a signature of one form is never one of the other), cut
// to compactMACBytes.
func compactMAC(key []byte, child string, started time.Time, h RunHeader) ([]byte, error) {
	sum, err := ticketSum(key, "patchtree run ticket v2\x00", child, started, h)
	if err != nil {
		return nil, err
	}
	return sum[:compactMACBytes], nil
}

// RunTicket signs a run this leader handed to a child (a plan Pull returned): the ticket goes
// with the run (RunTicketHeader) and comes back with its acknowledgement.
func (p *Parent) RunTicket(plan *RunPlan) (*RunTicket, error) {
	key, inf, err := p.inFlightTicket(plan)
	if err != nil {
		return nil, err
	}
	t := &RunTicket{Child: inf.child, StartedAt: inf.started.UTC()}
	if t.Signature, err = ticketMAC(key, t.Child, t.StartedAt, plan.header); err != nil {
		return nil, err
	}
	return t, nil
}

// inFlightTicket is what a ticket of plan needs: the signing key and the run in flight.
func (p *Parent) inFlightTicket(plan *RunPlan) ([]byte, *inflight, error) {
	key, err := p.ticketKey(true)
	if err != nil {
		return nil, nil, err
	}
	inf := p.runs.lookup(plan.header.RunID)
	if inf == nil {
		return nil, nil, fmt.Errorf("run %s is not in flight here: %w", plan.header.RunID, store.ErrNotFound)
	}
	return key, inf, nil
}

// EncodeTicket is a ticket (without its header) as RunTicketHeader carries it.
func EncodeTicket(t *RunTicket) (string, error) {
	bare := *t
	bare.Header = nil
	raw, err := json.Marshal(bare)
	if err != nil {
		return "", fmt.Errorf("encode run ticket: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// CompactTicket signs a run this leader handed to a child, as RunTicketHeader carries it to a
// child of RevisionCompact: "2." and base64url of the run's start (Unix nanoseconds, 8 bytes
// big-endian) and its compact signature: 34 characters, where the JSON ticket takes some 210.
func (p *Parent) CompactTicket(plan *RunPlan) (string, error) {
	key, inf, err := p.inFlightTicket(plan)
	if err != nil {
		return "", err
	}
	started := inf.started.UTC()
	mac, err := compactMAC(key, inf.child, started, plan.header)
	if err != nil {
		return "", err
	}
	raw := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(mac)), uint64(started.UnixNano()))
	return compactTicketPrefix + base64.RawURLEncoding.EncodeToString(append(raw, mac...)), nil
}

// WireTicket is plan's ticket as RunTicketHeader carries it to a child: the compact form for a
// child of RevisionCompact, the JSON one otherwise.
func (p *Parent) WireTicket(plan *RunPlan, compact bool) (string, error) {
	if compact {
		return p.CompactTicket(plan)
	}
	t, err := p.RunTicket(plan)
	if err != nil {
		return "", err
	}
	return EncodeTicket(t)
}

// DecodeTicket reads RunTicketHeader ("" : the parent sent none, an older parent): a JSON
// ticket, or a compact one as a RunTicket whose Signature is "2." and the signature's base64url.
func DecodeTicket(s string) (*RunTicket, error) {
	if s == "" {
		return nil, nil
	}
	if c, ok := strings.CutPrefix(s, compactTicketPrefix); ok {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("decode the compact run ticket: %w", err)
		}
		if len(raw) != 8+compactMACBytes {
			return nil, fmt.Errorf("decode the compact run ticket: %d bytes, want %d", len(raw), 8+compactMACBytes)
		}
		return &RunTicket{
			StartedAt: time.Unix(0, int64(binary.BigEndian.Uint64(raw))).UTC(),
			Signature: compactTicketPrefix + base64.RawURLEncoding.EncodeToString(raw[8:]),
		}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode the run ticket: %w", err)
	}
	var t RunTicket
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode the run ticket: %w", err)
	}
	return &t, nil
}

// checkTicket verifies the ticket of an acknowledged run this server does not hold in memory
// and returns the run's header and start.
func (p *Parent) checkTicket(child, runID string, t *RunTicket, now time.Time) (RunHeader, time.Time, error) {
	if t == nil || t.Header == nil {
		return RunHeader{}, time.Time{}, fmt.Errorf("run %q of child %q is unknown here (the parent may have restarted) and came without a ticket; pull again: %w",
			runID, child, store.ErrNotFound)
	}
	h := *t.Header
	switch {
	case t.Child != "" && t.Child != child:
		// A compact ticket names no child: the signature covers the credential's.
		return h, time.Time{}, fmt.Errorf("%w: the ticket of run %s is child %q's, not %q", ErrBadTicket, runID, t.Child, child)
	case h.RunID != runID:
		return h, time.Time{}, fmt.Errorf("%w: the ticket is run %s's, not %s's", ErrBadTicket, h.RunID, runID)
	case now.Sub(t.StartedAt) > ticketMaxAge:
		return h, time.Time{}, fmt.Errorf("run %s started %s ago, more than a ticket is good for (%s); pull again: %w",
			runID, now.Sub(t.StartedAt).Round(time.Minute), ticketMaxAge, store.ErrNotFound)
	}
	key, err := p.ticketKey(false)
	if err != nil {
		return h, time.Time{}, err
	}
	if key == nil {
		return h, time.Time{}, fmt.Errorf("%w: this parent site has no run ticket key", ErrBadTicket)
	}
	var got, want []byte
	if c, ok := strings.CutPrefix(t.Signature, compactTicketPrefix); ok {
		got, _ = base64.RawURLEncoding.DecodeString(c) // a malformed one fails to compare
		want, err = compactMAC(key, child, t.StartedAt, h)
	} else {
		var mac string
		mac, err = ticketMAC(key, child, t.StartedAt, h)
		got, want = []byte(t.Signature), []byte(mac)
	}
	if err != nil {
		return h, time.Time{}, err
	}
	if !hmac.Equal(want, got) {
		return h, time.Time{}, fmt.Errorf("%w: run %s of child %q", ErrBadTicket, runID, child)
	}
	return h, t.StartedAt, nil
}

// recordedRun is the run already recorded under id, or nil: an acknowledgement retried after
// the parent recorded it (its answer was lost) is answered again, not recorded twice.
func (p *Parent) recordedRun(child, id string) (*store.ReplicationRun, error) {
	runs, err := p.backend.State().ReplicationRuns(nil)
	if err != nil {
		return nil, fmt.Errorf("read replication runs: %w", err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].ID == id && runs[i].Child == child {
			return runs[i], nil
		}
	}
	return nil, nil
}
