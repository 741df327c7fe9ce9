package specs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// expectNoCredentialAt asserts that listener saw none of the fixture credentials.
func expectNoCredentialAt(s *harness.Spec, listener route.Listener, extra ...string) {
	GinkgoHelper()
	for _, sec := range append([]string{harness.FixturePassword, harness.FixtureAuth()}, extra...) {
		Expect(s.SawSecret(listener, sec)).To(BeFalse(), "the %s host received a fixture credential", listener)
	}
	for _, e := range s.Journal() {
		if e.Listener == listener {
			Expect(e.AuthScheme).To(BeEmpty(), "the %s host got an Authorization header: %s %s", listener, e.Method, e.Path)
		}
	}
}

// leakSpecs: credentials go only where they belong, and never into error messages.
func leakSpecs(su *framework.Tree) {
	Describe("Credential leaks", func() {
		su.Spec("LEAK-001", "no error message carries a credential, for every failing credential form",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				basic := s.Ref(s.Push(img, "basic", "v1"), "v1")
				token := s.Ref(s.Push(s.Unique(1, 256), "token", "v1"), "v1")
				wrong := "criimage-wrong-password"
				s.Env.Secrets.Add("wrong password", wrong)
				noColon := base64.StdEncoding.EncodeToString([]byte("criimage" + harness.FixturePassword))
				s.Env.Secrets.Add("malformed auth", noColon)
				idTok := "criimage-invalid-identity-token"
				s.Env.Secrets.Add("identity token", idTok)
				regTok := "criimage-invalid-registry-token"
				s.Env.Secrets.Add("registry token", regTok)
				cases := []*runtime.AuthConfig{
					{Username: harness.FixtureUser, Password: wrong},
					{Auth: noColon},
					{Auth: "!" + harness.FixtureAuth()},
					{IdentityToken: idTok},
					{RegistryToken: regTok},
					{Username: harness.FixtureUser, Password: wrong, ServerAddress: "http://" + s.Env.Reg.PlainHost()},
				}
				for _, ref := range []string{basic, token} {
					for _, a := range cases {
						_, err := s.Pull(ctx, ref, a)
						Expect(err).To(HaveOccurred(), "a bad credential pulled %s", ref)
					}
				}
				// The token service failing outright, with a good password in play.
				s.Arm(faults.Rule{Match: route.Match{Kind: route.KindToken}, Action: faults.Action{Kind: faults.KindStatus, Status: 500}})
				_, err := s.Pull(ctx, token, userPass())
				Expect(err).To(HaveOccurred())
				Expect(s.Env.Secrets.TakeLeaks()).To(BeEmpty(), "errors carried secrets")
			})

		su.Spec("LEAK-002", "a blob redirect to another host does not carry the registry credentials",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 256)
				repo := s.Push(img, "basic", "v1")
				ref := s.Ref(repo, "v1")
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindRedirectForeign}})
				_, err := s.Pull(ctx, ref, userPass())
				Expect(err).NotTo(HaveOccurred(), "the redirected blobs are served by the foreign host")
				Expect(hasListener(s, route.ListenerForeign)).To(BeTrue(), "the target never followed the redirect")
				expectNoCredentialAt(s, route.ListenerForeign)
			})

		su.Spec("LEAK-003", "foreign layer URLs are fetched without the registry credentials",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Fixture(fixtures.NameForeignLayer)
				repo := s.Push(img, "basic", "v1")
				ref := s.Ref(repo, "v1")
				_, err := s.Pull(ctx, ref, userPass())
				if err != nil {
					framework.Unsupported("the target does not pull images with foreign layers (%v); nothing can leak", err)
				}
				Expect(hasListener(s, route.ListenerForeign)).To(BeTrue(), "the pull succeeded without fetching the foreign layer from its URL")
				expectNoCredentialAt(s, route.ListenerForeign)
			})

		su.Spec("LEAK-004", "records whether a redirect target's auth challenge receives the user's credentials",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "basic", "v1")
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindRedirectChallenge}})
				_, err := s.Pull(ctx, s.Ref(repo, "v1"), userPass())
				harness.Observe("pull: %v; foreign host saw the password: %s", err, yesNo(s.SawSecret(route.ListenerForeign, harness.FixturePassword)))
			})

		su.Spec("LEAK-006", "a token POST (password grant) redirected to another origin does not carry the password there",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				repo := s.Push(s.Unique(1, 256), "token", "v1")
				expectTokenRedirectKeepsCredentials(ctx, s, s.Ref(repo, "v1"), userPass(), http.MethodPost, s.Env.Reg.PlainHost())
			})

		su.Spec("LEAK-007", "a token POST (refresh grant) redirected to another origin does not carry the identity token there",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				repo := s.Push(s.Unique(1, 256), "token", "v1")
				refresh := s.Env.Reg.Auth().IssueRefreshToken()
				s.Env.Secrets.Add("identity token", refresh)
				expectTokenRedirectKeepsCredentials(ctx, s, s.Ref(repo, "v1"), &runtime.AuthConfig{IdentityToken: refresh},
					http.MethodPost, s.Env.Reg.PlainHost(), refresh)
			})

		su.Spec("LEAK-008", "a token GET with Basic credentials redirected to another origin (another port included) does not carry them there",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				// token-get/: the token service answers POST with 404, so clients GET with Basic.
				repo := s.Push(s.Unique(1, 256), "token-get", "v1")
				expectTokenRedirectKeepsCredentials(ctx, s, s.Ref(repo, "v1"), userPass(), http.MethodGet, s.Env.Reg.PlainHost())
			})

		su.Spec("LEAK-009", "a token request of an https registry redirected to plain http does not carry the credentials",
			framework.Meta{Needs: []config.Feature{config.FeatureTLS}, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				// token/: clients POST the password form; token-get/: POST answers 404, clients GET with Basic.
				for _, c := range []struct{ ns, method string }{{"token", http.MethodPost}, {"token-get", http.MethodGet}} {
					ref := s.Env.Reg.TLSAddr() + "/" + s.Push(img, c.ns, "v1") + ":v1"
					s.MustPullWith(ctx, ref, userPass())
					Expect(s.Remove(ctx, ref)).To(Succeed())
					By("every token " + c.method + " of the TLS listener answered 308 to " + s.Env.Reg.OtherPortURL())
					id := s.Arm(faults.Rule{Match: route.Match{Listener: route.ListenerTLS, Kind: route.KindToken, Method: c.method},
						Action: faults.Action{Kind: faults.KindRedirectAway, Status: http.StatusPermanentRedirect, Location: s.Env.Reg.OtherPortURL()}})
					_, err := s.Pull(ctx, ref, userPass())
					harness.Observe("token %s over https redirected to http: %d redirected, followed: %s; pull: %v",
						c.method, s.Env.Reg.Faults().Used(id), yesNo(hasListener(s, route.ListenerOtherPort)), err)
					s.Env.Reg.Faults().Clear(id)
					expectNoCredentialAt(s, route.ListenerOtherPort)
					if err == nil {
						Expect(s.Remove(ctx, ref)).To(Succeed())
					}
				}
			})

		su.Spec("LEAK-005", "malformed digests in a manifest fail the pull before any request outside the repository's blob and manifest paths",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				for i, bad := range []string{
					"sha256:../../../../../token?scope=repository:x:pull",
					"sha256:" + strings.Repeat("Z", 64),
					"sha256:abc",
					"sha256:" + strings.Repeat("0", 64) + "/../../x",
				} {
					img := s.Unique(1, 128)
					repo := s.Repo("anon")
					// Judge only this iteration's requests: earlier iterations used other repositories.
					mark := s.Env.Reg.Journal().Last()
					var m map[string]any
					Expect(json.Unmarshal(img.Manifest, &m)).To(Succeed())
					field := "layers"
					if i%2 == 1 {
						field = "config"
					}
					if field == "config" {
						m["config"].(map[string]any)["digest"] = bad
					} else {
						m["layers"].([]any)[0].(map[string]any)["digest"] = bad
					}
					raw, err := json.Marshal(m)
					Expect(err).NotTo(HaveOccurred())
					for d, data := range img.Blobs {
						_, err := s.Env.Reg.PutBlob(repo, data)
						Expect(err).NotTo(HaveOccurred(), "seed blob %s", d)
					}
					_, err = s.Env.Reg.PutManifest(repo, "v1", img.MediaType, raw)
					Expect(err).NotTo(HaveOccurred())
					ref := s.Ref(repo, "v1")
					_, err = s.Pull(ctx, ref, nil)
					harness.ExpectPullError(err, field+" digest "+bad)
					s.ExpectAbsent(ctx, ref)
					allowed := regexp.MustCompile(`^/v2/(` + regexp.QuoteMeta(repo) + `/(manifests/(v1|sha256:[0-9a-f]{64})|blobs/sha256:[0-9a-f]{64}))?/?$|^/token`)
					for _, e := range s.Env.Reg.Journal().Since(mark) {
						Expect(e.Path).To(MatchRegexp(allowed.String()), "%s digest %q led to a request outside the repository", field, bad)
					}
				}
			})
	})
}

// expectTokenRedirectKeepsCredentials pulls ref with auth while every token request of method is
// answered with a redirect elsewhere — 307 to the foreign host (another IP), then 308 to the
// recorder on the registry's IP and another port (net/http keeps an Authorization header across
// a port-only change, and repeats a POST body on 307/308) — and asserts that neither received a
// credential. The pull may fail (the redirect refused) or succeed (followed without credentials,
// or another token flow at the realm); either is fine, only where the secrets went is judged.
func expectTokenRedirectKeepsCredentials(ctx context.Context, s *harness.Spec, ref string, auth *runtime.AuthConfig, method, registryHost string, extra ...string) {
	GinkgoHelper()
	By("a pull without redirects works (so that the rounds below judge a target that can pull)")
	s.MustPullWith(ctx, ref, auth)
	Expect(s.Remove(ctx, ref)).To(Succeed())
	total := 0
	for _, to := range []struct {
		listener route.Listener
		url      string
		status   int
	}{
		{route.ListenerForeign, s.Env.Reg.ForeignURL(), http.StatusTemporaryRedirect},
		{route.ListenerOtherPort, s.Env.Reg.OtherPortURL(), http.StatusPermanentRedirect},
	} {
		By(fmt.Sprintf("every token %s answered %d to %s", method, to.status, to.url))
		id := s.Arm(faults.Rule{Match: route.Match{Listener: route.ListenerPlain, Kind: route.KindToken, Method: method},
			Action: faults.Action{Kind: faults.KindRedirectAway, Status: to.status, Location: to.url}})
		_, err := s.Pull(ctx, ref, auth)
		n := s.Env.Reg.Faults().Used(id)
		total += n
		s.Env.Reg.Faults().Clear(id)
		followed := hasListener(s, to.listener)
		harness.Observe("token %s of %s → %d to %s: %d redirected, followed: %s; pull: %v",
			method, registryHost, to.status, to.listener, n, yesNo(followed), err)
		expectNoCredentialAt(s, to.listener, extra...)
		if err == nil {
			Expect(s.Remove(ctx, ref)).To(Succeed())
		}
	}
	if total == 0 {
		harness.Observe("the target sent no token %s: nothing was redirected", method)
	}
}

func hasListener(s *harness.Spec, listener route.Listener) bool {
	for _, e := range s.Journal() {
		if e.Listener == listener {
			return true
		}
	}
	return false
}
