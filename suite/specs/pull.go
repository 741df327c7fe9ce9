package specs

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// lifecycle: the vertical slice every target must get right — pull, status, list, remove.
func lifecycle(su *framework.Tree) {
	Describe("Pull, status, list, remove", func() {
		su.Spec("PULL-001", "PullImage by tag returns an image_ref equal to ImageStatus.id and ListImages' id",
			framework.Meta{Refs: []string{"IS-07", "IS-25", "IS-35", "CV-04"}}, func(ctx context.Context, s *harness.Spec) {
				img, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil(), "ImageStatus(%s) right after PullImage returned", ref)
				Expect(st.GetId()).To(Equal(id), "Image.id must match PullImageResponse.image_ref (IS-25)")
				listed := harness.Find(s.List(ctx), ref)
				Expect(listed).NotTo(BeNil(), "ListImages right after PullImage does not show %s", ref)
				Expect(listed.GetId()).To(Equal(id))
				Expect(id).To(ContainSubstring(strings.TrimPrefix(img.Config.String(), "sha256:")),
					"image_ref should identify the image config %s", img.Config)
			})

		su.Spec("PULL-002", "a pulled image reports its tag and its repository digest",
			framework.Meta{Refs: []string{"IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 512)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil())
				Expect(st.GetRepoTags()).To(ContainElement(ref))
				Expect(st.GetRepoDigests()).To(ContainElement(s.DigestRef(repo, img)))
				Expect(harness.Find(s.List(ctx), ref).GetRepoDigests()).To(ContainElement(s.DigestRef(repo, img)))
			})

		su.Spec("PULL-003", "a pulled image has a size greater than zero in ImageStatus and ListImages",
			framework.Meta{Refs: []string{"IS-27", "CV-03"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				s.MustPull(ctx, ref)
				Expect(s.Status(ctx, ref).GetSize()).To(BeNumerically(">", 0))
				Expect(harness.Find(s.List(ctx), ref).GetSize()).To(BeNumerically(">", 0))
			})

		su.Spec("PULL-004", "PullImage by digest reports the digest and no tag",
			framework.Meta{Refs: []string{"IS-26", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 512)
				repo := s.Push(img, "anon", "v1")
				ref := s.DigestRef(repo, img)
				id := s.MustPull(ctx, ref)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil())
				Expect(st.GetId()).To(Equal(id))
				Expect(st.GetRepoDigests()).To(ContainElement(ref))
				Expect(st.GetRepoTags()).To(BeEmpty(), "a pull by digest names no tag: it must not report one (%s was pushed, latest never)", s.Ref(repo, "v1"))
			})

		su.Spec("PULL-005", "pulling the same tag twice is idempotent: same image_ref, one listed image",
			framework.Meta{Refs: []string{"IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id1 := s.MustPull(ctx, ref)
				id2 := s.MustPull(ctx, ref)
				Expect(id2).To(Equal(id1))
				n := 0
				for _, img := range s.List(ctx) {
					if img.GetId() == id1 {
						n++
					}
				}
				Expect(n).To(Equal(1), "ListImages lists image %s %d times", id1, n)
			})

		su.Spec("PULL-006", "RemoveImage by tag removes the image: ImageStatus is nil and ListImages omits it",
			framework.Meta{Refs: []string{"IS-09", "IS-10", "IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 512)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				Expect(s.Remove(ctx, ref)).To(Succeed())
				s.ExpectAbsent(ctx, ref, s.DigestRef(repo, img), id)
			})

		su.Spec("PULL-007", "the same content under two repositories is one image with both tags and the same image_ref",
			framework.Meta{Refs: []string{"IS-26", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 512)
				a, b := s.Push(img, "anon", "v1"), s.Push(img, "anon", "v2")
				idA := s.MustPull(ctx, s.Ref(a, "v1"))
				idB := s.MustPull(ctx, s.Ref(b, "v2"))
				Expect(idB).To(Equal(idA))
				st := s.Status(ctx, idA)
				Expect(st).NotTo(BeNil(), "ImageStatus by the image_ref %s", idA)
				Expect(st.GetRepoTags()).To(ContainElements(s.Ref(a, "v1"), s.Ref(b, "v2")))
			})

		su.Spec("PULL-008", "a pull with a kubelet-shaped sandbox_config pulls the image like one without",
			framework.Meta{Refs: []string{"IS-34", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img, ref := s.PushUnique("v1")
				id, err := s.PullRequest(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, SandboxConfig: s.KubeletSandbox()})
				Expect(err).NotTo(HaveOccurred(), "PullImage %s with a sandbox_config", ref)
				Expect(id).To(ContainSubstring(img.Config.Encoded()), "image_ref should identify the image config %s", img.Config)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil(), "ImageStatus(%s) after a pull with a sandbox_config", ref)
				Expect(st.GetId()).To(Equal(id))
				Expect(s.MustPull(ctx, ref)).To(Equal(id), "the same image pulled without a sandbox_config (IS-35)")
			})

		su.Spec("PULL-009", "a re-pull of an unchanged image fetches no layer or config blob",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				mark := s.Env.Reg.Journal().Last()
				Expect(s.MustPull(ctx, ref)).To(Equal(id))
				var blobs []string
				for _, e := range s.Env.Reg.Journal().Since(mark) {
					if e.Repo == repo && e.Kind == route.KindBlob {
						blobs = append(blobs, e.Method+" "+e.Digest.String())
					}
				}
				Expect(blobs).To(BeEmpty(), "a re-pull of an image that did not change should ask for its manifest only (kubelet re-pulls on imagePullPolicy Always)")
			})

		su.Spec("PULL-010", "a tag moved to a new image leaves the old image under the names it still has (another tag, its repository digest)",
			framework.Meta{Refs: []string{"IS-26", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				// A moved tag takes one name from the old image, not the image: containers may
				// still run it, and kubelet's image GC removes it by ID when it is unused.
				old, next := s.Unique(1, 256), s.Unique(1, 256)
				repo := s.Push(old, "anon", "t")
				Expect(old.Push(s.Env.Reg, repo, "keep")).To(Succeed())
				moved, kept := s.Ref(repo, "t"), s.Ref(repo, "keep")
				idOld := s.MustPull(ctx, moved)
				Expect(s.MustPull(ctx, kept)).To(Equal(idOld))
				Expect(next.Push(s.Env.Reg, repo, "t")).To(Succeed())
				idNext := s.MustPull(ctx, moved)
				Expect(idNext).NotTo(Equal(idOld))

				By("the old image keeps its other tag and its repository digest")
				st := s.Status(ctx, idOld)
				Expect(st).NotTo(BeNil(), "the image %s still named %s was dropped when %s moved", idOld, kept, moved)
				Expect(st.GetRepoTags()).To(ConsistOf(kept), "the old image's tags after %s moved", moved)
				Expect(st.GetRepoDigests()).To(ContainElement(s.DigestRef(repo, old)))
				Expect(s.Status(ctx, moved).GetId()).To(Equal(idNext))
				s.ExpectOneDescription(ctx, idOld)

				By("an image whose only tag moved keeps its repository digest and stays")
				lone, lonesNext := s.Unique(1, 256), s.Unique(1, 256)
				loneRepo := s.Push(lone, "anon", "t")
				loneRef := s.Ref(loneRepo, "t")
				idLone := s.MustPull(ctx, loneRef)
				Expect(lonesNext.Push(s.Env.Reg, loneRepo, "t")).To(Succeed())
				s.MustPull(ctx, loneRef)
				st = s.Status(ctx, s.DigestRef(loneRepo, lone))
				Expect(st).NotTo(BeNil(), "the image %s, still named by its repository digest, was dropped when its tag moved", idLone)
				Expect(st.GetId()).To(Equal(idLone))
				Expect(st.GetRepoTags()).To(BeEmpty(), "the moved tag still names the old image")
				s.ExpectOneDescription(ctx, idLone)
				Expect(s.Remove(ctx, s.DigestRef(loneRepo, lone))).To(Succeed())
				s.ExpectAbsent(ctx, idLone)
				Expect(s.Status(ctx, loneRef)).NotTo(BeNil(), "removing the old image by its digest removed the new one")
			})
	})
}
