package api

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"patchtree/replication/hierarchy"
)

// ErrRateLimited means a client address went over one of its rate limits (429).
var ErrRateLimited = errors.New("too many requests")

// Limits are the per-client-address rate limits of the API. A rate of 0 disables its limit
// (the default of api.New; `patchtree serve` sets its flags' values).
type Limits struct {
	// JoinPerMinute and JoinBurst bound every request to the public join route.
	JoinPerMinute float64
	JoinBurst     int
	// AuthFailPerMinute and AuthFailBurst bound requests whose bearer token is missing, malformed,
	// unknown or revoked. A valid token never spends from this bucket.
	AuthFailPerMinute float64
	AuthFailBurst     int
}

// maxTrackedClients bounds the entries of one rate limiter: past it, idle entries (full
// buckets) are dropped, then the least recently seen one.
const maxTrackedClients = 10000

// Deadline extensions of the routes that legitimately outlive the server's read and write
// timeouts. They apply only after authentication, so an unauthenticated slow client is still cut
// off by --http-read-timeout.
const (
	// longPollDeadline covers the parent's longest hold of a pull (55 s) with room to spare.
	longPollDeadline = 2 * time.Minute
	// runTransferDeadline matches the child's own bound on receiving one replication run.
	runTransferDeadline = 30 * time.Minute
	// waitDeadline bounds POST /v1/replication/now with wait: a longer "timeout" is cut here.
	waitDeadline = 30 * time.Minute
	// bulkBodyDeadline lets an authenticated client upload its largest body (a 256 MiB scan
	// batch) at about 0.5 MB/s.
	bulkBodyDeadline = 10 * time.Minute
)

// deadline is how long a route may read its request and write its response, counted from the
// moment the caller was authenticated.
type deadline struct{ read, write time.Duration }

// routeDeadlines lists the routes whose requests may outlast the server's timeouts, keyed
// "METHOD path" as in the route table. A long-poll extends its read deadline too: the server's
// background read of an idle request would otherwise cancel the request at the read timeout.
var routeDeadlines = map[string]deadline{
	"GET " + hierarchy.ProtocolPath + "/catalog":     {longPollDeadline + runTransferDeadline, longPollDeadline + runTransferDeadline},
	"POST /v1/replication/now":                       {waitDeadline, waitDeadline},
	"POST /v1/scans":                                 {bulkBodyDeadline, bulkBodyDeadline},
	"POST " + hierarchy.ProtocolPath + "/ack":        {bulkBodyDeadline, bulkBodyDeadline},
	"POST " + hierarchy.ProtocolPath + "/compliance": {bulkBodyDeadline, bulkBodyDeadline},
	"GET /v1/compliance/bulletins":                   {0, bulkBodyDeadline},
	"POST /v1/catalog/import/upload":                 {uploadTransferDeadline, bulkBodyDeadline},
}

// joinRoute is the public route limited per client address on every request.
const joinRoute = "POST " + hierarchy.ProtocolPath + "/join"

// extendDeadlines gives an authenticated request on a long-running route its own deadlines. An
// error means the connection keeps the server's timeouts (a ResponseWriter without deadline
// support), so a long-poll may be cut: the caller logs it.
func extendDeadlines(w http.ResponseWriter, rt route) error {
	d, ok := routeDeadlines[rt.key()]
	if !ok {
		return nil
	}
	rc := http.NewResponseController(w)
	now := time.Now()
	var errs []error
	if d.read > 0 {
		if err := rc.SetReadDeadline(now.Add(d.read)); err != nil {
			errs = append(errs, fmt.Errorf("extend read deadline of %s: %w", rt.key(), err))
		}
	}
	if d.write > 0 {
		if err := rc.SetWriteDeadline(now.Add(d.write)); err != nil {
			errs = append(errs, fmt.Errorf("extend write deadline of %s: %w", rt.key(), err))
		}
	}
	return errors.Join(errs...)
}

// limiters are the API's rate limiters (nil: disabled).
type limiters struct {
	join     *rateLimiter
	authFail *rateLimiter
}

func newLimiters(l Limits) limiters {
	return limiters{join: newRateLimiter(l.JoinPerMinute, l.JoinBurst), authFail: newRateLimiter(l.AuthFailPerMinute, l.AuthFailBurst)}
}

// limitRoute spends one join attempt of the client's address on the join route.
func (s *Server) limitRoute(r *http.Request, rt route) error {
	if rt.key() != joinRoute {
		return nil
	}
	return s.limits.join.spend(clientIP(r.RemoteAddr), "join attempts", time.Now())
}

// limitAuthFailure spends one failed authentication of the client's address; over the limit
// the answer is 429 instead of 401.
func (s *Server) limitAuthFailure(r *http.Request, authErr error) error {
	if !errors.Is(authErr, ErrUnauthorized) {
		return authErr
	}
	if err := s.limits.authFail.spend(clientIP(r.RemoteAddr), "failed authentications", time.Now()); err != nil {
		return err
	}
	return authErr
}

// writeLimited writes err, with Retry-After in whole seconds when it is a rate limit.
func writeLimited(w http.ResponseWriter, err error) {
	var rl *rateLimitError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(rl.retryAfterSeconds()))
	}
	writeError(w, err)
}

// rateLimitError is a 429 that knows when the client may try again.
type rateLimitError struct {
	what  string
	retry time.Duration
}

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("%s: too many %s from this address; retry after %ds", ErrRateLimited, e.what, e.retryAfterSeconds())
}

func (e *rateLimitError) Unwrap() error { return ErrRateLimited }

func (e *rateLimitError) retryAfterSeconds() int {
	return max(1, int(math.Ceil(e.retry.Seconds())))
}

// clientIP is the address part of a remote address ("ip:port"), the key of every per-client
// limit. Forwarded-for headers are not trusted: anyone can send them.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// rateLimiter is a token bucket per client address: burst tokens, refilled at rate per second.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter returns a limiter of perMinute requests a minute with bursts of burst, or nil
// (no limit) when perMinute is not positive.
func newRateLimiter(perMinute float64, burst int) *rateLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &rateLimiter{rate: perMinute / 60, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
}

// spend takes one token from key's bucket, or says how long until one is available.
func (l *rateLimiter) spend(key, what string, now time.Time) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxTrackedClients {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rate, l.burst)
	if b.tokens < 1 {
		return &rateLimitError{what: what, retry: time.Duration((1 - b.tokens) / l.rate * float64(time.Second))}
	}
	b.tokens--
	return nil
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*rate)
		b.last = now
	}
}

// evict drops every bucket that has refilled completely (its client is idle: forgetting it
// changes nothing), or else the least recently used one (l.mu held).
func (l *rateLimiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, b := range l.buckets {
		// Whether it has refilled, worked out without refilling it: refill would stamp every
		// bucket with now and leave nothing to tell the least recently seen by.
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldest == "" || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(l.buckets) >= maxTrackedClients {
		delete(l.buckets, oldest)
	}
}

// size is the number of tracked client addresses.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// LimitListener caps the concurrent connections of each client address at perClient: a
// connection over the cap is closed at once, before a byte is read, and is never handed to the
// HTTP server. perClient ≤ 0 returns ln unchanged.
func LimitListener(ln net.Listener, perClient int, logger *slog.Logger) net.Listener {
	if perClient <= 0 {
		return ln
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &limitListener{Listener: ln, perClient: perClient, logger: logger, open: map[string]int{}}
}

// refusedLogEvery spaces the warnings about refused connections.
const refusedLogEvery = time.Minute

type limitListener struct {
	net.Listener
	perClient int
	logger    *slog.Logger

	mu         sync.Mutex
	open       map[string]int
	refused    int
	lastLogged time.Time
}

// Accept returns the next connection whose address is under its cap.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr().String())
		if l.admit(ip) {
			return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		c.Close()
	}
}

// admit counts a new connection of ip, or refuses it over the cap (logging now and then).
func (l *limitListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] < l.perClient {
		l.open[ip]++
		return true
	}
	l.refused++
	if now := time.Now(); now.Sub(l.lastLogged) >= refusedLogEvery {
		l.logger.Warn("closed connections over the per-client cap", "client", ip, "cap", l.perClient, "refused", l.refused)
		l.lastLogged, l.refused = now, 0
	}
	return false
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// openConns is the number of admitted, still open connections of ip.
func (l *limitListener) openConns(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip]
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
