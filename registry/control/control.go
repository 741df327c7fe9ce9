// Package control serves a running fixture registry's control API: JSON over HTTP on its own
// loopback port, for tools and suites in other processes (the standalone `criimage registry`).
//
//	GET    /endpoints                      registry endpoints (plain, TLS, foreign, CA file)
//	GET    /journal?since=N                journal entries after N (JSON)
//	GET    /journal/transcript?since=N     the same, human-readable (secrets as fingerprints)
//	POST   /journal/saw-secret             {"listener","secret"} → {"seen":bool}
//	GET    /journal/blob-gets?repo=&digest= {"count":n}
//	POST   /faults                         a rule (below) → {"id"}
//	DELETE /faults/{id}                    clear one rule;  DELETE /faults clears all
//	POST   /tokens/registry                {"scope"} → {"token"} (pre-issued registry token)
//	POST   /tokens/refresh                 → {"refresh_token"} (identity token of the fixture user)
//	POST   /tokens/revoke                  every issued access token → invalid_token
//	POST   /tokens/expires-in              {"duration":"90s"} (token-short/… lifetime)
//
// A fault rule is {"match":{"listener","method","repo","reference","digest","kind"},
// "action":{"kind","status","retryAfter","header":{…},"body":"text","afterBytes","dripBytes",
// "dripEvery":"100ms","contentType","location"},"times":N} (see registry/faults; a redirect-away
// location must be a loopback http(s) URL, or one of the registry's own listeners when it serves
// other machines).
//
// Errors are JSON {"error":"…"} with 400 for bad input and 404 for unknown paths. Request bodies
// (which may carry a secret to look up) are never logged. POST bodies are application/json, and
// requests a browser page could make (another Host, an Origin) are refused: see Guard.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

// Server is a running control endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start serves the control API of reg on addr ("" = 127.0.0.1:0; loopback only).
func Start(ctx context.Context, addr string, reg *registry.Registry) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := registry.CheckLoopback(addr); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", addr, err)
	}
	s := &Server{
		srv:  &http.Server{Handler: Guard(ln.Addr().String(), Handler(reg)), ReadHeaderTimeout: 30 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s, nil
}

// URL is "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the control endpoint.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("control: close: %w", err)
	}
	return nil
}

// Endpoints is what GET /endpoints answers.
type Endpoints struct {
	Plain       string `json:"plain"`       // host:port of the plain HTTP listener
	TLS         string `json:"tls"`         // host name:port (needs name resolution)
	TLSAddr     string `json:"tlsAddr"`     // 127.0.0.1:port (or the advertised host:port) of the TLS listener
	TLSHostName string `json:"tlsHostName"` // DNS name in the certificate
	Foreign     string `json:"foreign"`     // base URL of the foreign host
	OtherPort   string `json:"otherPort"`   // base URL of the recorder on the plain host, another port
	CAFile      string `json:"caFile"`
	// Remote: the registry serves other machines (registry.Options.AllowRemote); the hosts above
	// are then its advertised host or its listen IPs, not loopback.
	Remote bool `json:"remote,omitempty"`
}

// EndpointsOf describes reg.
func EndpointsOf(reg *registry.Registry) Endpoints {
	return Endpoints{
		Plain: reg.PlainHost(), TLS: reg.TLSHost(), TLSAddr: reg.TLSAddr(), TLSHostName: reg.TLSHostName(),
		Foreign: reg.ForeignURL(), OtherPort: reg.OtherPortURL(), CAFile: reg.CAFile(), Remote: reg.Remote(),
	}
}

// ownHosts are the host:port of reg's listeners as it reports them (redirect targets that may be
// outside loopback when the registry serves other machines).
func ownHosts(reg *registry.Registry) []string {
	hosts := []string{reg.PlainHost(), reg.TLSAddr(), reg.TLSHost()}
	for _, u := range []string{reg.ForeignURL(), reg.OtherPortURL()} {
		hosts = append(hosts, strings.TrimPrefix(u, "http://"))
	}
	return hosts
}

// Action is the JSON form of faults.Action (durations as Go duration strings, body as text).
type Action struct {
	Kind        string      `json:"kind"`
	Status      int         `json:"status,omitempty"`
	RetryAfter  string      `json:"retryAfter,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Body        string      `json:"body,omitempty"`
	AfterBytes  int64       `json:"afterBytes,omitempty"`
	DripBytes   int         `json:"dripBytes,omitempty"`
	DripEvery   string      `json:"dripEvery,omitempty"`
	ContentType string      `json:"contentType,omitempty"`
	Location    string      `json:"location,omitempty"` // redirect-away: a loopback base URL
}

// Rule is the JSON form of faults.Rule.
type Rule struct {
	Match  route.Match `json:"match"`
	Action Action      `json:"action"`
	Times  int         `json:"times,omitempty"`
}

// actionKinds are the fault kinds the control API accepts.
func actionKinds() []string {
	return []string{
		faults.KindStatus, faults.KindReset, faults.KindTruncate, faults.KindCorrupt, faults.KindDrip,
		faults.KindStall, faults.KindDropDigestHeader, faults.KindContentType, faults.KindRedirectForeign,
		faults.KindRedirectChallenge, faults.KindRedirectAway, faults.KindHangUp,
	}
}

// toFault validates r and converts it; a redirect location must be on loopback or one of own
// (host:port).
func (r Rule) toFault(own []string) (faults.Rule, error) {
	known := slices.Contains(actionKinds(), r.Action.Kind)
	if !known {
		return faults.Rule{}, fmt.Errorf("unknown action kind %q (want one of %s)", r.Action.Kind, strings.Join(actionKinds(), ", "))
	}
	if r.Times < 0 {
		return faults.Rule{}, fmt.Errorf("negative times %d", r.Times)
	}
	if r.Match.Digest != "" {
		if err := r.Match.Digest.Validate(); err != nil {
			return faults.Rule{}, fmt.Errorf("match digest %q: %v", string(r.Match.Digest), err)
		}
	}
	var every time.Duration
	if r.Action.DripEvery != "" {
		d, err := time.ParseDuration(r.Action.DripEvery)
		if err != nil || d < 0 {
			return faults.Rule{}, fmt.Errorf("dripEvery %q is not a duration", r.Action.DripEvery)
		}
		every = d
	}
	if loc := r.Action.Location; loc != "" {
		// Redirect targets stay on loopback, like every listener of the registry.
		u, err := url.Parse(loc)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return faults.Rule{}, fmt.Errorf("location %q: want an http(s) base URL", loc)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
		if err := registry.CheckLoopback(host); err != nil && !slices.ContainsFunc(own, func(h string) bool { return strings.EqualFold(h, host) }) {
			return faults.Rule{}, fmt.Errorf("location %q: %v", loc, err)
		}
	}
	a := r.Action
	fr := faults.Rule{Match: r.Match, Times: r.Times, Action: faults.Action{
		Kind: a.Kind, Status: a.Status, RetryAfter: a.RetryAfter, Header: a.Header,
		AfterBytes: a.AfterBytes, DripBytes: a.DripBytes, DripEvery: every, ContentType: a.ContentType,
		Location: a.Location,
	}}
	if a.Body != "" {
		fr.Action.Body = []byte(a.Body)
	}
	return fr, nil
}

type handler struct{ reg *registry.Registry }

// Guard refuses what a web page in a local browser could send to the control API listening on
// addr: a Host other than addr (or localhost:PORT) — DNS rebinding —, any Origin header or a
// cross-site Sec-Fetch-Site (403), and a POST body that is not application/json (415; a page can
// send text/plain without a CORS preflight). Tools (curl -H 'Content-Type: application/json',
// Go clients) are unaffected.
func Guard(addr string, next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	hosts := map[string]bool{strings.ToLower(addr): true, "localhost:" + port: true}
	refuse := func(w http.ResponseWriter, status int, format string, args ...any) {
		writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch site := r.Header.Get("Sec-Fetch-Site"); {
		case !hosts[strings.ToLower(r.Host)]:
			refuse(w, http.StatusForbidden, "Host %s is not this control API (%s): refused", clip(r.Host), addr)
		case r.Header.Get("Origin") != "":
			refuse(w, http.StatusForbidden, "requests from web pages (Origin %s) are refused", clip(r.Header.Get("Origin")))
		case site != "" && site != "same-origin" && site != "none":
			refuse(w, http.StatusForbidden, "a %s request is refused", clip(site))
		case r.Method == http.MethodPost && r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")):
			refuse(w, http.StatusUnsupportedMediaType, "POST %s: Content-Type %s, want application/json", r.URL.Path, clip(r.Header.Get("Content-Type")))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// clip quotes at most 64 bytes of s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q… (%d bytes)", s[:64], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Handler returns the control API of reg (without Guard: Start adds it).
func Handler(reg *registry.Registry) http.Handler { return &handler{reg: reg} }

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, err := h.route(w, r)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{http.StatusInternalServerError, err.Error()}
		}
		writeJSON(w, he.status, map[string]string{"error": he.msg})
		return
	}
	if v != nil {
		writeJSON(w, http.StatusOK, v)
	}
}

// decode reads a JSON body into v, rejecting unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s %s: invalid JSON body: %v", r.Method, r.URL.Path, err)
	}
	return nil
}

func since(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("since")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("since=%q is not a sequence number", s)
	}
	return n, nil
}

func (h *handler) route(w http.ResponseWriter, r *http.Request) (any, error) {
	method := func(m string) error {
		if r.Method != m {
			w.Header().Set("Allow", m)
			return &httpError{http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m)}
		}
		return nil
	}
	j := h.reg.Journal()
	p := r.URL.Path
	switch {
	case p == "/endpoints":
		if err := method(http.MethodGet); err != nil {
			return nil, err
		}
		return EndpointsOf(h.reg), nil
	case p == "/journal":
		if err := method(http.MethodGet); err != nil {
			return nil, err
		}
		n, err := since(r)
		if err != nil {
			return nil, err
		}
		return j.Since(n), nil
	case p == "/journal/transcript":
		if err := method(http.MethodGet); err != nil {
			return nil, err
		}
		n, err := since(r)
		if err != nil {
			return nil, err
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(j.Transcript(j.Since(n))))
		return nil, nil
	case p == "/journal/saw-secret":
		if err := method(http.MethodPost); err != nil {
			return nil, err
		}
		var req struct {
			Listener route.Listener
			Secret   string
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if req.Secret == "" {
			return nil, badRequest("saw-secret: empty secret")
		}
		return map[string]bool{"seen": j.SawSecret(req.Listener, req.Secret)}, nil
	case p == "/journal/blob-gets":
		if err := method(http.MethodGet); err != nil {
			return nil, err
		}
		q := r.URL.Query()
		d, err := digest.Parse(q.Get("digest"))
		if err != nil {
			return nil, badRequest("blob-gets: digest %q: %v", q.Get("digest"), err)
		}
		return map[string]int{"count": j.BlobGets(q.Get("repo"), d)}, nil
	case p == "/faults":
		switch r.Method {
		case http.MethodPost:
			var rule Rule
			if err := decode(r, &rule); err != nil {
				return nil, err
			}
			fr, err := rule.toFault(ownHosts(h.reg))
			if err != nil {
				return nil, badRequest("fault rule: %v", err)
			}
			return map[string]string{"id": h.reg.Faults().Arm(fr)}, nil
		case http.MethodDelete:
			h.reg.Faults().ClearAll()
			return map[string]bool{"cleared": true}, nil
		}
		w.Header().Set("Allow", "POST, DELETE")
		return nil, &httpError{http.StatusMethodNotAllowed, fmt.Sprintf("%s /faults: use POST or DELETE", r.Method)}
	case strings.HasPrefix(p, "/faults/"):
		if err := method(http.MethodDelete); err != nil {
			return nil, err
		}
		h.reg.Faults().Clear(strings.TrimPrefix(p, "/faults/"))
		return map[string]bool{"cleared": true}, nil
	case p == "/tokens/registry":
		if err := method(http.MethodPost); err != nil {
			return nil, err
		}
		var req struct{ Scope string }
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if req.Scope == "" {
			return nil, badRequest("tokens/registry: empty scope")
		}
		return map[string]string{"token": h.reg.Auth().IssueRegistryToken(req.Scope)}, nil
	case p == "/tokens/refresh":
		if err := method(http.MethodPost); err != nil {
			return nil, err
		}
		return map[string]string{"refresh_token": h.reg.Auth().IssueRefreshToken()}, nil
	case p == "/tokens/revoke":
		if err := method(http.MethodPost); err != nil {
			return nil, err
		}
		h.reg.Auth().RevokeAll()
		return map[string]bool{"revoked": true}, nil
	case p == "/tokens/expires-in":
		if err := method(http.MethodPost); err != nil {
			return nil, err
		}
		var req struct{ Duration string }
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return nil, badRequest("tokens/expires-in: duration %q is not a positive duration", req.Duration)
		}
		h.reg.Auth().SetExpiresIn(d)
		return map[string]string{"expiresIn": d.String()}, nil
	}
	return nil, &httpError{http.StatusNotFound, fmt.Sprintf("no control endpoint %s", p)}
}
