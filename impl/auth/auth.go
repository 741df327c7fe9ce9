// Package auth turns a CRI AuthConfig into registry credentials and decides which hosts may
// receive them.
//
// Precedence (ParseAuth), first non-empty wins:
//
//	username (+ password, even empty)  → Basic / OAuth2 password grant
//	identity_token                     → OAuth2 refresh_token grant (username "")
//	auth = base64("user:password")     → as username/password
//	registry_token                     → "Authorization: Bearer <token>" sent as is, no token exchange
//
// `auth` is decoded with base64.StdEncoding; an unpadded value (RawStdEncoding) is accepted too,
// because several producers strip the padding and accepting it costs nothing. The decoded value
// has trailing NULs trimmed and is split at the FIRST ':'; no ':' or an empty username is
// InvalidArgument. No error message ever contains a secret or its decoded form.
//
// Scoping (Scope): credentials go only to the host named by server_address (scheme optional,
// host:port compared exactly, host name case-insensitively; `docker.io`, `index.docker.io`,
// `registry-1.docker.io` and `https://index.docker.io/v1/` all mean Docker Hub), or, when
// server_address is empty, to the registry of the reference being pulled — and to the hosts the
// node's registry configuration (certs.d/<registry>/hosts.toml) declares for that registry
// (ServedBy): a mirror of docker.io gets credentials scoped to docker.io, because kubelet hands
// over the credentials of the image's registry and the node's configuration says that this host
// serves it; a mirror declared for any other registry gets nothing. A bearer realm receives them only if it is on
// the same host:port as the challenging registry (Docker Hub: also auth.docker.io) and does not
// downgrade an https registry to an http realm. Everything else — foreign-layer URLs, redirect
// targets on another origin, realms elsewhere — is treated as anonymous. A token request that
// carries credentials (the OAuth2 form, a Basic header) and is redirected to another origin
// (scheme, host or port) is refused rather than followed (TokenClient): net/http would repeat
// the form on 307/308 and keep the header when only the port changes.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/containerd/errdefs"

	"github.com/criimage/criimage/impl/internal/echo"
)

// Credentials are what an allowed registry host receives. The zero value is anonymous.
type Credentials struct {
	// Username with Secret as password; Username "" with Secret set means an identity
	// (OAuth2 refresh) token.
	Username, Secret string
	// RegistryToken is sent as a bearer token directly.
	RegistryToken string
}

// Anonymous reports whether c carries no credential at all.
func (c Credentials) Anonymous() bool {
	return c.Username == "" && c.Secret == "" && c.RegistryToken == ""
}

// String never shows a secret.
func (c Credentials) String() string {
	switch {
	case c.Username != "":
		return fmt.Sprintf("user %q", c.Username)
	case c.Secret != "":
		return "identity token"
	case c.RegistryToken != "":
		return "registry token"
	}
	return "anonymous"
}

// Fixed error texts. They never include any part of the input's secret fields.
const (
	errAuthBase64  = "auth config: field auth is not valid base64"
	errAuthNoColon = "auth config: field auth does not decode to \"username:password\" (no ':' found)"
	errAuthNoUser  = "auth config: field auth decodes to an empty username"
	errServerAddr  = "auth config: field server_address"

	errRegistryTokenCTL = "auth config: field registry_token contains control characters (CR, LF, …); it is sent as an HTTP header"
)

// errTexts lists the constant parts of every error, for the fuzz target.
var errTexts = []string{errAuthBase64, errAuthNoColon, errAuthNoUser, errServerAddr, errRegistryTokenCTL}

// ParseAuth applies the precedence above. nil or an empty AuthConfig is anonymous. A malformed
// auth field is errdefs.ErrInvalidArgument whose message names the field, never its value.
func ParseAuth(a *runtime.AuthConfig) (Credentials, error) {
	if a == nil {
		return Credentials{}, nil
	}
	switch {
	case a.Username != "":
		return Credentials{Username: a.Username, Secret: a.Password}, nil
	case a.IdentityToken != "":
		return Credentials{Secret: a.IdentityToken}, nil
	case a.Auth != "":
		return decodeAuth(a.Auth)
	case a.RegistryToken != "":
		if strings.ContainsFunc(a.RegistryToken, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			// It goes into an Authorization header as is: CR/LF would split the request.
			return Credentials{}, errdefs.ErrInvalidArgument.WithMessage(errRegistryTokenCTL)
		}
		return Credentials{RegistryToken: a.RegistryToken}, nil
	}
	return Credentials{}, nil
}

func decodeAuth(s string) (Credentials, error) {
	dec, err := base64.StdEncoding.DecodeString(s)
	if err != nil && !strings.Contains(s, "=") {
		// Unpadded input: accepted (documented in the package comment).
		dec, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		// err is a CorruptInputError: an offset, never input bytes.
		return Credentials{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %v", errAuthBase64, err))
	}
	user, pass, ok := strings.Cut(strings.TrimRight(string(dec), "\x00"), ":")
	if !ok {
		return Credentials{}, errdefs.ErrInvalidArgument.WithMessage(errAuthNoColon)
	}
	if user == "" {
		return Credentials{}, errdefs.ErrInvalidArgument.WithMessage(errAuthNoUser)
	}
	return Credentials{Username: user, Secret: pass}, nil
}

// Docker Hub's names. Requests go to registry-1.docker.io, tokens come from auth.docker.io.
const (
	dockerHubRealmHost = "auth.docker.io"
)

var dockerHubAliases = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// Scope binds parsed credentials to the hosts allowed to receive them.
type Scope struct {
	creds     Credentials
	hosts     map[string]bool // lower-cased host[:port]
	dockerHub bool
	server    string // server_address as given ("" = the pulled registry)
}

// NewScope parses a and scopes it to server_address, or to registryHost (the domain of the
// reference being pulled, e.g. reference.Domain(named)) when server_address is empty.
func NewScope(a *runtime.AuthConfig, registryHost string) (*Scope, error) {
	creds, err := ParseAuth(a)
	if err != nil {
		return nil, err
	}
	s := &Scope{creds: creds, hosts: map[string]bool{}}
	target := registryHost
	if a != nil && a.ServerAddress != "" {
		s.server = a.ServerAddress
		h, err := serverHost(a.ServerAddress)
		if err != nil {
			return nil, err
		}
		target = h
	}
	target = strings.ToLower(target)
	for _, alias := range dockerHubAliases {
		if target == alias {
			s.dockerHub = true
		}
	}
	if s.dockerHub {
		for _, alias := range dockerHubAliases {
			s.hosts[alias] = true
		}
	} else if target != "" {
		s.hosts[target] = true
	}
	return s, nil
}

// serverHost extracts host[:port] from a server_address with or without scheme and path.
func serverHost(addr string) (string, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "dummy://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Port() != "" && !validPort(u.Port()) {
		// Not an address, so it may well be a credential typed into the wrong field: named by
		// its length only.
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s (%d bytes, value withheld) is not a registry address ([scheme://]host[:port][/path])", errServerAddr, len(addr)))
	}
	return u.Host, nil
}

// validPort reports whether p is a TCP port number.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// quoteAddr quotes a server address for an error unless it could hold userinfo; long ones are cut.
func quoteAddr(addr string) string {
	if strings.Contains(addr, "@") {
		return "(value withheld: it contains '@')"
	}
	return echo.Quote(addr)
}

// ServedBy returns the scope for host when it serves registry (a host the node's registry
// configuration declares for registry: a mirror, or registry's own endpoint): if the credentials
// are for registry, host may receive them too. Otherwise it returns s unchanged.
func (s *Scope) ServedBy(registry, host string) *Scope {
	if !s.Allowed(registry) || s.Allowed(host) {
		return s
	}
	c := *s
	c.hosts = maps.Clone(s.hosts)
	c.hosts[strings.ToLower(host)] = true
	return &c
}

// Credentials returns the parsed credentials, unscoped.
func (s *Scope) Credentials() Credentials { return s.creds }

// Allowed reports whether host (host[:port] as in a request URL) may receive the credentials.
func (s *Scope) Allowed(host string) bool {
	return s.hosts[strings.ToLower(host)]
}

// For returns the credentials for host, or the zero (anonymous) value if host is not allowed.
func (s *Scope) For(host string) Credentials {
	if !s.Allowed(host) {
		return Credentials{}
	}
	return s.creds
}

// RealmAllowed reports whether a bearer realm advertised by host (reached over scheme) may receive
// the credentials: same host:port (Docker Hub: also auth.docker.io), and no https → http downgrade.
func (s *Scope) RealmAllowed(host, scheme string, realm *url.URL) bool {
	if !s.Allowed(host) || realm == nil {
		return false
	}
	if realm.Scheme != "https" && !(realm.Scheme == "http" && scheme == "http") {
		return false
	}
	rh := strings.ToLower(realm.Host)
	if rh == strings.ToLower(host) {
		return true
	}
	return s.dockerHub && (rh == dockerHubRealmHost || rh == dockerHubRealmHost+":443")
}

// Describe names the scope for error messages, without secrets.
func (s *Scope) Describe() string {
	if s.creds.Anonymous() {
		return "anonymous"
	}
	if s.server != "" {
		return fmt.Sprintf("%s for server_address %s", s.creds, quoteAddr(s.server))
	}
	return fmt.Sprintf("%s for the pulled registry", s.creds)
}

// Fingerprint is a keyed digest of everything that decides what a pull may authenticate as
// (credentials and their scope), for merging identical pulls without keeping secrets in keys.
func (s *Scope) Fingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range []string{s.creds.Username, s.creds.Secret, s.creds.RegistryToken} {
		fmt.Fprintf(m, "%d:%s;", len(f), f)
	}
	hosts := make([]string, 0, len(s.hosts))
	for h := range s.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		fmt.Fprintf(m, "%d:%s;", len(h), h)
	}
	return hex.EncodeToString(m.Sum(nil))
}
