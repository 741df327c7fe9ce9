package auth_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/internal/clienttest"
)

const (
	user = auth.FixtureUser
	pass = auth.FixturePassword
)

// tokenCalls summarises the token requests since index from: "METHOD grant credential status".
func tokenCalls(svc *auth.Service, from int) []string {
	var out []string
	for _, tr := range svc.TokenRequests()[from:] {
		out = append(out, strings.Join(strings.Fields(tr.Method+" "+tr.GrantType+" "+tr.Credential), " ")+" "+http.StatusText(tr.Status))
	}
	return out
}

func wantCalls(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("token requests:\n got  %q\n want %q", got, want)
	}
}

func TestContainerdPullsEveryVariant(t *testing.T) {
	e := newEnv(t)
	for i, repo := range []string{"anon/img", "basic/img", "token/img", "token-get/img", "token-short/img", "regtoken/img", "scoped/allowed/img"} {
		e.push(t, repo, int64(i+1))
	}
	refresh := e.svc.IssueRefreshToken()

	cases := []struct {
		name, repo string
		p          clienttest.Containerd
		calls      []string
	}{
		{"anonymous", "anon/img", clienttest.Containerd{}, nil},
		{"basic", "basic/img", clienttest.Containerd{Authorizer: clienttest.Creds(user, pass)}, nil},
		{"token POST password", "token/img", clienttest.Containerd{Authorizer: clienttest.Creds(user, pass)}, []string{"POST password password OK"}},
		{"token POST refresh token", "token/img", clienttest.Containerd{Authorizer: clienttest.Creds("", refresh)}, []string{"POST refresh_token refresh-token OK"}},
		{"token GET fallback password", "token-get/img", clienttest.Containerd{Authorizer: clienttest.Creds(user, pass)},
			[]string{"POST password password Not Found", "GET basic-password OK"}},
		{"token GET fallback refresh token", "token-get/img", clienttest.Containerd{Authorizer: clienttest.Creds("", refresh)},
			[]string{"POST refresh_token refresh-token Not Found", "GET basic-refresh-token OK"}},
		{"token short", "token-short/img", clienttest.Containerd{Authorizer: clienttest.Creds(user, pass)}, []string{"POST password password OK"}},
		{"scoped allowed", "scoped/allowed/img", clienttest.Containerd{Authorizer: clienttest.Creds(user, pass)}, []string{"POST password password OK"}},
		{"registry token", "regtoken/img", clienttest.Containerd{Headers: http.Header{
			"Authorization": {"Bearer " + e.svc.IssueRegistryToken("repository:regtoken/img:pull")}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.p.Dir = t.TempDir()
			from := len(e.svc.TokenRequests())
			if _, err := c.p.Pull(clienttest.Context(t), e.ref(c.repo)); err != nil {
				t.Fatalf("pull %s: %v", c.repo, err)
			}
			wantCalls(t, tokenCalls(e.svc, from), c.calls...)
		})
	}
}

func TestGGCRPullsEveryVariant(t *testing.T) {
	e := newEnv(t)
	for i, repo := range []string{"anon/img", "basic/img", "token/img", "token-get/img", "token-short/img", "regtoken/img", "scoped/allowed/img"} {
		e.push(t, repo, int64(i+1))
	}
	refresh := e.svc.IssueRefreshToken()
	userPass := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})

	// ggcr picks one scheme per host from the /v2/ ping (Bearer here); forcing the Basic
	// transport is how a client that saw a Basic ping behaves.
	reg, err := name.NewRegistry(e.host)
	if err != nil {
		t.Fatal(err)
	}
	basicOnly, err := transport.FromToken(reg, userPass, http.DefaultTransport, &transport.Challenge{Scheme: "basic", Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, repo string
		opts       []remote.Option
		calls      []string
	}{
		{"anonymous", "anon/img", nil, []string{"GET none OK"}},
		{"basic via ping bearer", "basic/img", []remote.Option{remote.WithAuth(userPass)}, []string{"GET basic-password OK"}},
		{"basic scheme", "basic/img", []remote.Option{remote.WithTransport(basicOnly)}, nil},
		{"token GET", "token/img", []remote.Option{remote.WithAuth(userPass)}, []string{"GET basic-password OK"}},
		{"token-get GET", "token-get/img", []remote.Option{remote.WithAuth(userPass)}, []string{"GET basic-password OK"}},
		{"token POST refresh token", "token/img", []remote.Option{remote.WithAuth(authn.FromConfig(authn.AuthConfig{IdentityToken: refresh}))},
			[]string{"POST refresh_token refresh-token OK"}},
		{"token short", "token-short/img", []remote.Option{remote.WithAuth(userPass)}, []string{"GET basic-password OK"}},
		{"scoped allowed", "scoped/allowed/img", []remote.Option{remote.WithAuth(userPass)}, []string{"GET basic-password OK"}},
		{"registry token", "regtoken/img", []remote.Option{remote.WithAuth(authn.FromConfig(authn.AuthConfig{
			RegistryToken: e.svc.IssueRegistryToken("repository:regtoken/img:pull")}))}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := len(e.svc.TokenRequests())
			if err := clienttest.PullGGCR(clienttest.Context(t), e.ref(c.repo), c.opts...); err != nil {
				t.Fatalf("pull %s: %v", c.repo, err)
			}
			wantCalls(t, tokenCalls(e.svc, from), c.calls...)
		})
	}
}

func TestWrongCredentialsFail(t *testing.T) {
	e := newEnv(t)
	e.push(t, "basic/img", 1)
	e.push(t, "token/img", 2)
	const bad = "not-the-password"
	for _, repo := range []string{"basic/img", "token/img"} {
		t.Run("containerd "+repo, func(t *testing.T) {
			_, err := clienttest.Containerd{Authorizer: clienttest.Creds(user, bad), Dir: t.TempDir()}.Pull(clienttest.Context(t), e.ref(repo))
			if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "unauthorized") {
				t.Fatalf("want a 401 error, got %v", err)
			}
			noSecret(t, err, bad)
		})
		t.Run("ggcr "+repo, func(t *testing.T) {
			err := clienttest.PullGGCR(clienttest.Context(t), e.ref(repo), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: bad})))
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "UNAUTHORIZED") {
				t.Fatalf("want a 401 UNAUTHORIZED transport error, got %v", err)
			}
			noSecret(t, err, bad)
		})
	}
	t.Run("anonymous on protected", func(t *testing.T) {
		_, err := clienttest.Containerd{Dir: t.TempDir()}.Pull(clienttest.Context(t), e.ref("token/img"))
		if err == nil {
			t.Fatal("anonymous pull of token/img succeeded")
		}
	})
}

func TestInsufficientScope(t *testing.T) {
	e := newEnv(t)
	e.push(t, "scoped/denied/img", 1)
	e.push(t, "regtoken/img", 2)
	t.Run("containerd scoped", func(t *testing.T) {
		_, err := clienttest.Containerd{Authorizer: clienttest.Creds(user, pass), Dir: t.TempDir()}.Pull(clienttest.Context(t), e.ref("scoped/denied/img"))
		if err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
			t.Fatalf("want insufficient_scope, got %v", err)
		}
	})
	t.Run("ggcr scoped", func(t *testing.T) {
		err := clienttest.PullGGCR(clienttest.Context(t), e.ref("scoped/denied/img"), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("want 401, got %v", err)
		}
	})
	t.Run("registry token for another repo", func(t *testing.T) {
		tok := e.svc.IssueRegistryToken("repository:regtoken/other:pull")
		_, err := clienttest.Containerd{Headers: http.Header{"Authorization": {"Bearer " + tok}}, Dir: t.TempDir()}.Pull(clienttest.Context(t), e.ref("regtoken/img"))
		if err == nil {
			t.Fatal("pull with a token for another repository succeeded")
		}
		noSecret(t, err, tok)
	})
	t.Run("token service token refused on regtoken", func(t *testing.T) {
		_, err := clienttest.Containerd{Authorizer: clienttest.Creds(user, pass), Dir: t.TempDir()}.Pull(clienttest.Context(t), e.ref("regtoken/img"))
		if err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
			t.Fatalf("want insufficient_scope, got %v", err)
		}
	})
}

// TestContainerdRecoversFromInvalidToken: a token that expires or is revoked between resolve and
// fetch is answered error="invalid_token"; containerd drops it, fetches a new one and finishes.
func TestContainerdRecoversFromInvalidToken(t *testing.T) {
	e := newEnv(t)
	e.push(t, "token-short/img", 1)
	e.push(t, "token/img", 2)
	for _, c := range []struct {
		name, repo string
		spoil      func()
	}{
		{"expired", "token-short/img", func() { e.clock.Advance(61 * time.Second) }},
		{"revoked", "token/img", e.svc.RevokeAll},
		{"expire all", "token/img", e.svc.ExpireAll},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := clienttest.Containerd{Authorizer: clienttest.Creds(user, pass), Dir: t.TempDir()}
			from := len(e.svc.TokenRequests())
			r, n, desc, err := p.Resolve(clienttest.Context(t), e.ref(c.repo))
			if err != nil {
				t.Fatal(err)
			}
			c.spoil()
			if err := p.Fetch(clienttest.Context(t), r, n, desc); err != nil {
				t.Fatalf("fetch after %s token: %v", c.name, err)
			}
			wantCalls(t, tokenCalls(e.svc, from), "POST password password OK", "POST password password OK")
		})
	}
	t.Run("revoked registry token stays refused", func(t *testing.T) {
		e.push(t, "regtoken/img", 3)
		tok := e.svc.IssueRegistryToken("repository:regtoken/img:pull")
		p := clienttest.Containerd{Headers: http.Header{"Authorization": {"Bearer " + tok}}, Dir: t.TempDir()}
		if _, err := p.Pull(clienttest.Context(t), e.ref("regtoken/img")); err != nil {
			t.Fatal(err)
		}
		e.svc.RevokeAll()
		if _, err := p.Pull(clienttest.Context(t), e.ref("regtoken/img")); err == nil {
			t.Fatal("pull with a revoked registry token succeeded")
		}
	})
}

func TestQuirks(t *testing.T) {
	e := newEnv(t)
	e.push(t, "token/img", 1)
	e.push(t, "token-get/img", 2)

	t.Run("access_token only, no expires_in or issued_at", func(t *testing.T) {
		e.svc.SetQuirks(auth.Quirks{AccessTokenOnly: true, OmitExpiresIn: true, OmitIssuedAt: true})
		defer e.svc.SetQuirks(auth.Quirks{})
		w := get(t, e.srv.URL+"/token?scope=repository:token/img:pull", "Authorization", basicAuth(user, pass))
		for _, k := range []string{"token", "expires_in", "issued_at"} {
			if _, ok := w.json[k]; ok {
				t.Errorf("%s present: %s", k, w.body)
			}
		}
		if _, err := (clienttest.Containerd{Authorizer: clienttest.Creds(user, pass), Dir: t.TempDir()}).Pull(clienttest.Context(t), e.ref("token-get/img")); err != nil {
			t.Errorf("containerd (GET fallback): %v", err)
		}
		if err := clienttest.PullGGCR(clienttest.Context(t), e.ref("token/img"), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))); err != nil {
			t.Errorf("ggcr: %v", err)
		}
	})
	t.Run("no error param: containerd keeps the revoked token", func(t *testing.T) {
		e.svc.SetQuirks(auth.Quirks{NoErrorParam: true})
		defer e.svc.SetQuirks(auth.Quirks{})
		p := clienttest.Containerd{Authorizer: clienttest.Creds(user, pass), Dir: t.TempDir()}
		from := len(e.svc.TokenRequests())
		r, n, desc, err := p.Resolve(clienttest.Context(t), e.ref("token/img"))
		if err != nil {
			t.Fatal(err)
		}
		e.svc.RevokeAll()
		if err := p.Fetch(clienttest.Context(t), r, n, desc); err == nil {
			t.Fatal("fetch with a revoked token and a bare challenge succeeded")
		}
		// The bare challenge makes containerd reuse its handler: no second token request.
		wantCalls(t, tokenCalls(e.svc, from), "POST password password OK")
	})
}
