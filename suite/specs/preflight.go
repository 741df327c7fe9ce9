package specs

import (
	"context"
	"fmt"
	"net"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// preflight: can the suite talk to the target, and can the target reach the fixtures? Failures
// here say exactly which configuration is missing.
func preflight(su *framework.Tree) {
	Describe("Preflight", func() {
		su.Spec("PRE-001", "the image endpoint answers ImageFsInfo with at least one image filesystem",
			framework.Meta{Refs: []string{"CV-07", "IS-41"}}, func(ctx context.Context, s *harness.Spec) {
				resp := s.FsInfo(ctx)
				Expect(resp.GetImageFilesystems()).NotTo(BeEmpty(),
					"ImageFsInfo returned no image filesystem (kubelet reads image_filesystems[0])")
			})

		su.Spec("PRE-002", "the target can pull from the fixture registry's plain-HTTP loopback listener",
			framework.Meta{}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				_, err := s.Pull(ctx, ref, nil)
				host, _, _ := net.SplitHostPort(s.Env.Reg.PlainHost())
				Expect(err).NotTo(HaveOccurred(), fmt.Sprintf(
					"the target could not pull %s from the fixture registry (http://%s). Configure the target to "+
						"allow plain HTTP to %s (containerd: the default for loopback hosts, or a hosts.toml with "+
						"server = \"http://%s\"; CRI-O: a registries.conf entry with insecure = true — `criimage config` "+
						"writes both) and check that the target can connect to %s", ref, s.Env.Reg.PlainHost(), host, s.Env.Reg.PlainHost(), host))
				s.ExpectFetchedFrom(repo)
				Expect(s.Status(ctx, ref)).NotTo(BeNil(), "ImageStatus(%s) after a successful pull", ref)
			})

		su.Spec("PRE-003", "the runtime endpoint, if given, answers Version",
			framework.Meta{Refs: []string{"CV-07"}}, func(ctx context.Context, s *harness.Spec) {
				if s.Env.Runtime == nil {
					framework.Unsupported("no --runtime-endpoint given; the suite needs only the ImageService")
				}
				resp, err := s.Env.Runtime.Version(ctx, &runtime.VersionRequest{})
				Expect(err).NotTo(HaveOccurred())
				Expect(resp.GetRuntimeName()).NotTo(BeEmpty())
			})

		su.Spec("PRE-004", "the target trusts the fixture CA and pulls from the TLS listener",
			framework.Meta{Needs: []config.Feature{config.FeatureTLS}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Env.Reg.TLSAddr() + "/" + repo + ":v1"
				id, err := s.Pull(ctx, ref, nil)
				Expect(err).NotTo(HaveOccurred(), missingTLS(s, s.Env.Reg.TLSAddr()))
				Expect(id).To(Equal(s.Status(ctx, ref).GetId()))
			})

		su.Spec("PRE-005", "the target resolves the TLS host name and pulls by it",
			framework.Meta{Needs: []config.Feature{config.FeatureTLSHostname}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Env.Reg.TLSHost() + "/" + repo + ":v1"
				_, err := s.Pull(ctx, ref, nil)
				Expect(err).NotTo(HaveOccurred(), missingTLS(s, s.Env.Reg.TLSHost()))
				Expect(s.Status(ctx, ref)).NotTo(BeNil())
			})

		su.Spec("PRE-006", "docker.io is mirrored to the fixture registry",
			framework.Meta{Needs: []config.Feature{config.FeatureMirror}, Serial: true}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "library", "latest") // library/<unique>
				ref := "docker.io/" + repo + ":latest"
				_, err := s.Pull(ctx, ref, nil)
				Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("the target did not pull %s through the mirror: "+
					"point docker.io at http://%s (containerd: --registry-config-dir DIR with config_path = DIR, "+
					"which the suite fills; CRI-O: a [[registry]] mirror in registries.conf, see `criimage config`)",
					ref, s.Env.Reg.PlainHost()))
				s.ExpectFetchedFrom(repo)
				Expect(s.Status(ctx, ref)).NotTo(BeNil(), "ImageStatus(%s) after a successful pull", ref)
			})
	})
}

func missingTLS(s *harness.Spec, host string) string {
	return fmt.Sprintf("the target could not pull over TLS from %s. It must trust the fixture CA (%s) for that host: "+
		"pass --registry-config-dir pointing at the target's hosts directory (containerd config_path; the suite writes "+
		"<dir>/%s/hosts.toml with the CA), or configure it yourself with `criimage config`", host, s.Env.Reg.CAFile(), host)
}
