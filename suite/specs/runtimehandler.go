package specs

import (
	"context"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// handlerSpecs: ImageSpec.runtime_handler (IS-16).
func handlerSpecs(su *framework.Tree) {
	Describe("Runtime handler", func() {
		su.Spec("RH-001", "an unknown runtime_handler is rejected and creates nothing",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-16"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				// Without and with a sandbox_config (kubelet sends one; containerd reads the handler
				// only then).
				for _, sandbox := range []*runtime.PodSandboxConfig{nil, s.KubeletSandbox()} {
					_, err := s.PullRequest(ctx, &runtime.PullImageRequest{
						Image:         &runtime.ImageSpec{Image: ref, RuntimeHandler: "criimage-no-such-handler"},
						SandboxConfig: sandbox,
					})
					harness.ExpectPullError(err, "unknown runtime handler (sandbox_config set: "+yesNo(sandbox != nil)+")")
					s.ExpectAbsent(ctx, ref)
				}
			})

		su.Spec("RH-002", "an empty runtime_handler selects the default handler",
			framework.Meta{Refs: []string{"IS-16"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id, err := s.PullSpec(ctx, &runtime.ImageSpec{Image: ref, RuntimeHandler: ""}, nil)
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref).GetId()).To(Equal(id))
			})

		su.Spec("RH-003", "a declared runtime handler pulls the image",
			framework.Meta{Needs: []config.Feature{config.FeatureRuntimeHandler}, Refs: []string{"IS-16"}}, func(ctx context.Context, s *harness.Spec) {
				name, _ := s.Env.Cfg.Features.Value(config.FeatureRuntimeHandler)
				_, ref := s.PushUnique("v1")
				id, err := s.PullSpec(ctx, &runtime.ImageSpec{Image: ref, RuntimeHandler: name}, nil)
				Expect(err).NotTo(HaveOccurred(), "PullImage with runtime_handler %q", name)
				Expect(id).NotTo(BeEmpty())
				resp, err := s.Env.Images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref, RuntimeHandler: name}})
				Expect(err).NotTo(HaveOccurred())
				Expect(resp.GetImage()).NotTo(BeNil(), "ImageStatus with runtime_handler %q", name)
			})
	})
}
