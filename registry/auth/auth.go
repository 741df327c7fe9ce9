// Package auth is the fixture registry's authentication: a token service at /token on the
// registry's own host:port (GET per distribution's token.md, OAuth2 POST per oauth.md) and a
// per-namespace policy on /v2/ (the first path component of the repository picks anonymous,
// HTTP Basic, bearer, registry-token-only, or scoped access; see docs/design.md).
//
// Tokens are opaque random strings kept in the Service with their grants and expiry, not signed
// JWTs: the registry is the only party that checks them, so a lookup is simpler than key handling,
// makes revocation and expiry exact, and leaks nothing about the grant to the client.
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fixture credentials (documented fixture values, not anyone's secrets).
const (
	FixtureUser     = "criimage"
	FixturePassword = "criimage-password"
)

// A second fixture user whose password contains ':' (AuthConfig.auth must be split at the FIRST
// colon: base64("criimage-colon:criimage:colon:password")). It has the fixture user's rights in
// every namespace; Options.Username/Password do not change it.
const (
	FixtureColonUser     = "criimage-colon"
	FixtureColonPassword = "criimage:colon:password"
)

// Namespaces with an auth policy; every other namespace is anonymous (read and write).
const (
	NSBasic      = "basic"       // HTTP Basic (bearer tokens for it also accepted: see Middleware)
	NSToken      = "token"       // bearer, token service GET and POST
	NSTokenGet   = "token-get"   // bearer, token service POST answers 404
	NSTokenShort = "token-short" // bearer, short-lived tokens
	NSRegToken   = "regtoken"    // bearer, only pre-issued registry tokens
	NSScoped     = "scoped"      // bearer, the fixture user may use only scoped/allowed/…
)

// ScopedAllowedPrefix is the part of the scoped namespace the fixture user may pull from.
const ScopedAllowedPrefix = "scoped/allowed/"

// GetOnlyPath is the realm advertised for token-get/…: its POST answers 404.
const GetOnlyPath = "/token/get-only"

// Options configure a Service. Zero values take the defaults.
type Options struct {
	Username, Password string        // default FixtureUser, FixturePassword
	ServiceName        string        // the "service" of challenges and token requests; default "criimage-registry"
	ExpiresIn          time.Duration // lifetime of ordinary tokens; default 5m
	ShortExpiresIn     time.Duration // lifetime of tokens for token-short/…; default 60s (SetExpiresIn changes it)
	Now                func() time.Time
}

// Service issues and checks tokens. Create it with New; it is safe for concurrent use.
type Service struct {
	user, pass, service string
	expiresIn           time.Duration
	now                 func() time.Time

	mu       sync.Mutex
	quirks   Quirks
	short    time.Duration
	tokens   map[string]*token
	refresh  map[string]bool
	requests []TokenRequest
}

type token struct {
	grants    grants
	preissued bool
	expires   time.Time
	revoked   bool
}

// TokenRequest records one token service request, without any secret.
type TokenRequest struct {
	Time       time.Time
	Method     string // GET | POST
	Path       string // "/token", "/token/get-only"
	GrantType  string // POST: "password" | "refresh_token" | …
	ClientID   string
	Service    string
	Scopes     []string // as requested
	Offline    bool     // offline_token=true (GET) or access_type=offline (POST)
	Credential string   // "none" | "basic-password" | "basic-refresh-token" | "password" | "refresh-token" | "invalid"
	Granted    string   // granted scopes, space-separated
	Status     int
}

// New returns a Service.
func New(opts Options) *Service {
	s := &Service{
		user:      cmpOr(opts.Username, FixtureUser),
		pass:      cmpOr(opts.Password, FixturePassword),
		service:   cmpOr(opts.ServiceName, "criimage-registry"),
		expiresIn: opts.ExpiresIn,
		short:     opts.ShortExpiresIn,
		now:       opts.Now,
		tokens:    map[string]*token{},
		refresh:   map[string]bool{},
	}
	if s.expiresIn <= 0 {
		s.expiresIn = 5 * time.Minute
	}
	if s.short <= 0 {
		s.short = 60 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// validUser reports whether u, p are the credentials of a fixture user (the configured one or
// the colon user).
func (s *Service) validUser(u, p string) bool {
	return (u == s.user && p == s.pass) || (u == FixtureColonUser && p == FixtureColonPassword)
}

// ServiceName is the "service" value of challenges and token requests.
func (s *Service) ServiceName() string { return s.service }

// IssueRegistryToken mints a pre-issued registry token granting exactly scope (space-separated
// resource scopes, e.g. "repository:regtoken/x:pull"), for use as "Authorization: Bearer". It is
// the only kind of token regtoken/… accepts. An unparsable scope yields a token that grants nothing.
func (s *Service) IssueRegistryToken(scope string) string {
	g := grants{}
	scopes, _ := ParseScopes(scope)
	for _, sc := range scopes {
		k := sc.Type + ":" + sc.Name
		for _, a := range sc.Actions {
			if !slices.Contains(g[k], a) {
				g[k] = append(g[k], a)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := randomToken()
	s.tokens[t] = &token{grants: g, preissued: true, expires: s.now().Add(s.lifetimeLocked(scopes))}
	return t
}

// IssueRefreshToken mints an identity (refresh) token for the fixture user, as a grant_type=password
// POST with access_type=offline would.
func (s *Service) IssueRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := randomToken()
	s.refresh[t] = true
	return t
}

// RevokeAll makes every access token issued so far (pre-issued ones included) answer
// error="invalid_token". Refresh tokens stay valid, so clients can get new access tokens.
func (s *Service) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// ExpireAll makes every access token issued so far expired now (error="invalid_token"), as if its
// expires_in had passed.
func (s *Service) ExpireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, t := range s.tokens {
		if t.expires.After(now) {
			t.expires = now
		}
	}
}

// SetExpiresIn sets the lifetime of tokens issued from now on for token-short/… scopes.
func (s *Service) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.short = d
}

// Quirks are deviations real token services show (registry-wire.md §2 "fixture implications"),
// for informational specs. They apply to the whole Service; the zero value is the spec behaviour.
type Quirks struct {
	NoErrorParam    bool // challenges never carry error="invalid_token"/"insufficient_scope"
	OmitExpiresIn   bool // token responses without expires_in
	OmitIssuedAt    bool // token responses without issued_at
	AccessTokenOnly bool // GET responses carry access_token but not token
}

// SetQuirks replaces the Service's quirks (zero = none).
func (s *Service) SetQuirks(q Quirks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = q
}

func (s *Service) currentQuirks() Quirks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quirks
}

// TokenRequests returns every token service request so far, oldest first.
func (s *Service) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Service) lifetimeLocked(scopes []Scope) time.Duration {
	for _, sc := range scopes {
		if sc.Type == "repository" && namespace(sc.Name) == NSTokenShort {
			return s.short
		}
	}
	return s.expiresIn
}

// issue mints an access token for the requested scopes, granting for each the intersection of
// the requested actions and what the subject (fixture user or anonymous) may do.
func (s *Service) issue(user bool, scopes []Scope) (tok string, g grants, lifetime time.Duration, issued time.Time) {
	g = grants{}
	for _, sc := range scopes {
		acts := intersect(sc.Actions, allowed(user, sc))
		k := sc.Type + ":" + sc.Name
		for _, a := range acts {
			if !slices.Contains(g[k], a) {
				g[k] = append(g[k], a)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lifetime = s.lifetimeLocked(scopes)
	issued = s.now()
	tok = randomToken()
	s.tokens[tok] = &token{grants: g, expires: issued.Add(lifetime)}
	return tok, g, lifetime, issued
}

func (s *Service) newRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := randomToken()
	s.refresh[t] = true
	return t
}

func (s *Service) validRefresh(t string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t != "" && s.refresh[t]
}

// tokenState is the outcome of checking a bearer token.
type tokenState int

const (
	tokenUnknown tokenState = iota
	tokenInvalid            // revoked or expired
	tokenValid
)

func (s *Service) lookup(t string) (tokenState, *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tk, ok := s.tokens[t]
	switch {
	case !ok:
		return tokenUnknown, nil
	case tk.revoked || !s.now().Before(tk.expires):
		return tokenInvalid, tk
	}
	return tokenValid, tk
}

func (s *Service) record(tr TokenRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, tr)
}

// allowed is the policy: the actions a subject may have on a scope's resource.
func allowed(user bool, sc Scope) []string {
	switch sc.Type {
	case "registry": // catalog: open, like the anonymous namespaces
		return []string{"*"}
	case "repository":
	default:
		return nil
	}
	switch namespace(sc.Name) {
	case NSBasic, NSToken, NSTokenGet, NSTokenShort:
		if user {
			return []string{"pull", "push", "delete"}
		}
		return nil
	case NSScoped:
		if user && strings.HasPrefix(sc.Name, ScopedAllowedPrefix) {
			return []string{"pull", "push"}
		}
		return nil
	case NSRegToken: // only pre-issued tokens
		return nil
	}
	return []string{"*"}
}

// namespace is the first path component of a repository name.
func namespace(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}

// protected reports whether a namespace has an auth policy.
func protected(ns string) bool {
	switch ns {
	case NSBasic, NSToken, NSTokenGet, NSTokenShort, NSRegToken, NSScoped:
		return true
	}
	return false
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// requiredActions is what a request method needs (distribution registry/handlers/app.go).
func requiredActions(method string) []string {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return []string{"pull", "push"}
	case http.MethodDelete:
		return []string{"delete"}
	}
	return []string{"pull"}
}
