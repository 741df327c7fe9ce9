package pull

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/grpcerr"
	regauth "github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

const (
	user = regauth.FixtureUser
	pass = regauth.FixturePassword
)

func basicAuth(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }

// secretsOf lists the secrets an AuthConfig carries (and derived forms the journal records).
func secretsOf(a *runtime.AuthConfig) []string {
	var s []string
	for _, v := range []string{a.Password, a.IdentityToken, a.RegistryToken, a.Auth} {
		if v != "" {
			s = append(s, v)
		}
	}
	if a.Auth != "" {
		s = append(s, pass)
	}
	return s
}

// assertNoSecret fails if err or any listener other than allowed saw a secret of a.
func (e *env) assertNoSecret(err error, a *runtime.AuthConfig, allowed ...route.Listener) {
	e.t.Helper()
	for _, s := range secretsOf(a) {
		if err != nil && strings.Contains(err.Error(), s) {
			e.t.Errorf("error %q contains a secret", err)
		}
		for _, l := range []route.Listener{route.ListenerPlain, route.ListenerTLS, route.ListenerForeign, route.ListenerOtherPort} {
			if !slices.Contains(allowed, l) && e.reg.Journal().SawSecret(l, s) {
				e.t.Errorf("listener %s received a secret:\n%s", l, e.reg.Journal().Transcript(e.reg.Journal().Entries()))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPullAuthVariants(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	host := e.reg.PlainHost()
	img := buildImage(t, true, linuxAMD64, map[string]string{"auth": "1"})
	for _, repo := range []string{"basic/img", "token/img", "token-get/img", "regtoken/img"} {
		e.push(repo, "v1", img)
	}
	refresh := e.reg.Auth().IssueRefreshToken()
	regToken := e.reg.Auth().IssueRegistryToken("repository:regtoken/img:pull")

	for _, tc := range []struct {
		name string
		repo string
		auth *runtime.AuthConfig
	}{
		{"basic username", "basic/img", &runtime.AuthConfig{Username: user, Password: pass}},
		{"basic auth field", "basic/img", &runtime.AuthConfig{Auth: basicAuth(user, pass)}},
		{"token username (POST password grant)", "token/img", &runtime.AuthConfig{Username: user, Password: pass}},
		{"token auth field", "token/img", &runtime.AuthConfig{Auth: basicAuth(user, pass)}},
		{"token identity token (POST refresh grant)", "token/img", &runtime.AuthConfig{IdentityToken: refresh}},
		{"GET-only token server", "token-get/img", &runtime.AuthConfig{Username: user, Password: pass}},
		{"registry token", "regtoken/img", &runtime.AuthConfig{RegistryToken: regToken}},
		{"server_address with scheme", "token/img", &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: "http://" + host}},
		{"server_address schemeless", "token/img", &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: host}},
		{"server_address with path", "basic/img", &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: "http://" + host + "/v2/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/" + tc.repo + ":v1"), Auth: tc.auth})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			_ = res.Done(e.ctx)
			e.assertNoSecret(nil, tc.auth, route.ListenerPlain)
		})
	}
}

// TestPullTokenRedirectKeepsCredentials: a token request answered with a redirect to another
// origin (another IP, or the registry's IP on another port) must not carry the password form,
// the refresh token or the Basic header there — net/http re-sends a POST body on 307/308 and
// keeps Authorization when only the port changes.
func TestPullTokenRedirectKeepsCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	host := e.reg.PlainHost()
	img := buildImage(t, true, linuxAMD64, map[string]string{"redirect": "1"})
	e.push("token/img", "v1", img)
	e.push("token-get/img", "v1", img)
	refresh := e.reg.Auth().IssueRefreshToken()
	for _, tc := range []struct {
		name   string
		repo   string
		method string
		auth   *runtime.AuthConfig
	}{
		{"password form", "token/img", http.MethodPost, &runtime.AuthConfig{Username: user, Password: pass}},
		{"refresh grant", "token/img", http.MethodPost, &runtime.AuthConfig{IdentityToken: refresh}},
		{"GET with Basic", "token-get/img", http.MethodGet, &runtime.AuthConfig{Username: user, Password: pass}},
	} {
		for _, to := range []struct {
			name, url string
			status    int
		}{
			{"another IP", e.reg.ForeignURL(), http.StatusTemporaryRedirect},
			{"another port", e.reg.OtherPortURL(), http.StatusPermanentRedirect},
		} {
			t.Run(tc.name+" to "+to.name, func(t *testing.T) {
				id := e.reg.Faults().Arm(faults.Rule{Match: route.Match{Kind: route.KindToken, Method: tc.method},
					Action: faults.Action{Kind: faults.KindRedirectAway, Status: to.status, Location: to.url}})
				defer e.reg.Faults().Clear(id)
				before := e.reg.Journal().Last()
				_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/" + tc.repo + ":v1"), Auth: tc.auth})
				if err == nil {
					t.Fatal("the pull succeeded although every token request was sent away")
				}
				if e.reg.Faults().Used(id) == 0 {
					t.Fatalf("no token request was redirected:\n%s", e.reg.Journal().Transcript(e.reg.Journal().Since(before)))
				}
				e.assertNoSecret(err, tc.auth, route.ListenerPlain)
				for _, en := range e.reg.Journal().Since(before) {
					if en.Listener != route.ListenerPlain && en.AuthScheme != "" {
						t.Errorf("%s got an Authorization header: %s %s", en.Listener, en.Method, en.Path)
					}
				}
			})
		}
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPullAuthFailures(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer func() {
		out := logs.String()
		if !strings.Contains(out, "pull failed") {
			t.Errorf("failures were not logged:\n%s", out)
		}
		for _, s := range []string{pass, "wrong-password-1", "wrong-password-2", "not-an-identity-token", "not-a-registry-token",
			base64.StdEncoding.EncodeToString([]byte("no-colon-secret")), "no-colon-secret"} {
			if strings.Contains(out, s) {
				t.Errorf("the log contains the secret %q", s)
			}
		}
	}()
	host := e.reg.PlainHost()
	img := buildImage(t, true, linuxAMD64, map[string]string{"auth": "2"})
	for _, repo := range []string{"basic/img", "token/img", "regtoken/img"} {
		e.push(repo, "v1", img)
	}
	for _, tc := range []struct {
		name string
		repo string
		auth *runtime.AuthConfig
		code codes.Code
	}{
		{"anonymous on basic", "basic/img", nil, codes.Unauthenticated},
		{"anonymous on token", "token/img", nil, codes.Unauthenticated},
		{"wrong password basic", "basic/img", &runtime.AuthConfig{Username: user, Password: "wrong-password-1"}, codes.Unauthenticated},
		{"wrong password token", "token/img", &runtime.AuthConfig{Username: user, Password: "wrong-password-2"}, codes.Unauthenticated},
		{"bad identity token", "token/img", &runtime.AuthConfig{IdentityToken: "not-an-identity-token"}, codes.Unauthenticated},
		{"bad registry token", "regtoken/img", &runtime.AuthConfig{RegistryToken: "not-a-registry-token"}, codes.Unauthenticated},
		{"server_address of another host", "token/img", &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: "https://other.example"}, codes.Unauthenticated},
		{"server_address other port", "basic/img", &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: "127.0.0.1:1"}, codes.Unauthenticated},
		{"malformed auth field", "basic/img", &runtime.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("no-colon-secret"))}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.reg.Journal().Last()
			ref := host + "/" + tc.repo + ":v1"
			_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref), Auth: tc.auth})
			if grpcerr.Code(err) != tc.code || !strings.Contains(err.Error(), ref) {
				t.Fatalf("Pull = %v, want %v naming %s", err, tc.code, ref)
			}
			if tc.auth == nil {
				return
			}
			e.assertNoSecret(err, tc.auth, route.ListenerPlain)
			if tc.auth.ServerAddress != "" || tc.code == codes.InvalidArgument {
				// Scoped away (or refused): the registry saw no credential at all.
				for _, s := range secretsOf(tc.auth) {
					fp := e.reg.Journal().Fingerprint(s)
					for _, en := range e.reg.Journal().Since(before) {
						if contains(en.Secrets, fp) {
							t.Errorf("credentials for %q reached the registry: %s %s", tc.auth.ServerAddress, en.Method, en.Path)
						}
					}
				}
				for _, en := range e.reg.Journal().Since(before) {
					if en.AuthScheme == "Basic" {
						t.Errorf("Basic credentials sent: %s %s", en.Method, en.Path)
					}
				}
			}
		})
	}
	e.assertClean()
}

// TestCredentialsStayHome: redirects to another origin, foreign-layer URLs, realms on another host
// and plain-HTTP realms of a TLS registry never receive the credentials.
func TestCredentialsStayHome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	host := e.reg.PlainHost()
	foreign := strings.TrimPrefix(e.reg.ForeignURL(), "http://")
	creds := &runtime.AuthConfig{Username: user, Password: pass}

	t.Run("blob redirect to a CDN", func(t *testing.T) {
		img := buildImage(t, true, linuxAMD64, map[string]string{"cdn": "1"})
		e.push("basic/cdn", "v1", img)
		id := e.reg.Faults().Arm(faults.Rule{
			Match:  route.Match{Listener: route.ListenerPlain, Method: "GET", Repo: "basic/cdn", Kind: route.KindBlob},
			Action: faults.Action{Kind: faults.KindRedirectForeign},
		})
		defer e.reg.Faults().Clear(id)
		res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/basic/cdn:v1"), Auth: creds})
		if err != nil {
			t.Fatalf("Pull: %v", err)
		}
		_ = res.Done(e.ctx)
		if e.reg.Journal().BlobGets("", img.layers[0]) == 0 {
			t.Fatal("the redirect was not followed")
		}
		e.assertNoSecret(nil, creds, route.ListenerPlain)
	})

	t.Run("redirect target challenges", func(t *testing.T) {
		img := buildImage(t, true, linuxAMD64, map[string]string{"cdn": "2"})
		e.push("token/cdn", "v1", img)
		id := e.reg.Faults().Arm(faults.Rule{
			Match:  route.Match{Listener: route.ListenerPlain, Method: "GET", Repo: "token/cdn", Kind: route.KindBlob},
			Action: faults.Action{Kind: faults.KindRedirectChallenge},
		})
		defer e.reg.Faults().Clear(id)
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/token/cdn:v1"), Auth: creds})
		if err == nil {
			t.Fatal("Pull succeeded against a host that always answers 401")
		}
		e.assertNoSecret(err, creds, route.ListenerPlain)
	})

	t.Run("foreign layer URL", func(t *testing.T) {
		img := buildImage(t, false, linuxAMD64, map[string]string{"foreign": "1"})
		img = withForeignURL(t, img, e.reg.ForeignURL()+faults.ChallengePath+"blobs/"+img.layers[0].String())
		e.push("basic/foreign", "v1", img)
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/basic/foreign:v1"), Auth: creds})
		if err == nil {
			t.Fatal("Pull succeeded although the foreign URL answers 401")
		}
		e.assertNoSecret(err, creds, route.ListenerPlain)
		if !strings.Contains(err.Error(), foreign) {
			t.Errorf("error %q does not name the foreign host", err)
		}
	})

	t.Run("realm on another host", func(t *testing.T) {
		img := buildImage(t, true, linuxAMD64, map[string]string{"realm": "1"})
		e.push("token/realm", "v1", img)
		realm := e.reg.ForeignURL() + faults.ChallengePath + "token"
		id := e.reg.Faults().Arm(faults.Rule{
			Match: route.Match{Listener: route.ListenerPlain, Repo: "token/realm", Kind: route.KindManifest},
			Action: faults.Action{Kind: faults.KindStatus, Status: http.StatusUnauthorized,
				Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm=%q,service="x",scope="repository:token/realm:pull"`, realm)}}},
		})
		defer e.reg.Faults().Clear(id)
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/token/realm:v1"), Auth: creds})
		if err == nil {
			t.Fatal("Pull succeeded")
		}
		e.assertNoSecret(err, creds, route.ListenerPlain)
	})
}

// withForeignURL gives the first layer a foreign URL (Docker schema 2 foreign layer type).
func withForeignURL(t *testing.T, ti testImage, u string) testImage {
	t.Helper()
	var m map[string]any
	mustJSON(t, ti.raw, &m)
	layers := m["layers"].([]any)
	l := layers[0].(map[string]any)
	l["urls"] = []string{u}
	l["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	ti.raw = mustMarshal(t, m)
	ti.digest = digestOf(ti.raw)
	delete(ti.blobs, ti.layers[0]) // only the foreign host would have it
	return ti
}
