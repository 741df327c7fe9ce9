// Package faults injects registry failures into HTTP responses: error statuses, connection resets,
// truncated, corrupted, dripping or stalled bodies, missing or wrong headers, and redirects to the
// foreign host. A test arms a Rule (which requests, what to do, how often) on a Set; the Set's
// middleware applies it.
//
// Two timings, so that a fault hits the response the test means and not an auth probe:
//   - "status" answers at once, before anything inside the middleware (auth, the API) runs.
//   - every other kind waits for the inner handler's answer and applies only when it is a 2xx
//     (after auth passed); only such responses use up the rule's Times. Body kinds skip HEAD.
package faults

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
)

// Action kinds.
const (
	KindStatus            = "status"             // answer Status (+Header, Body, RetryAfter) instead of the API
	KindReset             = "reset"              // send AfterBytes body bytes, then reset the TCP connection
	KindTruncate          = "truncate"           // send AfterBytes body bytes, then abort (client: unexpected EOF)
	KindCorrupt           = "corrupt"            // flip the body byte at offset AfterBytes (digest mismatch)
	KindDrip              = "drip"               // send DripBytes every DripEvery
	KindStall             = "stall"              // send headers and AfterBytes body bytes, then nothing until the client goes
	KindDropDigestHeader  = "drop-digest-header" // remove Docker-Content-Digest
	KindContentType       = "content-type"       // replace Content-Type with ContentType
	KindRedirectForeign   = "redirect-foreign"   // 307 to ForeignURL()+"/blobs/"+digest
	KindRedirectChallenge = "redirect-challenge" // 307 to ForeignURL()+"/challenge/blobs/"+digest (answers 401)
	// KindRedirectAway answers, before the handler runs, Status (3xx, default 307) with Location =
	// Action.Location (a base URL; "" = ForeignURL()) + the request's path and query: the same
	// request sent elsewhere (307/308 make a client repeat the method and body — a token POST
	// and its form included).
	KindRedirectAway = "redirect-away"
	// KindHangUp resets the connection before any answer, for every method (HEAD included): to
	// the client the registry is as gone as an unreachable host, on a reference that still names it.
	KindHangUp = "hang-up"
)

// ChallengePath is the path prefix on the foreign host that answers every request with a 401 auth
// challenge (served by the registry's foreign host, not by this package).
const ChallengePath = "/challenge/"

// Action says what to do to a matched request.
type Action struct {
	Kind       string
	Status     int         // "status": the status (default 503); redirects: 3xx code (default 307)
	RetryAfter string      // "status": Retry-After header value
	Header     http.Header // extra headers set on the response (every kind)
	Body       []byte      // "status": body (default: a distribution JSON error naming the request)
	AfterBytes int64       // reset/truncate/stall: body bytes sent first; corrupt: offset of the flipped byte
	DripBytes  int         // drip: bytes per write (default 1)
	DripEvery  time.Duration
	// ContentType is the Content-Type "content-type" sets.
	ContentType string
	// Location is the base URL "redirect-away" sends the request to ("" = the foreign host).
	Location string
}

// Rule is one armed fault.
type Rule struct {
	Match  route.Match
	Action Action
	Times  int // how many responses it affects; 0 = until cleared
}

// Options configure a Set.
type Options struct {
	// ForeignURL returns the foreign host's base URL ("http://127.0.0.2:PORT"), for redirects.
	ForeignURL func() string
}

// Set holds the armed rules of one registry. The zero value is not usable; call New.
type Set struct {
	foreignURL func() string

	mu     sync.Mutex
	nextID int
	rules  []*armed // in arm order; the first match wins

	closeOnce sync.Once
	closed    chan struct{}
}

type armed struct {
	id   string
	rule Rule
	used int
}

// New returns an empty Set.
func New(opts Options) *Set {
	return &Set{foreignURL: opts.ForeignURL, closed: make(chan struct{})}
}

// Arm adds a rule and returns its id. It panics on an unknown Kind or a redirect without
// Options.ForeignURL: both are mistakes in the calling test, like a bad regexp in MustCompile.
func (s *Set) Arm(r Rule) string {
	switch r.Action.Kind {
	case KindStatus, KindReset, KindTruncate, KindCorrupt, KindDrip, KindStall,
		KindDropDigestHeader, KindContentType, KindHangUp:
	case KindRedirectAway:
		if r.Action.Location == "" && s.foreignURL == nil {
			panic(fmt.Sprintf("faults: Arm: action %q without Location needs Options.ForeignURL", r.Action.Kind))
		}
	case KindRedirectForeign, KindRedirectChallenge:
		if s.foreignURL == nil {
			panic(fmt.Sprintf("faults: Arm: action %q needs Options.ForeignURL", r.Action.Kind))
		}
	default:
		panic(fmt.Sprintf("faults: Arm: unknown action kind %q", r.Action.Kind))
	}
	if r.Times < 0 {
		panic(fmt.Sprintf("faults: Arm: negative Times %d", r.Times))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := "fault-" + strconv.Itoa(s.nextID)
	s.rules = append(s.rules, &armed{id: id, rule: r})
	return id
}

// Clear removes one rule; unknown ids are ignored.
func (s *Set) Clear(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.rules {
		if a.id == id {
			s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			return
		}
	}
}

// ClearAll removes every rule.
func (s *Set) ClearAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Used reports how many responses the rule has affected so far (0 for unknown or cleared ids,
// and for exhausted rules, which are removed).
func (s *Set) Used(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.rules {
		if a.id == id {
			return a.used
		}
	}
	return 0
}

// Close ends every stall and drip in progress (their responses are aborted). Call it before
// shutting the server down; later requests pass through untouched.
func (s *Set) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ClearAll()
	})
}

func needsBody(kind string) bool {
	switch kind {
	case KindReset, KindTruncate, KindCorrupt, KindDrip:
		return true
	}
	return false
}

// pick returns the first rule matching the request. A "status" rule is used up at once; other
// kinds are used up by consume when the response turns out to be a 2xx.
func (s *Set) pick(listener route.Listener, method string, rt route.Route) *armed {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.rules {
		if !a.rule.Match.Matches(listener, method, rt) {
			continue
		}
		if method == http.MethodHead && needsBody(a.rule.Action.Kind) {
			continue
		}
		if k := a.rule.Action.Kind; k == KindStatus || k == KindRedirectAway || k == KindHangUp {
			s.useLocked(a)
		}
		return a
	}
	return nil
}

// consume uses up one application of a; false when a concurrent request used the last one.
func (s *Set) consume(a *armed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.rules {
		if b == a {
			s.useLocked(a)
			return true
		}
	}
	return false
}

func (s *Set) useLocked(a *armed) {
	a.used++
	if a.rule.Times > 0 && a.used >= a.rule.Times {
		for i, b := range s.rules {
			if b == a {
				s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
				break
			}
		}
	}
}

// Middleware applies the Set's rules to requests arriving on listener.
func (s *Set) Middleware(listener route.Listener, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route.Parse(r.URL.Path)
		a := s.pick(listener, r.Method, rt)
		if a == nil {
			next.ServeHTTP(w, r)
			return
		}
		switch a.rule.Action.Kind {
		case KindStatus:
			writeStatus(w, r, rt, a.id, a.rule.Action)
			return
		case KindRedirectAway:
			s.redirectAway(w, r, a.rule.Action)
			return
		case KindHangUp:
			hangUp(w)
			return
		}
		fw := &faultWriter{w: w, r: r, rt: rt, s: s, a: a, act: a.rule.Action}
		next.ServeHTTP(fw, r)
		fw.finish()
	})
}

// redirectAway sends the request elsewhere (KindRedirectAway), unread: the client repeats it.
func (s *Set) redirectAway(w http.ResponseWriter, r *http.Request, act Action) {
	base := act.Location
	if base == "" {
		base = s.foreignURL()
	}
	for k, v := range act.Header {
		w.Header()[k] = v
	}
	status := act.Status
	if status < 300 || status > 399 {
		status = http.StatusTemporaryRedirect
	}
	w.Header().Set("Location", strings.TrimSuffix(base, "/")+r.URL.RequestURI())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func writeStatus(w http.ResponseWriter, r *http.Request, rt route.Route, id string, act Action) {
	for k, v := range act.Header {
		w.Header()[k] = v
	}
	if act.RetryAfter != "" {
		w.Header().Set("Retry-After", act.RetryAfter)
	}
	status := act.Status
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	body := act.Body
	if body == nil {
		errcode.Write(w, r, status, errcode.ForStatus(status, rt.Kind), fmt.Sprintf("injected fault %s: %s %s answered %d", id, r.Method, r.URL.Path, status), nil)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// errHijacked is returned to the inner handler's writes after a reset took the connection.
var errHijacked = errors.New("faults: connection reset by injected fault")

// faultWriter applies a lazily consumed fault to the inner handler's response.
type faultWriter struct {
	w   http.ResponseWriter
	r   *http.Request
	rt  route.Route
	s   *Set
	a   *armed
	act Action

	wroteHeader bool
	active      bool  // the fault applies to this response
	discard     bool  // redirect: the inner body is dropped
	dead        bool  // the connection was hijacked
	cut         bool  // reset/truncate/stall already happened
	n           int64 // body bytes passed on
	limit       int64 // reset/truncate/stall cut point; corrupt offset
}

func (fw *faultWriter) Header() http.Header { return fw.w.Header() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.w }

func (fw *faultWriter) Flush() {
	if fw.discard || fw.dead {
		return
	}
	_ = http.NewResponseController(fw.w).Flush()
}

func (fw *faultWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return
	}
	fw.wroteHeader = true
	if code < 200 || code > 299 {
		fw.w.WriteHeader(code)
		return
	}
	h := fw.w.Header()
	var target string
	if fw.act.Kind == KindRedirectForeign || fw.act.Kind == KindRedirectChallenge {
		d := fw.rt.Digest
		if d == "" {
			d, _ = digest.Parse(h.Get("Docker-Content-Digest"))
		}
		if d == "" { // nothing to name on the foreign host: leave the response alone
			fw.w.WriteHeader(code)
			return
		}
		target = fw.s.foreignURL() + "/blobs/" + d.String()
		if fw.act.Kind == KindRedirectChallenge {
			target = fw.s.foreignURL() + ChallengePath + "blobs/" + d.String()
		}
	}
	if !fw.s.consume(fw.a) {
		fw.w.WriteHeader(code)
		return
	}
	fw.active = true
	for k, v := range fw.act.Header {
		h[k] = v
	}
	switch fw.act.Kind {
	case KindDropDigestHeader:
		h.Del("Docker-Content-Digest")
	case KindContentType:
		h.Set("Content-Type", fw.act.ContentType)
	case KindRedirectForeign, KindRedirectChallenge:
		for _, k := range []string{"Content-Length", "Content-Type", "Content-Range", "Docker-Content-Digest", "Etag", "Accept-Ranges"} {
			h.Del(k)
		}
		h.Set("Location", target)
		status := fw.act.Status
		if status < 300 || status > 399 {
			status = http.StatusTemporaryRedirect
		}
		fw.discard = true
		fw.w.WriteHeader(status)
		return
	case KindReset, KindTruncate, KindStall, KindCorrupt:
		fw.limit = max(fw.act.AfterBytes, 0)
		// Make sure the fault bites: never let the whole body through.
		if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl > 0 && fw.limit >= cl {
			fw.limit = cl - 1
		}
		if fw.act.Kind == KindStall && fw.r.Method == http.MethodHead {
			fw.stall() // a HEAD has no body to stall in: hold before the headers
		}
	}
	fw.w.WriteHeader(code)
	if fw.limit == 0 && (fw.act.Kind == KindReset || fw.act.Kind == KindTruncate || fw.act.Kind == KindStall) {
		fw.cutNow()
	}
}

func (fw *faultWriter) Write(b []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	switch {
	case fw.dead:
		return 0, errHijacked
	case fw.discard:
		return len(b), nil
	case !fw.active:
		return fw.w.Write(b)
	}
	switch fw.act.Kind {
	case KindReset, KindTruncate, KindStall:
		if fw.n+int64(len(b)) <= fw.limit {
			k, err := fw.w.Write(b)
			fw.n += int64(k)
			return k, err
		}
		k, err := fw.w.Write(b[:fw.limit-fw.n])
		fw.n += int64(k)
		if err != nil {
			return k, err
		}
		fw.cutNow() // panics, or hijacks and closes
		return k, errHijacked
	case KindCorrupt:
		if fw.limit >= fw.n && fw.limit < fw.n+int64(len(b)) {
			c := append([]byte(nil), b...)
			c[fw.limit-fw.n] ^= 0xff
			b = c
		}
		k, err := fw.w.Write(b)
		fw.n += int64(k)
		return k, err
	case KindDrip:
		return fw.drip(b)
	}
	k, err := fw.w.Write(b)
	fw.n += int64(k)
	return k, err
}

func (fw *faultWriter) drip(b []byte) (int, error) {
	step := max(fw.act.DripBytes, 1)
	written := 0
	for len(b) > 0 {
		c := b[:min(step, len(b))]
		k, err := fw.w.Write(c)
		written += k
		fw.n += int64(k)
		if err != nil {
			return written, err
		}
		fw.Flush()
		b = b[len(c):]
		if fw.act.DripEvery > 0 {
			// A real pause (this fault *is* slowness), cut short when the client or registry goes.
			t := time.NewTimer(fw.act.DripEvery)
			select {
			case <-t.C:
			case <-fw.r.Context().Done():
				t.Stop()
				return written, fw.r.Context().Err()
			case <-fw.s.closed:
				t.Stop()
				panic(http.ErrAbortHandler)
			}
		}
	}
	return written, nil
}

// cutNow performs the reset, truncate or stall at the current position.
func (fw *faultWriter) cutNow() {
	if fw.cut {
		return
	}
	fw.cut = true
	_ = http.NewResponseController(fw.w).Flush()
	switch fw.act.Kind {
	case KindTruncate:
		panic(http.ErrAbortHandler)
	case KindStall:
		fw.stall()
	case KindReset:
		conn, _, err := http.NewResponseController(fw.w).Hijack()
		if err != nil { // HTTP/2 or a writer that cannot hijack: abort instead
			panic(http.ErrAbortHandler)
		}
		fw.dead = true
		resetConn(conn)
	}
}

// stall holds the response until the client goes away or the Set closes, then aborts it.
func (fw *faultWriter) stall() {
	select {
	case <-fw.r.Context().Done():
	case <-fw.s.closed:
	}
	panic(http.ErrAbortHandler)
}

// hangUp resets the request's connection without answering (an HTTP/2 stream is aborted).
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	resetConn(conn)
}

// resetConn closes conn with SO_LINGER 0, so the peer sees a TCP RST (connection reset by peer).
func resetConn(conn net.Conn) {
	c := conn
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
		_ = tcp.Close()
	}
	_ = conn.Close()
}

// finish makes sure a cutting fault bites even when the body ended before the cut point
// (no Content-Length to clamp against).
func (fw *faultWriter) finish() {
	if !fw.active || fw.cut || fw.dead {
		return
	}
	switch fw.act.Kind {
	case KindReset, KindTruncate, KindStall:
		fw.cutNow()
	}
}
