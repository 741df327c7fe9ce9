package specs

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// restartSpecs: images survive a restart of the target.
func restartSpecs(su *framework.Tree) {
	Describe("Restart", func() {
		su.Spec("RESTART-001", "pulled images survive a restart with the same identity and names",
			framework.Meta{Needs: []config.Feature{config.FeatureRestart}, Serial: true, Refs: []string{"IS-01", "IS-25", "IS-26"}},
			func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				before := s.Status(ctx, ref)
				Expect(s.Env.RunRestart(ctx)).To(Succeed())
				// The target may take a moment to listen again.
				Eventually(func() error { _, err := s.StatusFull(ctx, ref, false); return err }).
					WithTimeout(s.Env.Cfg.RPCTimeout).WithPolling(50 * time.Millisecond).Should(Succeed())
				after := s.Status(ctx, ref)
				Expect(after).NotTo(BeNil(), "the image is gone after a restart")
				Expect(after.GetId()).To(Equal(id))
				Expect(after.GetRepoTags()).To(ConsistOf(before.GetRepoTags()))
				Expect(after.GetRepoDigests()).To(ConsistOf(before.GetRepoDigests()))
				Expect(harness.Find(s.List(ctx), ref)).NotTo(BeNil())
				Expect(s.MustPull(ctx, ref)).To(Equal(id))
				Expect(s.Remove(ctx, ref)).To(Succeed())
				s.ExpectAbsent(ctx, ref, id)
			})

		su.Spec("RESTART-002", "a pull interrupted by a restart leaves no image, and the pull succeeds afterwards",
			framework.Meta{Needs: []config.Feature{config.FeatureRestart}, Serial: true, Refs: []string{"IS-06", "IS-07"}},
			func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				g, res := s.PullHeld(ctx, ref, nil, repo, img.Layers[1], "the last layer")
				Expect(s.Env.RunRestart(ctx)).To(Succeed())
				g.Release()
				r := <-res
				harness.Observe("the interrupted pull returned: %v", r.Err)
				Eventually(func() error { _, err := s.StatusFull(ctx, ref, false); return err }).
					WithTimeout(s.Env.Cfg.RPCTimeout).WithPolling(50 * time.Millisecond).Should(Succeed())
				if r.Err != nil {
					s.ExpectAbsent(ctx, ref, img.ID)
				}
				Expect(s.MustPull(ctx, ref)).To(ContainSubstring(img.Config.Encoded()))
			})
	})
}
