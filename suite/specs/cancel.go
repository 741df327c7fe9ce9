package specs

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// cancelSpecs: client cancellation and stalled registries, observed at the registry.
func cancelSpecs(su *framework.Tree) {
	Describe("Cancellation and stalls", func() {
		su.Spec("CANCEL-001", "a client cancel mid-pull reaches the registry, leaves nothing, and a retry succeeds",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				g := s.GateBlob(repo, img.Layers[1])
				pctx, cancel := context.WithCancel(ctx)
				defer cancel()
				res := s.PullAsync(pctx, ref, nil)
				s.WaitHeld(ctx, g, "the second layer")
				cancel()
				r := <-res
				Expect(status.Code(r.Err)).To(Equal(codes.Canceled), "PullImage after the client cancelled: %v", r.Err)
				s.ExpectClientGone(g, repo, img.Layers[1], "the target kept fetching after its client cancelled the pull")
				s.ExpectAbsent(ctx, ref)
				g.Release()
				id := s.MustPull(ctx, ref)
				Expect(id).To(ContainSubstring(img.Config.Encoded()))
			})

		su.Spec("CANCEL-002", "a client deadline mid-pull ends the pull with DeadlineExceeded and reaches the registry",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				g := s.GateBlob(repo, img.Layers[0]) // never released: only the deadline ends the pull
				dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				r := <-s.PullAsync(dctx, ref, nil)
				Expect(status.Code(r.Err)).To(Equal(codes.DeadlineExceeded), "PullImage past its deadline: %v", r.Err)
				Expect(g.Held()).To(BeClosed(), "the pull never reached the layer within 2s")
				s.ExpectClientGone(g, repo, img.Layers[0], "the target kept fetching after the client's deadline passed")
				s.ExpectAbsent(ctx, ref)
			})

		su.Spec("CANCEL-003", "a stalled blob ends the pull within the declared progress timeout and leaves nothing",
			framework.Meta{Needs: []config.Feature{config.FeatureProgressTimeout}, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				d := declaredProgressTimeout(s)
				img := s.Unique(2, 4096)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				fault := s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]},
					Action: faults.Action{Kind: faults.KindStall, AfterBytes: 1024}})
				bound := 3*d + 10*time.Second
				pctx, cancel := context.WithTimeout(ctx, bound+10*time.Second)
				defer cancel()
				start := time.Now()
				r := <-s.PullAsync(pctx, ref, nil)
				took := time.Since(start)
				Expect(r.Err).To(HaveOccurred(), "a stalled pull succeeded")
				Expect(pctx.Err()).To(BeNil(), "the pull only ended because the client gave up after %s (progress timeout %s)", took, d)
				Expect(took).To(BeNumerically("<=", bound), "the stall lasted %s; the declared progress timeout is %s", took, d)
				Expect(took).To(BeNumerically(">=", d/2), "the pull gave up after %s, before the progress timeout %s", took, d)
				harness.Observe("stalled pull ended after %v: %v", took.Round(time.Millisecond), r.Err)
				s.ExpectAbsent(ctx, ref)
				s.Env.Reg.Faults().Clear(fault)
				s.MustPull(ctx, ref)
			})

		su.Spec("CANCEL-004", "a slow but steady blob trips the progress timeout neither of its pull nor of a second pull of the same reference waiting on it",
			framework.Meta{Level: framework.Recommended, Needs: []config.Feature{config.FeatureProgressTimeout}, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				d := declaredProgressTimeout(s)
				img := s.Unique(1, 2048)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				size := len(img.Blobs[img.Layers[0]])
				chunks := 12
				drip := s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[0]},
					Action: faults.Action{Kind: faults.KindDrip, DripBytes: size/chunks + 1, DripEvery: d / 6}})
				// Total time ≈ 2×d, but bytes arrive every d/6.
				first := s.PullAsync(ctx, ref, nil)
				// Once the blob is dripping, a second pull of the same reference waits on the first
				// (merged with it, or on its download) for about 2×d with no bytes of its own
				// (containerd's "waiting on another puller's lock", #9347).
				Eventually(func() int { return s.Env.Reg.Faults().Used(drip) }).WithTimeout(s.Env.Cfg.RPCTimeout).
					WithPolling(10*time.Millisecond).Should(BeNumerically(">=", 1), "the target never requested the layer")
				second := s.PullAsync(ctx, ref, nil)
				r := <-first
				Expect(r.Err).NotTo(HaveOccurred(), "a pull that makes progress every %s was cancelled (progress timeout %s)", d/6, d)
				r2 := <-second
				Expect(r2.Err).NotTo(HaveOccurred(), "a pull waiting on another pull of the same reference, which makes progress every %s, was cancelled (progress timeout %s)", d/6, d)
				Expect(r2.ImageRef).To(Equal(r.ImageRef))
				s.EventuallyBlobGets(repo, img.Layers[0])
				Expect(s.Status(ctx, ref).GetId()).To(Equal(r.ImageRef))
			})

		su.Spec("CANCEL-005", "a pull of another image waiting on a slow but steady download of a shared layer is not cancelled by the progress timeout",
			framework.Meta{Level: framework.Recommended, Needs: []config.Feature{config.FeatureProgressTimeout}, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				// Two images (two references, two IDs) share their one layer. The first pull
				// downloads it slowly but steadily (bytes every d/6, ≈2×d in all); the second pull
				// resolves its own manifest and config, then needs the same layer while the first is
				// downloading it. A target that waits on the first download (containerd's ingest
				// "ref locked" wait, #9347; its TestCRIImagePullTimeout/HoldingContentOpenWriter)
				// reads no byte of its own for ≈2×d and must not count that as no progress; a
				// target that downloads the layer again gets the drip itself. Either way both pulls
				// complete.
				d := declaredProgressTimeout(s)
				a, b := s.UniquePair(1, 2048)
				Expect(b.Layers).To(Equal(a.Layers))
				repo := s.Push(a, "anon", "a")
				Expect(b.Push(s.Env.Reg, repo, "b")).To(Succeed())
				layer := a.Layers[0]
				size := len(a.Blobs[layer])
				chunks := 12
				drip := s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: layer},
					Action: faults.Action{Kind: faults.KindDrip, DripBytes: size/chunks + 1, DripEvery: d / 6}})
				first := s.PullAsync(ctx, s.Ref(repo, "a"), nil)
				Eventually(func() int { return s.Env.Reg.Faults().Used(drip) }).WithTimeout(s.Env.Cfg.RPCTimeout).
					WithPolling(10*time.Millisecond).Should(BeNumerically(">=", 1), "the target never requested the layer")
				second := s.PullAsync(ctx, s.Ref(repo, "b"), nil)
				r := <-first
				Expect(r.Err).NotTo(HaveOccurred(), "a pull that makes progress every %s was cancelled (progress timeout %s)", d/6, d)
				r2 := <-second
				Expect(r2.Err).NotTo(HaveOccurred(), "a pull of another image waiting on the download of a shared layer, which makes progress every %s, was cancelled (progress timeout %s)", d/6, d)
				Expect(r.ImageRef).To(Equal(a.ID))
				Expect(r2.ImageRef).To(Equal(b.ID))
				harness.Observe("GETs of the shared layer: %d (1 = the second pull waited on the first download)", s.EventuallyBlobGets(repo, layer))
				Expect(s.Status(ctx, s.Ref(repo, "a")).GetId()).To(Equal(a.ID))
				Expect(s.Status(ctx, s.Ref(repo, "b")).GetId()).To(Equal(b.ID))
			})

		su.Spec("CANCEL-006", "with no progress timeout (progress-timeout=0), a pull completes, and a stalled one lasts until the client's deadline, which ends it and leaves nothing",
			framework.Meta{Needs: []config.Feature{config.FeatureProgressTimeout}, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				// containerd's image_pull_progress_timeout = "0s" means "never time out for want
				// of progress". A target that reads 0 as zero seconds cancels every pull; one that
				// falls back to a default cancels a stalled pull on its own before the client does.
				if d, _, _ := s.Env.Cfg.Features.Duration(config.FeatureProgressTimeout); d != 0 {
					framework.Unsupported("the target declares a progress timeout of %s (CANCEL-003 covers it); this spec is for progress-timeout=0", d)
				}
				_, healthy := s.PushUnique("v1")
				s.MustPull(ctx, healthy)

				img := s.Unique(2, 4096)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				s.Arm(faults.Rule{Match: route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]},
					Action: faults.Action{Kind: faults.KindStall, AfterBytes: 1024}})
				deadline := min(s.Env.Cfg.RPCTimeout, 5*time.Second)
				pctx, cancel := context.WithTimeout(ctx, deadline)
				defer cancel()
				start := time.Now()
				r := <-s.PullAsync(pctx, ref, nil)
				took := time.Since(start)
				harness.Observe("stalled pull with no progress timeout ended after %v: %v", took.Round(time.Millisecond), r.Err)
				Expect(status.Code(r.Err)).To(Equal(codes.DeadlineExceeded),
					"with no progress timeout the stalled pull must last until the client's deadline (%s); it ended after %s with %v", deadline, took, r.Err)
				s.ExpectAbsent(ctx, ref)
			})
	})
}

// declaredProgressTimeout is the target's declared progress timeout, for the specs that need one
// (they are unsupported when it is 0: the target has none).
func declaredProgressTimeout(s *harness.Spec) time.Duration {
	GinkgoHelper()
	d, _, err := s.Env.Cfg.Features.Duration(config.FeatureProgressTimeout)
	Expect(err).NotTo(HaveOccurred())
	if d == 0 {
		framework.Unsupported("progress-timeout=0: the target has no progress timeout (CANCEL-006 covers what that means)")
	}
	return d
}
