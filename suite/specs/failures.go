package specs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// failureSpecs: broken images and registry faults fail pulls cleanly.
func failureSpecs(su *framework.Tree) {
	Describe("Failures", func() {
		su.Spec("FAIL-001", "every broken fixture fails PullImage and leaves no image behind",
			framework.Meta{Refs: []string{"IS-07", "IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				n := 0
				for _, name := range s.Catalog().Names() {
					img := s.Fixture(name)
					if img.Outcome != fixtures.OutcomeFail {
						continue
					}
					By(name + ": " + fixtures.FailureDoc(img.Failure))
					expectCleanFailure(ctx, s, img)
					n++
				}
				Expect(n).To(BeNumerically(">", 3), "the catalog has too few broken images")
			})

		su.Spec("FAIL-002", "a pull that failed on a corrupted layer succeeds on retry, reusing nothing broken",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(3, 2048)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]},
					Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 100}, Times: 1})
				_, err := s.Pull(ctx, ref, nil)
				harness.ExpectPullError(err, "corrupted layer bytes")
				s.ExpectAbsent(ctx, ref)
				id := s.MustPull(ctx, ref)
				Expect(id).To(ContainSubstring(img.Config.Encoded()))
			})

		su.Spec("FAIL-003", "a truncated blob fails the pull cleanly and a retry succeeds",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 4096)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				fault := s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[0]},
					Action: faults.Action{Kind: faults.KindTruncate, AfterBytes: 512}})
				_, err := s.Pull(ctx, ref, nil)
				harness.ExpectPullError(err, "truncated blob")
				s.ExpectAbsent(ctx, ref)
				s.Env.Reg.Faults().Clear(fault)
				s.MustPull(ctx, ref)
			})

		su.Spec("FAIL-004", "an existing image survives a failed pull of another tag of the same content",
			framework.Meta{Refs: []string{"IS-07", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 512)
				repo := s.Push(img, "anon", "good")
				Expect(img.Push(s.Env.Reg, repo, "bad")).To(Succeed())
				good := s.Ref(repo, "good")
				id := s.MustPull(ctx, good)
				// The content is already local, so only resolving :bad touches the registry: fail it.
				s.Arm(faults.Rule{Match: route.Match{Repo: repo, Kind: route.KindManifest, Reference: "bad"},
					Action: faults.Action{Kind: faults.KindStatus, Status: 500}})
				_, err := s.Pull(ctx, s.Ref(repo, "bad"), nil)
				harness.ExpectPullError(err, "manifest of :bad answers 500")
				st := s.Status(ctx, good)
				Expect(st).NotTo(BeNil(), "the failed pull of :bad removed the existing image")
				Expect(st.GetId()).To(Equal(id))
				Expect(st.GetRepoTags()).NotTo(ContainElement(s.Ref(repo, "bad")))
				Expect(harness.Find(s.List(ctx), id)).NotTo(BeNil())
			})

		su.Spec("FAIL-005", "registry errors (404 unknown tag, 500 on the manifest, 503 on a blob) fail the pull",
			framework.Meta{Refs: []string{"IS-07", "CV-05"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				_, err := s.Pull(ctx, s.Ref(repo, "nosuchtag"), nil)
				st := harness.ExpectPullError(err, "unknown tag")
				harness.Observe("unknown tag → %v: %s", st.Code(), st.Message())
				fault := s.Arm(faults.Rule{Match: route.Match{Repo: repo, Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 500}, Times: 20})
				_, err = s.Pull(ctx, s.Ref(repo, "v1"), nil)
				harness.ExpectPullError(err, "manifest 500")
				s.Env.Reg.Faults().Clear(fault)
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindStatus, Status: 503}})
				_, err = s.Pull(ctx, s.Ref(repo, "v1"), nil)
				harness.ExpectPullError(err, "blob 503")
				s.ExpectAbsent(ctx, s.Ref(repo, "v1"))
			})

		su.Spec("FAIL-006", "an unreachable registry fails with a RegistryUnavailable-prefixed message",
			framework.Meta{Level: framework.Recommended, Refs: []string{"CV-01", "CV-05"}}, func(ctx context.Context, s *harness.Spec) {
				addr := harness.ClosedPort()
				_, err := s.Pull(ctx, addr+"/anon/unreachable:v1", nil)
				st := harness.ExpectPullError(err, "connection refused")
				Expect(st.Message()).To(HavePrefix("RegistryUnavailable"), "kubelet classifies registry errors by this message prefix (CV-01)")
				Expect(st.Code()).To(Equal(codes.Unknown), "the prefix reaches kubelet only on codes.Unknown, which cri-client flattens to the message (CV-05)")
			})

		su.Spec("FAIL-007", "after failed pulls, ImageFsInfo returns to its baseline",
			framework.Meta{Serial: true, Refs: []string{"IS-11", "IS-12"}}, func(ctx context.Context, s *harness.Spec) {
				used := func() uint64 { return s.FsInfo(ctx).GetImageFilesystems()[0].GetUsedBytes().GetValue() }
				base := used()
				// Layers of 1 MiB of incompressible data: a leak of any of them shows above the
				// allowance for metadata growth (databases do not shrink).
				for _, kind := range []string{faults.KindCorrupt, faults.KindTruncate, faults.KindStatus} {
					img := s.Unique(2, 1<<20)
					repo := s.Push(img, "anon", "v1")
					s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]},
						Action: faults.Action{Kind: kind, AfterBytes: 512 << 10, Status: 500}})
					_, err := s.Pull(ctx, s.Ref(repo, "v1"), nil)
					harness.ExpectPullError(err, kind+" on the second layer")
				}
				Eventually(used).WithTimeout(s.Env.Wait()).WithPolling(50*time.Millisecond).Should(BeNumerically("<=", base+metadataAllowance),
					"failed pulls left usage behind (baseline %d bytes, allowance %d)", base, metadataAllowance)
			})

		su.Spec("FAIL-008", "after a failed pull, the same layers pull from another repository",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(3, 2048)
				broken := s.Push(img, "anon", "v1")
				good := s.Push(img, "anon", "v1")
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: broken, Kind: route.KindBlob, Digest: img.Layers[2]},
					Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 64}})
				_, err := s.Pull(ctx, s.Ref(broken, "v1"), nil)
				harness.ExpectPullError(err, "corrupted last layer")
				s.ExpectAbsent(ctx, s.Ref(broken, "v1"))
				id := s.MustPull(ctx, s.Ref(good, "v1"))
				Expect(id).To(ContainSubstring(img.Config.Encoded()))
			})

		su.Spec("FAIL-009", "a failed re-pull leaves the image already there exactly as it was (wrong credentials, manifest 500, registry gone, corrupt new blob, tag deleted)",
			framework.Meta{Refs: []string{"IS-07", "IS-10", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				// kubelet re-pulls on imagePullPolicy Always: a target that deletes the image
				// before it pulls again leaves the node without it whenever the re-pull fails.
				img := s.Unique(2, 1024)
				repo := s.Push(img, "basic", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPullWith(ctx, ref, userPass())
				before := harness.FactsOf(s.Status(ctx, ref))
				repull := func(cause string, auth *runtime.AuthConfig) {
					GinkgoHelper()
					_, err := s.Pull(ctx, ref, auth)
					harness.ExpectPullError(err, "re-pull of "+ref+" with "+cause)
					Expect(harness.FactsOf(s.Status(ctx, ref))).To(Equal(before), "ImageStatus(%s) after a re-pull that failed (%s)", ref, cause)
					Expect(harness.FactsOf(harness.Find(s.List(ctx), id))).To(Equal(before), "ListImages after a re-pull of %s that failed (%s)", ref, cause)
					s.ExpectOneDescription(ctx, id)
				}

				By("wrong credentials")
				bad := &runtime.AuthConfig{Username: harness.FixtureUser, Password: "criimage-wrong-password"}
				s.Env.Secrets.Add("wrong password", bad.Password)
				repull("a wrong password", bad)

				By("the manifest answers 500")
				fault := s.Arm(faults.Rule{Match: route.Match{Repo: repo, Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 500}})
				repull("the manifest answering 500", userPass())
				s.Env.Reg.Faults().Clear(fault)

				By("the registry hangs up on every request of the repository")
				fault = s.Arm(faults.Rule{Match: route.Match{Repo: repo}, Action: faults.Action{Kind: faults.KindHangUp}})
				repull("every connection reset", userPass())
				s.Env.Reg.Faults().Clear(fault)

				By("the tag moved to a new image whose layer arrives corrupted")
				next := s.Unique(2, 1024)
				Expect(next.Push(s.Env.Reg, repo, "v1")).To(Succeed())
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: next.Layers[0]},
					Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 10}})
				repull("the new image's layer corrupted", userPass())

				By("the tag was deleted (404)")
				Expect(s.Env.Reg.DeleteTag(repo, "v1")).To(Succeed())
				repull("the tag gone", userPass())

				By("the image is still removable")
				Expect(s.Remove(ctx, ref)).To(Succeed())
				s.ExpectAbsent(ctx, ref, id)
			})

		su.Spec("FAIL-010", "a failed pull's code names its class: Unauthenticated/PermissionDenied, NotFound, InvalidArgument, or Unknown led by RegistryUnavailable",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07", "CV-01", "CV-05"}}, func(ctx context.Context, s *harness.Spec) {
				// kubelet shows these to users (ErrImagePull) and backs off on them; tools on top
				// of CRI (crictl, image GC, pre-pullers) branch on the code. "Any non-OK code" lets
				// a target answer Unknown for a typo'd tag and for a missing password alike.
				basic := s.Ref(s.Push(s.Unique(1, 256), "basic", "v1"), "v1")
				anon := s.Push(s.Unique(1, 256), "anon", "v1")
				denied := s.Ref(s.Push(s.Unique(1, 256), "scoped/denied", "v1"), "v1")
				broken := s.Unique(1, 256)
				brokenRepo := s.Push(broken, "anon", "v1")
				limited := s.Push(s.Unique(1, 256), "anon", "v1")
				wrong := &runtime.AuthConfig{Username: harness.FixtureUser, Password: "criimage-wrong-password"}
				s.Env.Secrets.Add("wrong password", wrong.Password)
				auth := []codes.Code{codes.Unauthenticated, codes.PermissionDenied}
				cases := []struct {
					what  string
					ref   string
					auth  *runtime.AuthConfig
					codes []codes.Code // nil: Unknown with the RegistryUnavailable prefix
					arm   func()
				}{
					{what: "no credentials for a Basic-auth repository (401)", ref: basic, codes: auth},
					{what: "a wrong password (401)", ref: basic, auth: wrong, codes: auth},
					{what: "a repository the token service does not grant", ref: denied, auth: userPass(), codes: auth},
					{what: "an unknown tag (404)", ref: s.Ref(anon, "nosuchtag"), codes: []codes.Code{codes.NotFound}},
					{what: "an uppercase repository name", ref: s.Env.Reg.PlainHost() + "/" + strings.ToUpper(anon) + ":v1", codes: []codes.Code{codes.InvalidArgument}},
					{what: "the manifest answering 500", ref: s.Ref(brokenRepo, "v1"), arm: func() {
						s.Arm(faults.Rule{Match: route.Match{Repo: brokenRepo, Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 500}})
					}},
					{what: "a blob answering 503", ref: s.Ref(anon, "v1"), arm: func() {
						s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: anon, Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindStatus, Status: 503}})
					}},
					{what: "a registry that is not there", ref: harness.ClosedPort() + "/anon/unreachable:v1"},
					{what: "429 Too Many Requests on the manifest, every time", ref: s.Ref(limited, "v1"), arm: func() {
						s.Arm(faults.Rule{Match: route.Match{Repo: limited, Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 429, RetryAfter: "1"}})
					}},
				}
				var wrongClass []string
				for _, c := range cases {
					if c.arm != nil {
						c.arm()
					}
					_, err := s.Pull(ctx, c.ref, c.auth)
					st := harness.ExpectPullError(err, c.what)
					harness.Observe("%s → %v: %s", c.what, st.Code(), st.Message())
					switch {
					case c.codes == nil && (st.Code() != codes.Unknown || !strings.HasPrefix(st.Message(), "RegistryUnavailable")):
						wrongClass = append(wrongClass, fmt.Sprintf("%s: %v %q, want Unknown with the message led by RegistryUnavailable (CV-01, CV-05)", c.what, st.Code(), st.Message()))
					case c.codes != nil && !slices.Contains(c.codes, st.Code()):
						wrongClass = append(wrongClass, fmt.Sprintf("%s: %v %q, want %v", c.what, st.Code(), st.Message(), c.codes))
					}
				}
				Expect(wrongClass).To(BeEmpty(), "failed pulls with the wrong class")
			})

		su.Spec("FAIL-011", "429 Too Many Requests with Retry-After on the manifest or a blob: the pull waits and completes or fails promptly, never hangs, and leaves nothing",
			framework.Meta{Refs: []string{"IS-07", "IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				// Registries rate-limit (Docker Hub's pull limit answers 429 on the manifest).
				// Honouring Retry-After is a choice; waiting for ever is not: kubelet's pull
				// would hang until its own deadline and block the pod with no error to show.
				bound := s.CancelBound()
				for _, at := range []struct {
					what  string
					match func(repo string, img fixtures.Image) route.Match
				}{
					{"the manifest", func(repo string, _ fixtures.Image) route.Match {
						return route.Match{Repo: repo, Kind: route.KindManifest}
					}},
					{"a layer", func(repo string, img fixtures.Image) route.Match {
						return route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[0]}
					}},
				} {
					for _, times := range []int{1, 0} {
						what := fmt.Sprintf("429 with Retry-After: 1 on %s, once", at.what)
						if times == 0 {
							what = fmt.Sprintf("429 with Retry-After: 1 on %s, every time", at.what)
						}
						By(what)
						img := s.Unique(2, 1024)
						repo := s.Push(img, "anon", "v1")
						ref := s.Ref(repo, "v1")
						fault := s.Arm(faults.Rule{Match: at.match(repo, img), Action: faults.Action{Kind: faults.KindStatus, Status: 429, RetryAfter: "1"}, Times: times})
						bounded, cancel := context.WithTimeout(ctx, bound)
						start := time.Now()
						id, err := s.Pull(bounded, ref, nil)
						took := time.Since(start)
						cancel()
						harness.Observe("%s → %v after %s", what, err, took.Round(time.Millisecond))
						Expect(status.Code(err)).NotTo(Equal(codes.DeadlineExceeded), "%s: the pull still ran after %s (the RPC timeout, or half the declared progress timeout)", what, bound)
						if err == nil {
							Expect(id).To(ContainSubstring(img.Config.Encoded()), "%s: the pull completed with another image", what)
							Expect(times).NotTo(BeZero(), "%s: the pull completed although every request was refused", what)
						} else {
							harness.ExpectPullError(err, what)
							s.ExpectAbsent(ctx, ref, img.ID)
						}
						s.Env.Reg.Faults().Clear(fault)
						if err == nil {
							Expect(s.Remove(ctx, ref)).To(Succeed())
						}
					}
				}
			})
	})
}
