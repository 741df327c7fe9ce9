package specs

import (
	"context"

	"time"

	"google.golang.org/grpc/codes"

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
	})
}
