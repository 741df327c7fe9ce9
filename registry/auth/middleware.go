package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
)

// Middleware serves the token service at /token (and /token/get-only) and enforces the
// per-namespace policy on /v2/ requests; everything else goes to next untouched.
//
// The /v2/ ping answers 200 with valid credentials (a live token or the fixture Basic password)
// and otherwise 401 with a Bearer challenge without scope, like a token-auth distribution registry.
// Clients that ping first (ggcr, containers/image) pick one scheme per host from that answer, so
// basic/… also accepts bearer tokens for its scopes (the token service grants them only to the
// fixture user); clients that react to each request's own challenge (containerd) see Basic there.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route.Parse(r.URL.Path)
		switch {
		case rt.Kind == route.KindToken:
			s.serveToken(w, r)
			return
		case rt.Kind == route.KindPing:
			if s.pingAuthorized(r) {
				next.ServeHTTP(w, r)
				return
			}
			s.challenge(w, r, challenge{scheme: "Bearer", realm: s.realm(r, ""), message: "authentication required"})
			return
		case rt.Kind == route.KindUpload && r.Method == http.MethodPost:
			r = s.guardMount(r)
		}
		switch {
		case !strings.HasPrefix(r.URL.Path, "/v2/") || rt.Repo == "" || !protected(rt.Namespace):
			next.ServeHTTP(w, r)
			return
		}
		acts := requiredActions(r.Method)
		c := s.check(r, rt, acts)
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		s.challenge(w, r, *c)
	})
}

// guardMount turns a cross-repository mount (POST …/blobs/uploads/?mount=D&from=REPO) whose
// credentials do not grant pull on REPO into a plain upload start: the mount and from parameters
// are dropped, so the API answers 202 with a new session, as distribution-spec allows for a mount
// the registry will not do. Without this, anonymous push rights on anon/… would read any
// protected blob by mounting it.
func (s *Service) guardMount(r *http.Request) *http.Request {
	q := r.URL.Query()
	from := q.Get("from")
	if q.Get("mount") == "" || from == "" || !route.ValidRepo(from) { // (an invalid name: the API answers NAME_INVALID)
		return r
	}
	ns := namespace(from)
	if !protected(ns) || s.check(r, route.Route{Kind: route.KindBlob, Repo: from, Namespace: ns, ValidName: true}, []string{"pull"}) == nil {
		return r
	}
	q.Del("mount")
	q.Del("from")
	u := *r.URL
	u.RawQuery = q.Encode()
	r2 := *r
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return &r2
}

// challenge is a refusal of a /v2/ request.
type challenge struct {
	scheme  string // "Basic" | "Bearer"
	realm   string
	scope   string // Bearer: the scope needed
	err     string // Bearer: "" | "invalid_token" | "insufficient_scope"
	message string
	repo    string
	actions []string
}

// check returns nil when the request may proceed, else the challenge to answer.
func (s *Service) check(r *http.Request, rt route.Route, acts []string) *challenge {
	scope := "repository:" + rt.Repo + ":" + strings.Join(acts, ",")
	what := fmt.Sprintf("%s on repository %q", strings.Join(acts, ","), rt.Repo)
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	scheme = strings.ToLower(scheme)

	if rt.Namespace == NSBasic {
		c := &challenge{scheme: "Basic", realm: s.service, repo: rt.Repo, actions: acts,
			message: "authentication required for " + what}
		switch scheme {
		case "basic":
			if u, p, ok := r.BasicAuth(); ok && s.validUser(u, p) {
				return nil
			}
			c.message = "invalid username or password for " + what
		case "bearer":
			if st, tk := s.lookup(cred); st == tokenValid && tk.grants.allows("repository", rt.Repo, acts) {
				return nil
			}
			c.message = "bearer token not valid for " + what
		}
		return c
	}

	c := &challenge{scheme: "Bearer", realm: s.realm(r, rt.Namespace), scope: scope, repo: rt.Repo, actions: acts}
	if scheme != "bearer" {
		c.message = "bearer token required for " + what
		return c
	}
	st, tk := s.lookup(cred)
	switch {
	case st == tokenUnknown:
		c.err, c.message = "invalid_token", "unknown bearer token for "+what
	case st == tokenInvalid:
		c.err, c.message = "invalid_token", "bearer token expired or revoked for "+what
	case rt.Namespace == NSRegToken && !tk.preissued:
		c.err, c.message = "insufficient_scope", "only pre-issued registry tokens are accepted for "+what
	case !tk.grants.allows("repository", rt.Repo, acts):
		c.err, c.message = "insufficient_scope", "bearer token does not grant "+what
	default:
		return nil
	}
	return c
}

func (s *Service) pingAuthorized(r *http.Request) bool {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch strings.ToLower(scheme) {
	case "basic":
		u, p, ok := r.BasicAuth()
		return ok && s.validUser(u, p)
	case "bearer":
		st, _ := s.lookup(cred)
		return st == tokenValid
	}
	return false
}

// realm is the token service URL on the request's own scheme and host:port (ggcr refuses realms on
// other loopback hosts).
func (s *Service) realm(r *http.Request, ns string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := "/token"
	if ns == NSTokenGet {
		path = GetOnlyPath
	}
	return scheme + "://" + r.Host + path
}

func (s *Service) challenge(w http.ResponseWriter, r *http.Request, c challenge) {
	h := w.Header()
	if c.scheme == "Basic" {
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", c.realm))
	} else {
		v := fmt.Sprintf("Bearer realm=%q,service=%q", c.realm, s.service)
		if c.scope != "" {
			v += fmt.Sprintf(",scope=%q", c.scope)
		}
		if c.err != "" && !s.currentQuirks().NoErrorParam {
			v += fmt.Sprintf(",error=%q", c.err)
		}
		h.Set("WWW-Authenticate", v)
	}
	type detail struct {
		Type, Class, Name, Action string
	}
	var details []detail
	for _, a := range c.actions {
		details = append(details, detail{Type: "repository", Name: c.repo, Action: a})
	}
	var d any
	if len(details) > 0 {
		d = details
	}
	errcode.Write(w, r, http.StatusUnauthorized, errcode.Unauthorized, c.message, d)
}
