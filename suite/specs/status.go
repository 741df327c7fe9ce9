package specs

import (
	"context"
	"encoding/json"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// statusSpecs: what ImageStatus reports beyond identity.
func statusSpecs(su *framework.Tree) {
	Describe("ImageStatus", func() {
		su.Spec("STATUS-001", "verbose ImageStatus returns info as valid JSON; non-verbose returns none",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-31", "IS-32"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				s.MustPull(ctx, ref)
				plain, err := s.StatusFull(ctx, ref, false)
				Expect(err).NotTo(HaveOccurred())
				Expect(plain.GetInfo()).To(BeEmpty(), "info must only be non-empty when verbose is true (IS-32)")
				verbose, err := s.StatusFull(ctx, ref, true)
				Expect(err).NotTo(HaveOccurred())
				Expect(verbose.GetImage()).NotTo(BeNil())
				Expect(verbose.GetInfo()).NotTo(BeEmpty(), "verbose ImageStatus returned no info")
				for k, v := range verbose.GetInfo() {
					Expect(json.Valid([]byte(v))).To(BeTrue(), "info[%q] is not JSON: %.200s", k, v)
				}
			})

		su.Spec("STATUS-002", "an image without a config user reports neither uid nor username",
			framework.Meta{Refs: []string{"IS-28"}}, func(ctx context.Context, s *harness.Spec) {
				img, ref := s.PushUnique("v1")
				Expect(img.User).To(BeEmpty(), "fixture")
				s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil())
				Expect(st.GetUid()).To(BeNil())
				Expect(st.GetUsername()).To(BeEmpty())
			})

		su.Spec("STATUS-003", "uid and username follow the config User for every form (uid, name, uid:gid, name:gid)",
			framework.Meta{Refs: []string{"IS-28"}}, func(ctx context.Context, s *harness.Spec) {
				users := s.FixturesWithUsers()
				Expect(users).NotTo(BeEmpty(), "the fixture catalog has no images with a config User")
				for _, img := range users {
					repo := s.Push(img, "anon", "v1")
					ref := s.Ref(repo, "v1")
					s.MustPull(ctx, ref)
					st := s.Status(ctx, ref)
					Expect(st).NotTo(BeNil())
					if img.UID != nil {
						Expect(st.GetUid()).NotTo(BeNil(), "User %q: uid", img.User)
						Expect(st.GetUid().GetValue()).To(Equal(*img.UID), "User %q: uid", img.User)
						Expect(st.GetUsername()).To(BeEmpty(), "User %q: uid and username are exclusive", img.User)
					} else {
						Expect(st.GetUid()).To(BeNil(), "User %q: uid", img.User)
						Expect(st.GetUsername()).To(Equal(img.Username), "User %q: username", img.User)
					}
				}
			})

		su.Spec("STATUS-004", "a pinned image reports pinned=true and is still removable",
			framework.Meta{Needs: []config.Feature{config.FeaturePinned, config.FeatureMirror}, Serial: true, Refs: []string{"IS-30"}},
			func(ctx context.Context, s *harness.Spec) {
				ref, _ := s.Env.Cfg.Features.Value(config.FeaturePinned)
				repo, tag, ok := harness.DockerLibraryRef(ref)
				if !ok {
					framework.Unsupported("pinned=%s is not a docker.io/library/NAME:TAG reference the suite can seed through the mirror", ref)
				}
				img := s.Unique(1, 256)
				Expect(img.Push(s.Env.Reg, repo, tag)).To(Succeed())
				id := s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil())
				Expect(st.GetPinned()).To(BeTrue(), "%s is configured as pinned", ref)
				Expect(harness.Find(s.List(ctx), id).GetPinned()).To(BeTrue())
				Expect(s.Remove(ctx, ref)).To(Succeed(), "pinned is a recommendation: the runtime must oblige (IS-30)")
				s.ExpectAbsent(ctx, ref, id)
			})

		su.Spec("STATUS-005", "records whether Image.spec carries the image annotations",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-29", "IS-14"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				b, _ := json.Marshal(st.GetSpec())
				harness.Observe("Image.spec = %s", b)
			})

		su.Spec("STATUS-006", "an image nobody declared pinned reports pinned=false in ImageStatus, ListImages and StreamImages",
			framework.Meta{Refs: []string{"IS-30"}}, func(ctx context.Context, s *harness.Spec) {
				// kubelet's image GC never collects a pinned image: a target that reports every
				// image pinned silently turns image garbage collection off.
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				Expect(s.Status(ctx, ref).GetPinned()).To(BeFalse(), "ImageStatus(%s): nothing declared it pinned", ref)
				Expect(harness.Find(s.List(ctx), id).GetPinned()).To(BeFalse(), "ListImages: %s is not pinned", ref)
				if s.Env.Cfg.Features.Has(config.FeatureStreamImages) {
					streamed, err := s.StreamAll(ctx, nil)
					Expect(err).NotTo(HaveOccurred(), "StreamImages")
					Expect(harness.Find(streamed, id).GetPinned()).To(BeFalse(), "StreamImages: %s is not pinned", ref)
				}
			})
	})
}
