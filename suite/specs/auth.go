package specs

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// userPass is the fixture user's AuthConfig in username/password form.
func userPass() *runtime.AuthConfig {
	return &runtime.AuthConfig{Username: harness.FixtureUser, Password: harness.FixturePassword}
}

// authFailed asserts a pull failed for want of authorization and created nothing. The error's
// class (Unauthenticated or PermissionDenied) is FAIL-010's to judge, once, for every target: a
// message merely mentioning "401" or "credential" proves nothing.
func authFailed(ctx context.Context, s *harness.Spec, ref string, err error, what string) {
	GinkgoHelper()
	harness.ExpectPullError(err, what)
	s.ExpectAbsent(ctx, ref)
}

// expectUsed asserts that the registry's journal shows secret on the plain listener during this
// spec: a pull that succeeded without the credential under test proves nothing about it.
func expectUsed(s *harness.Spec, secret, what string) {
	GinkgoHelper()
	Expect(s.SawSecret(route.ListenerPlain, secret)).To(BeTrue(), "the pull succeeded, but no request of it carried %s", what)
}

// expectTokensIssued asserts that the token service issued at least n tokens during this spec.
func expectTokensIssued(s *harness.Spec, n int, why string) {
	GinkgoHelper()
	issued := 0
	for _, e := range s.Journal() {
		if e.Kind == route.KindToken && e.Status == 200 {
			issued++
		}
	}
	Expect(issued).To(BeNumerically(">=", n), "%d token(s) issued: %s", issued, why)
}

// authSpecs: every AuthConfig field, precedence, scoping and the token flows.
func authSpecs(su *framework.Tree) {
	Describe("Authentication", func() {
		su.Spec("AUTH-001", "a pull from a Basic-auth repository without credentials fails clearly and creates nothing",
			framework.Meta{Refs: []string{"IS-07", "IS-34"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				_, err := s.Pull(ctx, ref, nil)
				authFailed(ctx, s, ref, err, "anonymous pull of a Basic-auth repository")
			})

		su.Spec("AUTH-002", "username and password authenticate a Basic-auth pull",
			framework.Meta{Refs: []string{"IS-07", "IS-33", "IS-34"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				id, err := s.Pull(ctx, ref, userPass())
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref).GetId()).To(Equal(id))
				Expect(s.SawSecret(route.ListenerPlain, harness.FixturePassword)).To(BeTrue(),
					"the registry never saw the password: did the pull authenticate?")
			})

		su.Spec("AUTH-003", "the auth field (base64 user:password) authenticates a Basic-auth pull",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				_, err := s.Pull(ctx, ref, &runtime.AuthConfig{Auth: harness.FixtureAuth()})
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectUsed(s, harness.FixturePassword, "the password of the auth field")
			})

		su.Spec("AUTH-004", "username and password authenticate a bearer-token pull (token service POST or GET)",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 256)
				ref := s.Ref(s.Push(img, "token", "v1"), "v1")
				_, err := s.Pull(ctx, ref, userPass())
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				Expect(hasKind(s, route.KindToken)).To(BeTrue(), "no token request in the journal")
				expectUsed(s, harness.FixturePassword, "the password (the token service never saw it)")
			})

		su.Spec("AUTH-005", "a GET-only token service (POST answers 404) still authenticates the pull",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "token-get", "v1"), "v1")
				_, err := s.Pull(ctx, ref, userPass())
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectUsed(s, harness.FixturePassword, "the password (the GET token service never saw it)")
			})

		su.Spec("AUTH-006", "identity_token is used to obtain an access token",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "token", "v1"), "v1")
				tok := s.Env.Reg.Auth().IssueRefreshToken()
				s.Env.Secrets.Add("identity token", tok)
				_, err := s.Pull(ctx, ref, &runtime.AuthConfig{IdentityToken: tok})
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				Expect(s.SawSecret(route.ListenerPlain, tok)).To(BeTrue(), "the token service never saw the identity token")
			})

		su.Spec("AUTH-007", "registry_token is sent to the registry as a bearer token",
			framework.Meta{Needs: []config.Feature{config.FeatureRegistryToken}, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "regtoken", "v1")
				ref := s.Ref(repo, "v1")
				tok := s.Env.Reg.Auth().IssueRegistryToken("repository:" + repo + ":pull")
				s.Env.Secrets.Add("registry token", tok)
				_, err := s.Pull(ctx, ref, &runtime.AuthConfig{RegistryToken: tok})
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectUsed(s, tok, "the registry token")
			})

		su.Spec("AUTH-008", "a wrong password fails clearly, promptly and creates nothing",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				for _, ns := range []string{"basic", "token"} {
					img := s.Unique(1, 256)
					ref := s.Ref(s.Push(img, ns, "v1"), "v1")
					bad := &runtime.AuthConfig{Username: harness.FixtureUser, Password: "criimage-wrong-password"}
					s.Env.Secrets.Add("wrong password", bad.Password)
					_, err := s.Pull(ctx, ref, bad)
					authFailed(ctx, s, ref, err, ns+" with a wrong password")
				}
			})

		su.Spec("AUTH-009", "malformed auth fields fail the pull without echoing the secret",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				noColon := base64.StdEncoding.EncodeToString([]byte(harness.FixtureUser + "@" + harness.FixturePassword))
				s.Env.Secrets.Add("malformed auth", noColon)
				for _, a := range []string{"%%%not-base64%%%" + harness.FixturePassword, noColon} {
					_, err := s.Pull(ctx, ref, &runtime.AuthConfig{Auth: a})
					harness.ExpectPullError(err, "malformed auth")
				}
				s.ExpectAbsent(ctx, ref)
			})

		su.Spec("AUTH-010", "credentials scoped by server_address to this registry are used",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				a := userPass()
				a.ServerAddress = "http://" + s.Env.Reg.PlainHost()
				_, err := s.Pull(ctx, ref, a)
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectUsed(s, harness.FixturePassword, "the password scoped to this registry")
			})

		su.Spec("AUTH-011", "credentials for another server_address (another host, or the same host on another port) are not sent to this registry",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				// The TLS listener is another registry on the pulled registry's host (127.0.0.1).
				for _, server := range []string{"https://registry.example.invalid", "https://" + s.Env.Reg.TLSAddr()} {
					a := userPass()
					a.ServerAddress = server
					_, err := s.Pull(ctx, ref, a)
					Expect(s.SawSecret(route.ListenerPlain, harness.FixturePassword)).To(BeFalse(),
						"credentials meant for %s reached the fixture registry at %s", a.ServerAddress, s.Env.Reg.PlainHost())
					authFailed(ctx, s, ref, err, "credentials scoped to "+server)
				}
			})

		su.Spec("AUTH-012", "the fixture user may pull only what the token service grants",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				ok := s.Unique(1, 256)
				allowed := s.Ref(s.Push(ok, "scoped/allowed", "v1"), "v1")
				_, err := s.Pull(ctx, allowed, userPass())
				Expect(err).NotTo(HaveOccurred(), "scoped/allowed/… is granted to the fixture user")
				expectUsed(s, harness.FixturePassword, "the fixture user's password")
				no := s.Unique(1, 256)
				denied := s.Ref(s.Push(no, "scoped/denied", "v1"), "v1")
				_, err = s.Pull(ctx, denied, userPass())
				authFailed(ctx, s, denied, err, "a repository the token service does not grant")
			})

		su.Spec("AUTH-013", "a revoked token (error=invalid_token) mid-pull is renewed and the pull completes",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(3, 1024)
				repo := s.Push(img, "token", "v1")
				ref := s.Ref(repo, "v1")
				g := s.GateBlob(repo, img.Layers[0])
				res := s.PullAsync(ctx, ref, userPass())
				s.WaitHeld(ctx, g, "the first layer")
				s.Env.Reg.Auth().RevokeAll()
				g.Release()
				r := <-res
				Expect(r.Err).NotTo(HaveOccurred(), "the pull must fetch a new token after invalid_token")
				Expect(s.Status(ctx, ref).GetId()).To(Equal(r.ImageRef))
				expectTokensIssued(s, 2, "the revoked token must have been replaced by a new one")
			})

		su.Spec("AUTH-014", "expired short-lived tokens are renewed during a pull",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(3, 1024)
				repo := s.Push(img, "token-short", "v1")
				ref := s.Ref(repo, "v1")
				g := s.GateBlob(repo, img.Layers[1])
				res := s.PullAsync(ctx, ref, userPass())
				s.WaitHeld(ctx, g, "the second layer")
				s.Env.Reg.Auth().ExpireAll() // as if expires_in had passed
				g.Release()
				r := <-res
				Expect(r.Err).NotTo(HaveOccurred(), "the pull must fetch a new token once the old one expired")
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectTokensIssued(s, 2, "the expired token must have been replaced by a new one")
			})

		su.Spec("AUTH-015", "records which credential wins when username/password and auth disagree",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				wrongAuth := base64.StdEncoding.EncodeToString([]byte(harness.FixtureUser + ":criimage-wrong-password"))
				_, err := s.Pull(ctx, ref, &runtime.AuthConfig{Username: harness.FixtureUser, Password: harness.FixturePassword, Auth: wrongAuth})
				harness.Observe("username/password right, auth wrong → %v", err)
				img2 := s.Unique(1, 256)
				ref2 := s.Ref(s.Push(img2, "basic", "v1"), "v1")
				_, err = s.Pull(ctx, ref2, &runtime.AuthConfig{Username: harness.FixtureUser, Password: "criimage-wrong-password", Auth: harness.FixtureAuth()})
				harness.Observe("username/password wrong, auth right → %v", err)
			})

		su.Spec("AUTH-016", "anonymous pulls of a public repository ignore credentials for other hosts",
			framework.Meta{Refs: []string{"IS-34"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				a := userPass()
				a.ServerAddress = "https://registry.example.invalid"
				_, err := s.Pull(ctx, ref, a)
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				Expect(s.SawSecret(route.ListenerPlain, harness.FixturePassword)).To(BeFalse(), "credentials for registry.example.invalid reached the fixture registry")
			})

		su.Spec("AUTH-017", "a 401 on a blob after the manifest was authorized fails the pull and creates nothing",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 256)
				repo := s.Push(img, "basic", "v1")
				ref := s.Ref(repo, "v1")
				s.Arm(faults.Rule{Match: route.Match{Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]}, Action: faults.Action{Kind: faults.KindStatus, Status: 401}})
				_, err := s.Pull(ctx, ref, userPass())
				harness.ExpectPullError(err, "blob answered 401")
				s.ExpectAbsent(ctx, ref)
			})

		su.Spec("AUTH-018", "a server_address without scheme (host:port) matches the registry",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				a := userPass()
				a.ServerAddress = s.Env.Reg.PlainHost()
				_, err := s.Pull(ctx, ref, a)
				Expect(err).NotTo(HaveOccurred(), "kubelet and docker config files write server addresses without a scheme")
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				expectUsed(s, harness.FixturePassword, "the password scoped to host:port")
			})

		su.Spec("AUTH-019", "one pull asks the token service once per scope, not once per blob",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(4, 256)
				repo := s.Push(img, "token", "v1")
				_, err := s.Pull(ctx, s.Ref(repo, "v1"), userPass())
				Expect(err).NotTo(HaveOccurred())
				n := 0
				for _, e := range s.Journal() {
					if e.Kind == route.KindToken && e.Status == 200 {
						n++
					}
				}
				Expect(n).To(BeNumerically(">=", 1), "no token was issued")
				Expect(n).To(BeNumerically("<=", 2), "%d tokens issued for one scope and %d blobs", n, len(img.Layers)+1)
			})

		su.Spec("AUTH-020", "bearer-token authentication works over TLS (token realm on the TLS listener)",
			framework.Meta{Needs: []config.Feature{config.FeatureTLS}, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 256)
				repo := s.Push(img, "token", "v1")
				ref := s.Env.Reg.TLSAddr() + "/" + repo + ":v1"
				_, err := s.Pull(ctx, ref, userPass())
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
				Expect(s.SawSecret(route.ListenerTLS, harness.FixturePassword)).To(BeTrue(), "the TLS listener's token service never saw the password")
				Expect(s.SawSecret(route.ListenerPlain, harness.FixturePassword)).To(BeFalse(), "credentials for the TLS host went to the plain listener")
			})

		su.Spec("AUTH-021", "registry_token alone is sent as a bearer token, or the pull fails saying registry_token is unsupported; never silently anonymous",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-33", "IS-34"}}, func(ctx context.Context, s *harness.Spec) {
				// Runs whether or not the target declares registry-token (AUTH-007 needs it): a
				// target may lack the field, but must not drop it and report a plain auth failure,
				// which tells the user the token is wrong when it was never sent.
				img := s.Unique(1, 256)
				repo := s.Push(img, "regtoken", "v1")
				ref := s.Ref(repo, "v1")
				tok := s.Env.Reg.Auth().IssueRegistryToken("repository:" + repo + ":pull")
				s.Env.Secrets.Add("registry token", tok)
				id, err := s.Pull(ctx, ref, &runtime.AuthConfig{RegistryToken: tok})
				sent := s.SawSecret(route.ListenerPlain, tok)
				harness.Observe("registry_token only → %v; token sent: %s; authorization schemes sent: %s", err, yesNo(sent), authSchemes(s, repo))
				if err == nil {
					Expect(sent).To(BeTrue(), "the pull succeeded but the registry never saw the registry token")
					Expect(s.Status(ctx, ref).GetId()).To(Equal(id), "ImageStatus after the pull")
					return
				}
				st := harness.ExpectPullError(err, "registry_token")
				s.ExpectAbsent(ctx, ref)
				if registryTokenUnsupportedRE.MatchString(st.Message()) {
					return // a clear refusal: the user learns the field is not supported
				}
				// Gomega, not ginkgo's Fail: a listed expected failure must intercept it.
				Expect(sent).To(BeTrue(), "the target dropped registry_token and pulled anonymously (no request carried the token; "+
					"Authorization schemes sent: %s); the error reads like a plain auth failure: %s\n(send it as \"Authorization: Bearer <token>\", "+
					"or fail saying registry_token is unsupported, matching %s)", authSchemes(s, repo), st.Message(), registryTokenUnsupportedRE)
				Expect(err).NotTo(HaveOccurred(), "the registry token was sent but the pull failed")
			})

		su.Spec("AUTH-022", "the auth field is split at the first ':' (a password containing ':' authenticates)",
			framework.Meta{Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				// token/…: the token service's POST carries username and password apart, so a split
				// at another colon shows there (in a Basic header every split is the same bytes).
				img := s.Unique(1, 256)
				repo := s.Push(img, "token", "v1")
				ref := s.Ref(repo, "v1")
				a := base64.StdEncoding.EncodeToString([]byte(harness.FixtureColonUser + ":" + harness.FixtureColonPassword))
				before := len(s.Env.Reg.Auth().TokenRequests())
				id, err := s.Pull(ctx, ref, &runtime.AuthConfig{Auth: a})
				Expect(err).NotTo(HaveOccurred(), "auth = base64(%q): user %q, password %q", harness.FixtureColonUser+":<password with ':'>", harness.FixtureColonUser, "<the rest>")
				Expect(s.Status(ctx, ref).GetId()).To(Equal(id))
				Expect(s.SawSecret(route.ListenerPlain, harness.FixtureColonPassword)).To(BeTrue(), "the registry never saw the whole password")
				for _, tr := range s.Env.Reg.Auth().TokenRequests()[before:] {
					if strings.Contains(strings.Join(tr.Scopes, " "), repo) {
						Expect(tr.Credential).NotTo(Equal("invalid"), "a token request (%s %s) carried a wrong username/password split", tr.Method, tr.Path)
					}
				}
			})

		su.Spec("AUTH-023", "records whether the auth field is accepted without base64 padding",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-33"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				ref := s.Ref(s.Push(img, "basic", "v1"), "v1")
				raw := base64.RawStdEncoding.EncodeToString([]byte(harness.FixtureUser + ":" + harness.FixturePassword))
				s.Env.Secrets.Add("unpadded fixture auth", raw)
				_, err := s.Pull(ctx, ref, &runtime.AuthConfig{Auth: raw})
				listed := s.Status(ctx, ref) != nil
				harness.Observe("unpadded auth (%d chars, padded form ends in '=') → %v; listed: %s; password reached the registry: %s", len(raw), err, yesNo(listed), yesNo(s.SawSecret(route.ListenerPlain, harness.FixturePassword)))
				if err != nil {
					Expect(listed).To(BeFalse(), "the pull failed but the image is listed")
				}
			})

		su.Spec("AUTH-024", "Docker Hub credentials under every server_address form of docker.io authenticate a docker.io image pulled through its mirror; credentials for another registry do not",
			framework.Meta{Level: framework.Recommended, Needs: []config.Feature{config.FeatureMirror}, Serial: true, Refs: []string{"IS-33", "IS-34"}},
			func(ctx context.Context, s *harness.Spec) {
				// The keys of a docker config name Docker Hub four ways; kubelet and other CRI
				// clients pass them as server_address. The node's mirror configuration says the
				// mirror serves docker.io, so docker.io's credentials are the ones it needs.
				var refused []string
				for _, server := range []string{"https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "docker.io"} {
					By("server_address " + server)
					repo := s.Push(s.Unique(1, 256), "basic", "v1")
					ref := "docker.io/" + repo + ":v1"
					mark := s.Env.Reg.Journal().Last()
					a := userPass()
					a.ServerAddress = server
					id, err := s.Pull(ctx, ref, a)
					saw := s.SawSecretSince(mark, route.ListenerPlain, harness.FixturePassword)
					harness.Observe("server_address %q → %v; the mirror saw the password: %s", server, err, yesNo(saw))
					switch {
					case err != nil:
						refused = append(refused, fmt.Sprintf("%q: %v", server, err))
					case !saw:
						refused = append(refused, fmt.Sprintf("%q: the pull succeeded but no request carried the password", server))
					default:
						Expect(s.Status(ctx, ref).GetId()).To(Equal(id))
					}
				}
				Expect(refused).To(BeEmpty(), "Docker Hub's server_address forms that did not authenticate a docker.io image through its mirror")
				By("server_address of another registry")
				repo := s.Push(s.Unique(1, 256), "basic", "v1")
				ref := "docker.io/" + repo + ":v1"
				mark := s.Env.Reg.Journal().Last()
				a := userPass()
				a.ServerAddress = "https://quay.io"
				_, err := s.Pull(ctx, ref, a)
				Expect(s.SawSecretSince(mark, route.ListenerPlain, harness.FixturePassword)).To(BeFalse(), "credentials for quay.io reached the docker.io mirror")
				authFailed(ctx, s, ref, err, "docker.io image, credentials for quay.io")
			})
	})
}

// registryTokenUnsupportedRE is what AUTH-021 accepts as a clear refusal of AuthConfig.registry_token:
// the message names the field (registry_token, registry token, RegistryToken) and says it is not
// supported, not implemented or ignored.
var registryTokenUnsupportedRE = regexp.MustCompile(`(?is)(registry[ _-]?token.*(unsupported|not supported|not implemented|unimplemented|ignored|cannot be used))|((unsupported|not supported|not implemented|unimplemented|ignored|cannot use).*registry[ _-]?token)`)

// authSchemes lists the Authorization schemes of the spec's requests for repo ("none" if none).
func authSchemes(s *harness.Spec, repo string) string {
	var out []string
	for _, e := range s.Journal() {
		if e.Repo != repo {
			continue
		}
		scheme := e.AuthScheme
		if scheme == "" {
			scheme = "none"
		}
		if !slices.Contains(out, scheme) {
			out = append(out, scheme)
		}
	}
	if len(out) == 0 {
		return "no request"
	}
	return strings.Join(out, ",")
}

// hasKind reports whether the spec's journal has a request of kind.
func hasKind(s *harness.Spec, kind route.Kind) bool {
	for _, e := range s.Journal() {
		if e.Kind == kind {
			return true
		}
	}
	return false
}
