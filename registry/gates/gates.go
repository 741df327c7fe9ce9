// Package gates holds chosen registry requests until a test lets them go, so that races between a
// client's requests and a test's actions (remove during pull, revoke mid-pull, concurrent pulls)
// happen in a fixed order without sleeps.
//
// A test arms a Gate with a route.Match; the first matching request to arrive is held (later ones
// pass), Wait returns once it is held, and Release or Fail decides its fate.
package gates

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
)

// Set holds the armed gates of one registry. Create it with New.
type Set struct {
	mu    sync.Mutex
	gates []*Gate // armed, not yet holding a request; the first armed wins

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns an empty Set.
func New() *Set { return &Set{closed: make(chan struct{})} }

// Gate holds one request.
type Gate struct {
	match route.Match

	held     chan struct{} // closed when a request is held
	decided  chan struct{} // closed by Release or Fail
	gone     chan struct{} // closed when the held request's client disconnects
	once     sync.Once     // decision
	goneOnce sync.Once
	status   int // 0 = release, else the status Fail answers

	mu   sync.Mutex
	desc string // "GET /v2/…" of the held request
}

// Arm adds a gate that will hold the first request matching m (then it holds no more).
func (s *Set) Arm(m route.Match) *Gate {
	g := &Gate{
		match:   m,
		held:    make(chan struct{}),
		decided: make(chan struct{}),
		gone:    make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gates = append(s.gates, g)
	return g
}

// Disarm removes g if it has not held a request yet.
func (s *Set) Disarm(g *Gate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.gates {
		if x == g {
			s.gates = append(s.gates[:i:i], s.gates[i+1:]...)
			return
		}
	}
}

// Close disarms every gate and answers every held request with 503.
func (s *Set) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.gates = nil
		s.mu.Unlock()
		close(s.closed)
	})
}

// claim removes and returns the first armed gate matching the request.
func (s *Set) claim(listener route.Listener, method string, rt route.Route) *Gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range s.gates {
		if g.match.Matches(listener, method, rt) {
			s.gates = append(s.gates[:i:i], s.gates[i+1:]...)
			return g
		}
	}
	return nil
}

// Middleware holds matching requests arriving on listener.
func (s *Set) Middleware(listener route.Listener, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route.Parse(r.URL.Path)
		g := s.claim(listener, r.Method, rt)
		if g == nil {
			next.ServeHTTP(w, r)
			return
		}
		g.mu.Lock()
		g.desc = r.Method + " " + r.URL.Path
		g.mu.Unlock()

		// Watch the client for the whole life of the request (held and, after release, served).
		var returned sync.Mutex
		done := false
		stop := context.AfterFunc(r.Context(), func() {
			returned.Lock()
			defer returned.Unlock()
			if !done {
				g.goneOnce.Do(func() { close(g.gone) })
			}
		})
		defer func() {
			returned.Lock()
			done = true
			// The server cancels the context only after the handler returns, unless the client
			// went away (or the server is shutting down) first.
			if r.Context().Err() != nil {
				g.goneOnce.Do(func() { close(g.gone) })
			}
			returned.Unlock()
			stop()
		}()

		close(g.held)
		select {
		case <-g.decided:
		case <-r.Context().Done():
			return // the client went away while held; nobody is listening
		case <-s.closed:
			errcode.Write(w, r, http.StatusServiceUnavailable, errcode.Unavailable, "registry closing while request was held by a gate: "+g.describe(), nil)
			return
		}
		if g.status != 0 {
			errcode.Write(w, r, g.status, errcode.ForStatus(g.status, rt.Kind), fmt.Sprintf("request failed by gate: %s answered %d", g.describe(), g.status), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Wait blocks until the gate holds a request, or ctx ends.
func (g *Gate) Wait(ctx context.Context) error {
	select {
	case <-g.held:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a request matching %+v: %w", g.match, ctx.Err())
	}
}

// Held is closed once the gate holds a request.
func (g *Gate) Held() <-chan struct{} { return g.held }

// Release lets the held request (or, if none is held yet, the next matching one) proceed.
// Only the first Release or Fail counts.
func (g *Gate) Release() { g.once.Do(func() { close(g.decided) }) }

// Fail answers the held request (or the next matching one) with status and a distribution JSON
// error body instead of passing it on. Only the first Release or Fail counts.
func (g *Gate) Fail(status int) {
	g.once.Do(func() {
		g.status = status
		close(g.decided)
	})
}

// ClientGone is closed when the held request's client disconnects (while held or while being
// served after Release). The server notices only once the request body was read, which is
// immediate for GET and HEAD.
func (g *Gate) ClientGone() <-chan struct{} { return g.gone }

func (g *Gate) describe() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.desc
}
