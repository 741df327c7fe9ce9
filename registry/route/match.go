package route

import "github.com/opencontainers/go-digest"

// Listener names the registry listener a request arrived on, as the journal records it and
// faults and gates match it.
type Listener string

// The registry's listeners.
const (
	ListenerPlain   Listener = "plain"   // plain HTTP, the registry under test
	ListenerTLS     Listener = "tls"     // the same registry over TLS
	ListenerForeign Listener = "foreign" // the foreign host (CDN and recorder) on another IP
	// ListenerOtherPort is the foreign host's recorder on the plain listener's IP, another port:
	// a redirect there changes only the port (net/http keeps an Authorization header across it).
	ListenerOtherPort Listener = "other-port"
)

// Match selects requests, for faults and gates. Every non-empty field must equal the request's;
// the zero Match matches every request. Repo, Reference, Digest and Kind are compared with
// Parse of the request path. Method is exact: "GET" does not match HEAD.
type Match struct {
	Listener  Listener      `json:"listener,omitempty"`
	Method    string        `json:"method,omitempty"`
	Repo      string        `json:"repo,omitempty"`
	Reference string        `json:"reference,omitempty"` // tag or digest string as written in the path
	Digest    digest.Digest `json:"digest,omitempty"`
	Kind      Kind          `json:"kind,omitempty"`
}

// Matches reports whether a request (listener, method, parsed path) is selected by m.
func (m Match) Matches(listener Listener, method string, rt Route) bool {
	switch {
	case m.Listener != "" && m.Listener != listener,
		m.Method != "" && m.Method != method,
		m.Repo != "" && m.Repo != rt.Repo,
		m.Reference != "" && m.Reference != rt.Reference,
		m.Digest != "" && m.Digest != rt.Digest,
		m.Kind != "" && m.Kind != rt.Kind:
		return false
	}
	return true
}
