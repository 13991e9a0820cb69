package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/node"
)

// The console's live updates: GET /ui/events is a Server-Sent Events stream that names the
// topics whose tables changed, so that a page re-reads only what it shows. It waits on the
// store's table indexes (a watch, never a timer), sends at most one event per eventCoalesce,
// and keeps idle proxies from closing it with a comment line every eventPing.
const (
	maxEventStreams = 64
	eventCoalesce   = 250 * time.Millisecond
	eventPing       = 25 * time.Second
	// eventWriteSlack is how long past the next ping the connection's deadlines are set at each
	// write: a client that stops reading is dropped then, and a ping always comes first.
	eventWriteSlack = 15 * time.Second
)

// ErrTooManyStreams means the server already serves maxEventStreams event streams (429).
var ErrTooManyStreams = fmt.Errorf("%w: too many open console event streams on this server", ErrRateLimited)

// errShuttingDown refuses a new stream while the HTTP server shuts down (503).
var errShuttingDown = fmt.Errorf("%w: the server is shutting down", node.ErrNotReady)

// eventTables maps each table of the store to its console topic. Tables of no interest to the
// pages (tokens, the staging of an import) are left out. The console's tests check that every
// name is a table of the store.
var eventTables = []struct{ table, topic string }{
	{"settings", "catalog"}, // the catalog's version and counts, the site's identity
	{"bulletins", "catalog"},
	{"updates", "catalog"},
	{"severities", "catalog"},
	{"imports", "catalog"},
	{"sources", "catalog"},
	{"tombstones", "catalog"},
	{"computers", "compliance"},
	{"scan_updates", "compliance"},
	{"update_compliance", "compliance"},
	{"bulletin_compliance", "compliance"},
	{"site_compliance", "compliance"},
	{"child_summaries", "compliance"},
	{"subtree_summaries", "compliance"},
	{"children", "sites"},
	{"replication_runs", "sites"},
	{"languages", "sites"},
	{"servers", "sites"},
	{"policies", "policies"},
	{"setting_docs", "policies"},
	{"audit", "audit"},
}

// eventTopics is the fixed list of topics, in the order events name them.
var eventTopics = []string{"catalog", "compliance", "sites", "policies", "audit"}

func eventTableNames() []string {
	names := make([]string, len(eventTables))
	for i, t := range eventTables {
		names[i] = t.table
	}
	return names
}

// changedTopics names the topics of the tables whose index moved, in eventTopics order, and
// the highest index read.
func changedTopics(before, after []uint64) ([]string, uint64) {
	var topics []string
	var top uint64
	for i, idx := range after {
		top = max(top, idx)
		if idx != before[i] && !slices.Contains(topics, eventTables[i].topic) {
			topics = append(topics, eventTables[i].topic)
		}
	}
	slices.SortFunc(topics, func(a, b string) int { return slices.Index(eventTopics, a) - slices.Index(eventTopics, b) })
	return topics, top
}

// events answers GET /ui/events.
func (s *Server) events(r *http.Request) (int, any, error) {
	c := s.console
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
		if _, seen := c.hooked.LoadOrStore(srv, true); !seen {
			srv.RegisterOnShutdown(c.close)
		}
	}
	select {
	case <-c.closing:
		return 0, nil, errShuttingDown
	default:
	}
	select {
	case c.streams <- struct{}{}:
	default:
		return 0, nil, ErrTooManyStreams
	}
	return http.StatusOK, rawResponse(func(w http.ResponseWriter) {
		defer func() { <-c.streams }()
		if err := s.stream(w, r); err != nil {
			s.logger.Debug("console event stream ended", "remote", r.RemoteAddr, "error", err)
		}
	}), nil
}

// close ends every event stream: the HTTP server is shutting down.
func (c *consoleState) close() { c.closeOnce.Do(func() { close(c.closing) }) }

// stream writes the event stream until the client goes, the server shuts down or the store is
// replaced by a restore (the browser's EventSource then reconnects to the new state).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	setConsoleHeaders(h)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	tables := eventTableNames()
	st := s.backend.State()
	ws := memdb.NewWatchSet()
	last := st.TableIndexes(ws, tables...)
	send := func(frame string) error {
		// Each write gets its own window, so the server's write timeout never cuts the stream
		// and a client that stopped reading is dropped. The read deadline moves too: the
		// server's background read of the idle request would otherwise end it.
		deadline := time.Now().Add(s.console.pingEvery + eventWriteSlack)
		if err := errors.Join(rc.SetWriteDeadline(deadline), rc.SetReadDeadline(deadline)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return fmt.Errorf("extend the stream's deadlines: %w", err)
		}
		if _, err := fmt.Fprint(w, frame); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("flush event: %w", err)
		}
		return nil
	}
	_, top := changedTopics(last, last)
	if err := send(eventFrame("hello", map[string]any{"index": top})); err != nil {
		return err
	}
	ping := time.NewTicker(s.console.pingEvery)
	defer ping.Stop()
	var sentAt time.Time
	for {
		ctx, cancel := context.WithCancel(r.Context())
		changed := ws.WatchCh(ctx)
		select {
		case <-changed:
		case <-ping.C:
			cancel()
			if err := send(": ping\n\n"); err != nil {
				return err
			}
			continue
		case <-r.Context().Done():
			cancel()
			return r.Context().Err()
		case <-s.console.closing:
			cancel()
			return errShuttingDown
		case <-st.AbandonCh():
			cancel()
			return errors.New("the store was replaced by a restore")
		}
		cancel()
		// Coalesce: at most one event per eventCoalesce, carrying every change until then.
		if wait := eventCoalesce - time.Since(sentAt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return r.Context().Err()
			case <-s.console.closing:
				t.Stop()
				return errShuttingDown
			}
		}
		ws = memdb.NewWatchSet()
		now := st.TableIndexes(ws, tables...)
		topics, top := changedTopics(last, now)
		last = now
		if len(topics) == 0 {
			continue
		}
		if err := send(eventFrame("change", map[string]any{"index": top, "topics": topics})); err != nil {
			return err
		}
		sentAt = time.Now()
	}
}

// eventFrame is one Server-Sent Event with a JSON data line.
func eventFrame(name string, data map[string]any) string {
	buf, err := json.Marshal(data)
	if err != nil {
		// Numbers and strings always encode; say so in the stream rather than drop it.
		buf, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("encode %s event: %v", name, err)})
	}
	return "event: " + name + "\ndata: " + string(buf) + "\n\n"
}
