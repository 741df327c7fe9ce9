package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerauth "github.com/containerd/containerd/v2/core/remotes/docker/auth"
)

// Authorizer returns a docker.Authorizer that enforces the scope. Token flows (Basic, bearer GET
// and OAuth2 POST, caching per scope, the one retry on error=...) are containerd's
// (docker.NewDockerAuthorizer); this wrapper only decides, per challenging host, whether the
// credentialed or the anonymous containerd authorizer handles it, and adds the registry token.
//
// Written by hand because containerd's authorizer hands credentials to whichever host sent the
// 401 and to whatever realm it names (containerd-cri-images.md §1.6); no containerd option
// restricts that.
func (s *Scope) Authorizer(client *http.Client, header http.Header) docker.Authorizer {
	opts := []docker.AuthorizerOpt{docker.WithAuthClient(TokenClient(client))}
	if header != nil {
		opts = append(opts, docker.WithAuthHeader(header))
	}
	return &scopedAuthorizer{
		scope: s,
		withCreds: docker.NewDockerAuthorizer(append(opts, docker.WithAuthCreds(func(host string) (string, string, error) {
			c := s.For(host)
			return c.Username, c.Secret, nil
		}))...),
		anon:    docker.NewDockerAuthorizer(opts...),
		trusted: map[string]bool{},
	}
}

// TokenClient returns a copy of client for token requests that keeps credentials on their origin:
// a redirect of a request that carries any (an Authorization header, or a body — the OAuth2
// password or refresh_token form) to another origin (scheme, host or port) is refused, so the
// credentials go to the realm the registry named and nowhere else. net/http alone would re-send
// a POST body on 307/308 and keep Authorization when only the port changes, also from https to
// http. Requests without credentials (anonymous token fetches) follow redirects as before.
func TokenClient(client *http.Client) *http.Client {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0]
		if carriesCredentials(first) && !sameOrigin(first.URL, req.URL) {
			return fmt.Errorf("token request to %s redirected to another origin (%s): not followed, it carries credentials",
				origin(first.URL), origin(req.URL))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

func carriesCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Body != nil && r.Body != http.NoBody || r.GetBody != nil
}

// origin is scheme://host:port, with the scheme's default port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func sameOrigin(a, b *url.URL) bool { return origin(a) == origin(b) }

type scopedAuthorizer struct {
	scope           *Scope
	withCreds, anon docker.Authorizer

	mu      sync.Mutex
	trusted map[string]bool // host → the credentialed authorizer handles it

	// inner serializes calls into containerd's authorizers. containerd v2.4.2's doBearerAuth
	// (core/remotes/docker/authorizer.go) reads a cached authResult's expirationTime under its
	// handler lock while the goroutine fetching that token writes it in a defer without the lock:
	// a data race whenever two requests of one pull need a token at once (go test -race shows it in
	// the suite's concurrent layer fetches). A caller arriving during a fetch would wait for that
	// fetch anyway (authResult.Wait); once the token is cached, Authorize returns at once.
	inner sync.Mutex
}

func (a *scopedAuthorizer) registryToken(host string) string {
	if !a.scope.Allowed(host) {
		return ""
	}
	return a.scope.creds.RegistryToken
}

// Authorize implements docker.Authorizer.
func (a *scopedAuthorizer) Authorize(ctx context.Context, req *http.Request) error {
	host := req.URL.Host
	if prev := req.Response; prev != nil && (!a.scope.Allowed(host) ||
		prev.Request != nil && prev.Request.URL.Scheme == "https" && req.URL.Scheme != "https") {
		// A redirect: net/http keeps Authorization when only the port differs (and from https to
		// http); drop it for any host the credentials are not for, and on any downgrade.
		req.Header.Del("Authorization")
		if a.scope.Allowed(host) {
			return nil // a downgraded request of an allowed host goes on without credentials
		}
	}
	if tok := a.registryToken(host); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	a.mu.Lock()
	trusted := a.trusted[host]
	a.mu.Unlock()
	a.inner.Lock()
	defer a.inner.Unlock()
	if trusted {
		return a.withCreds.Authorize(ctx, req)
	}
	return a.anon.Authorize(ctx, req)
}

// AddResponses implements docker.Authorizer.
func (a *scopedAuthorizer) AddResponses(ctx context.Context, responses []*http.Response) error {
	last := responses[len(responses)-1]
	host := last.Request.URL.Host
	if a.registryToken(host) != "" {
		return fmt.Errorf("%w: %s rejected the registry token", docker.ErrInvalidAuthorization, host)
	}
	creds := a.scope.For(host)
	challenges := dockerauth.ParseAuthHeader(last.Header)
	useCreds := !creds.Anonymous()
	hasBearer := false
	for _, c := range challenges {
		if c.Scheme != dockerauth.BearerAuth {
			continue
		}
		hasBearer = true
		realm, err := url.Parse(c.Parameters["realm"])
		if err != nil || !a.scope.RealmAllowed(host, last.Request.URL.Scheme, realm) {
			useCreds = false
		}
		break
	}
	a.mu.Lock()
	a.trusted[host] = useCreds
	a.mu.Unlock()
	if useCreds {
		return a.withCreds.AddResponses(ctx, responses)
	}
	if !hasBearer && len(challenges) > 0 {
		return fmt.Errorf("%w: %s asks for basic authentication and no credentials apply to it (%s)",
			docker.ErrInvalidAuthorization, host, a.scope.Describe())
	}
	return a.anon.AddResponses(ctx, responses)
}
