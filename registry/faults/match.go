package faults

import (
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/route"
)

// Match selects requests. Every non-empty field must equal the request's; the zero Match matches
// every request. Repo, Reference, Digest and Kind are compared with route.Parse of the request path
// (Kind is a route.Kind string: "manifest", "blob", "upload", "tags", "ping", "token", "foreign", …).
// Method is exact: "GET" does not match HEAD.
type Match struct {
	Listener  string // "plain" | "tls" | "foreign" (the name the registry passes to Middleware)
	Method    string
	Repo      string
	Reference string // tag or digest string as written in the path
	Digest    digest.Digest
	Kind      string
}

// Matches reports whether a request arriving on listener is selected by m.
func (m Match) Matches(listener string, r *http.Request) bool {
	return m.MatchesRoute(listener, r.Method, route.Parse(r.URL.Path))
}

// MatchesRoute is Matches on an already parsed route.
func (m Match) MatchesRoute(listener, method string, rt route.Route) bool {
	switch {
	case m.Listener != "" && m.Listener != listener,
		m.Method != "" && m.Method != method,
		m.Repo != "" && m.Repo != rt.Repo,
		m.Reference != "" && m.Reference != rt.Reference,
		m.Digest != "" && m.Digest != rt.Digest,
		m.Kind != "" && m.Kind != string(rt.Kind):
		return false
	}
	return true
}
