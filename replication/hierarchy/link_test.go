package hierarchy

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"patchtree/store"
)

// TestAckRecordedFromTicketByAnotherLeader: a run handed out by one parent leader is recorded
// by another that never held it, from the run's ticket, in both forms (the JSON ticket of
// revision 1 and the compact one, with the run written with the run dictionary); a ticket that
// does not verify is refused (a forged compact signature, one for another child too), an
// acknowledgement without one is unknown there, and a repeated acknowledgement is answered
// from the record without a second write.
func TestAckRecordedFromTicketByAnotherLeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compact bool
	}{{"json", false}, {"compact", true}} {
		t.Run(tc.name, func(t *testing.T) { testAckFromTicket(t, tc.compact) })
	}
}

func testAckFromTicket(t *testing.T, compact bool) {
	h := newPolicyHarness(t, 3)
	for range 3 {
		h.parent.mutate(t)
	}
	src := h.child.source()
	plan, err := h.p.Pull(context.Background(), PullRequest{Child: "c", Cursor: src.Cursor, CursorRanges: src.Ranges, Wait: time.Millisecond})
	if err != nil || plan == nil {
		t.Fatalf("pull: plan %v, error %v", plan, err)
	}
	wire, err := h.p.WireTicket(plan, compact)
	if err != nil {
		t.Fatal(err)
	}
	write := func(w io.Writer) (int64, error) { return plan.WriteFor(w, compact) }
	ticket, err := DecodeTicket(wire) // as the child reads it from the pull's answer
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { _, err := write(pw); pw.CloseWithError(err) }()
	ack, cut := h.child.apply(context.Background(), &Link{Child: "c"}, pr, time.Now())
	if cut != nil || !ack.Applied {
		t.Fatalf("apply: cut %v, error %q", cut, ack.Error)
	}

	// The leader that handed the run out is gone; the next one never saw it.
	next := NewParent(slog.New(slog.NewTextHandler(io.Discard, nil)))
	next.SetBackend(fakeParentBackend{h.parent.site})
	next.leading.Store(true)
	header := ack.header
	signed := *ticket
	signed.Header = &header
	if _, err := next.Ack("c", ack); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("acknowledgement without a ticket at a leader that does not hold the run: %v, want not found", err)
	}
	tampered, th := signed, header
	th.To++
	tampered.Header = &th
	other := signed
	other.Child = "d"
	forged := signed
	forged.Signature = compactTicketPrefix + "AAAAAAAAAAAAAAAAAAAAAA"
	for name, tk := range map[string]*RunTicket{"tampered header": &tampered, "another child's": &other, "forged compact": &forged} {
		if _, err := next.AckTicketed("c", TicketedAck{Ack: ack, Ticket: tk}); !errors.Is(err, ErrBadTicket) || !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s ticket: %v, want ErrBadTicket (invalid)", name, err)
		}
	}
	resp, err := next.AckTicketed("c", TicketedAck{Ack: ack, Ticket: &signed})
	if err != nil || !resp.Verified {
		t.Fatalf("acknowledgement with its ticket: %+v, %v; want recorded and verified", resp, err)
	}
	idx := h.parent.site.idx
	again, err := next.AckTicketed("c", TicketedAck{Ack: ack, Ticket: &signed})
	if err != nil || !again.Verified || h.parent.site.idx != idx {
		t.Errorf("repeated acknowledgement: %+v, %v, %d writes; want the recorded answer and no write", again, err, h.parent.site.idx-idx)
	}
	runs, err := h.parent.site.s.ReplicationRuns(nil)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range runs {
		if r.ID == header.RunID {
			found++
			if !r.StartedAt.Equal(ticket.StartedAt) || !r.Verified || r.To != header.To {
				t.Errorf("recorded run %+v: want started at %v (the ticket's), to %d, verified", r, ticket.StartedAt, header.To)
			}
		}
	}
	if found != 1 {
		t.Errorf("run %s recorded %d times, want once", header.RunID, found)
	}
	c, err := h.parent.site.s.Child(nil, "c")
	if err != nil || c == nil || c.Cursor != header.To {
		t.Errorf("child row after the acknowledgement: %+v, %v; want cursor %d", c, err, header.To)
	}
}

// TestRequestsFailOverBetweenParentServers: a request goes to the address in use, and on a
// transport error or a 5xx to the next one, which then stays in use; a link whose configured
// URL is not one of the parent site's servers (a proxy) uses that URL alone.
func TestRequestsFailOverBetweenParentServers(t *testing.T) {
	var noLeader, good atomic.Int32
	notLeading := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noLeader.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "no leader"})
	}))
	defer notLeading.Close()
	answering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good.Add(1)
		json.NewEncoder(w).Encode(LanguageReportResponse{ParentRanges: []string{"*"}, Uncovered: []string{}})
	}))
	defer answering.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	c := NewChild(ChildConfig{Name: "c", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	link := &Link{URL: gone.URL, Child: "c", NodeToken: "t", Direct: true, SiteURLs: []string{gone.URL, notLeading.URL, answering.URL}}
	c.setActive(link)
	for i := range 3 {
		var resp LanguageReportResponse
		if _, err := c.call(context.Background(), http.MethodPut, ProtocolPath+"/languages", "t", LanguageReport{Ranges: []string{"de"}}, &resp); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if c.current != answering.URL || noLeader.Load() != 1 || good.Load() != 3 {
		t.Errorf("in use %s after 3 requests, %d answers of the server without a leader, %d of the good one; want %s, 1, 3",
			c.current, noLeader.Load(), good.Load(), answering.URL)
	}
	if st := c.Status(); st.URL != answering.URL || len(st.Addresses) != 3 {
		t.Errorf("status %+v: want the address in use and the 3 addresses", st)
	}

	proxied := &Link{URL: gone.URL, SiteURLs: []string{notLeading.URL, answering.URL}}
	if got := proxied.Addresses(); len(got) != 1 || got[0] != gone.URL {
		t.Errorf("a link configured through a proxy uses %v, want the proxy alone", got)
	}
	c.setActive(proxied)
	if _, err := c.call(context.Background(), http.MethodGet, ProtocolPath+SitePath, "t", nil, nil); err == nil {
		t.Errorf("a request through a proxy that is down succeeded: it went around the proxy")
	}
}

// TestLinkStatusReplicated: the server that runs the link writes its status when it changes
// (a contact within the same minute is not a change); another server of the site reports it.
func TestLinkStatusReplicated(t *testing.T) {
	site := newMemSite(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	leader := NewChild(ChildConfig{Name: "c", ParentURL: "http://parent:8400", Logger: quiet})
	leader.SetBackend(site)
	follower := NewChild(ChildConfig{Name: "c", Logger: quiet})
	follower.SetBackend(site)
	if st := follower.Status(); st.State != LinkNotConfigured || st.Joined {
		t.Errorf("no link and no --parent: %+v, want not-configured", st)
	}
	if _, err := site.PutSetting(SettingParent, &Link{URL: "http://parent:8400", Child: "c", NodeToken: "x.y"}); err != nil {
		t.Fatal(err)
	}
	leader.mu.Lock()
	leader.running = true
	leader.state.State, leader.state.Joined = LinkRunning, true
	leader.state.LastRun, leader.state.LastVerified = "run-7", true
	leader.mu.Unlock()
	leader.setErr(nil)
	writes := site.idx
	leader.setErr(nil) // another contact in the same minute
	if site.idx != writes {
		t.Errorf("a second contact wrote the status again (%d writes)", site.idx-writes)
	}
	st := follower.Status()
	if st.State != LinkRunning || !st.Joined || st.LastRun != "run-7" || !st.LastVerified || !st.Connected || st.URL != "http://parent:8400" {
		t.Errorf("the follower reports %+v; want running, joined, connected, last run run-7 verified", st)
	}
	leader.setErr(errors.New("parent unreachable"))
	if st := follower.Status(); st.Error != "parent unreachable" || site.idx != writes+1 {
		t.Errorf("after an error the follower reports %q (%d writes); want the error, written once", st.Error, site.idx-writes)
	}
}

// TestLinkRecordsTheParentsCA: a server without --tls-ca reaches the parent with the CA recorded
// in the link (without it the parent's certificate does not verify), and a server without the
// client certificate the site joined with says so.
func TestLinkRecordsTheParentsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(SiteAddresses{URLs: []string{}})
	}))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name    string
		tls     *LinkTLS
		reaches bool
		problem bool
	}{
		{"nothing recorded", nil, false, false},
		{"CA recorded", &LinkTLS{CAPEM: ca}, true, false},
		{"CA and a client certificate recorded", &LinkTLS{CAPEM: ca, ClientCert: true}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChild(ChildConfig{Name: "c", Logger: quiet})
			problem := c.setActive(&Link{URL: srv.URL, Child: "c", TLS: tc.tls})
			_, err := c.call(context.Background(), http.MethodGet, ProtocolPath+SitePath, "t", nil, &SiteAddresses{})
			if (err == nil) != tc.reaches {
				t.Errorf("request: %v; want it to succeed: %t", err, tc.reaches)
			}
			if (problem != "") != tc.problem || c.Status().Problem != problem {
				t.Errorf("problem %q (status %q); want one: %t", problem, c.Status().Problem, tc.problem)
			}
		})
	}
}

// TestLinkWaitsToBeConfigured: a server without --parent on a site without a link shows the
// link as not configured, and goes on as soon as another server records one.
func TestLinkWaitsToBeConfigured(t *testing.T) {
	site := newMemSite(t)
	c := NewChild(ChildConfig{Name: "c", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c.SetBackend(site)
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	done := make(chan bool, 1)
	go func() { done <- c.waitConfigured(context.Background()) }()
	waitFor(t, 5*time.Second, "the link to show as not configured", func() bool {
		rec, ok, err := c.loadRecord()
		return err == nil && ok && rec.State == LinkNotConfigured && rec.Error != ""
	})
	select {
	case <-done:
		t.Fatal("waitConfigured returned while the site has no link")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := site.PutSetting(SettingParent, &Link{URL: "http://parent:8400", Child: "c", NodeToken: "x.y"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-done:
		if !ok || c.Status().State != LinkJoining {
			t.Errorf("after a link was recorded: returned %t, state %q; want true, joining", ok, c.Status().State)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitConfigured did not see the link recorded")
	}
}
