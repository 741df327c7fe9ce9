package specs

import (
	"context"
	"errors"
	"fmt"
	"io"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// listSpecs: ListImages and StreamImages.
func listSpecs(su *framework.Tree) {
	Describe("ListImages and StreamImages", func() {
		su.Spec("LIST-001", "ListImages shows every pulled image with exactly its tag (three images)",
			framework.Meta{Refs: []string{"IS-01", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				var refs, ids []string
				for _, tag := range []string{"a", "b", "c"} {
					_, ref := s.PushUnique(tag)
					refs = append(refs, ref)
					ids = append(ids, s.MustPull(ctx, ref))
				}
				list := s.List(ctx)
				for i, ref := range refs {
					img := harness.Find(list, ref)
					Expect(img).NotTo(BeNil(), "ListImages does not show %s", ref)
					Expect(img.GetId()).To(Equal(ids[i]))
					Expect(img.GetRepoTags()).To(ConsistOf(ref))
				}
			})

		su.Spec("LIST-002", "three tags of one image are one listed image carrying all three tags",
			framework.Meta{Refs: []string{"IS-01", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "1")
				for _, t := range []string{"2", "3"} {
					Expect(img.Push(s.Env.Reg, repo, t)).To(Succeed())
				}
				var id string
				for _, t := range []string{"1", "2", "3"} {
					id = s.MustPull(ctx, s.Ref(repo, t))
				}
				var found []*runtime.Image
				for _, li := range s.List(ctx) {
					if li.GetId() == id {
						found = append(found, li)
					}
				}
				Expect(found).To(HaveLen(1), "image %s listed %d times", id, len(found))
				Expect(found[0].GetRepoTags()).To(ConsistOf(s.Ref(repo, "1"), s.Ref(repo, "2"), s.Ref(repo, "3")))
			})

		su.Spec("LIST-003", "StreamImages sends non-empty batches, no duplicates, ends with EOF, and matches ListImages",
			framework.Meta{Needs: []config.Feature{config.FeatureStreamImages}, Refs: []string{"IS-02", "IS-03", "IS-04"}},
			func(ctx context.Context, s *harness.Spec) {
				var refs []string
				for _, tag := range []string{"a", "b"} {
					_, ref := s.PushUnique(tag)
					s.MustPull(ctx, ref)
					refs = append(refs, ref)
				}
				batches, err := s.Stream(ctx, nil)
				Expect(err).NotTo(HaveOccurred())
				streamed := checkBatches(batches)
				for _, ref := range refs {
					Expect(harness.Find(streamed, ref)).NotTo(BeNil(), "StreamImages does not include %s", ref)
				}
				// Other specs may pull and remove concurrently: compare on this spec's images
				// and on the ids of images present in both.
				listed := s.List(ctx)
				for _, ref := range refs {
					Expect(harness.Find(listed, ref).GetId()).To(Equal(harness.Find(streamed, ref).GetId()))
				}
			})

		su.Spec("LIST-004", "StreamImages splits more images than one batch into several non-empty batches",
			framework.Meta{Needs: []config.Feature{config.FeatureStreamImages, config.FeatureStreamBatch}, Refs: []string{"IS-02", "IS-03", "IS-04"}},
			func(ctx context.Context, s *harness.Spec) {
				n := s.Env.Cfg.Features.Int(config.FeatureStreamBatch)
				Expect(n).To(BeNumerically(">", 0), "stream-batch=N needs a positive N")
				if n > 64 {
					framework.Unsupported("stream-batch=%d is too large to fill in a spec (max 64)", n)
				}
				img := s.Unique(1, 128)
				repo := s.Push(img, "anon", "t0")
				var ids []string
				for i := 0; i <= n; i++ { // n+1 distinct images
					one := s.Unique(1, 64)
					tag := fmt.Sprintf("t%d", i)
					Expect(one.Push(s.Env.Reg, repo, tag)).To(Succeed())
					ids = append(ids, s.MustPull(ctx, s.Ref(repo, tag)))
				}
				batches, err := s.Stream(ctx, nil)
				Expect(err).NotTo(HaveOccurred())
				Expect(len(batches)).To(BeNumerically(">=", 2), "%d+ images in one batch of a stream with batch size %d", n+1, n)
				streamed := checkBatches(batches)
				for _, id := range ids {
					Expect(harness.Find(streamed, id)).NotTo(BeNil())
				}
			})

		su.Spec("LIST-005", "StreamImages answers Unimplemented when the target does not declare it",
			framework.Meta{Level: framework.Recommended, Refs: []string{"CV-06"}}, func(ctx context.Context, s *harness.Spec) {
				if s.Env.Cfg.Features.Has(config.FeatureStreamImages) {
					framework.Unsupported("the target declares stream-images (LIST-003 covers it)")
				}
				_, err := s.Stream(ctx, nil)
				Expect(status.Code(err)).To(Equal(codes.Unimplemented),
					"kubelet falls back to ListImages only on Unimplemented; got %v (declare stream-images if it is implemented)", err)
			})

		su.Spec("LIST-006", "ListImages and StreamImages with filter.image return exactly the image that reference resolves to",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-24", "IS-01", "IS-02"}}, func(ctx context.Context, s *harness.Spec) {
				_, a := s.PushUnique("a")
				_, b := s.PushUnique("b")
				idA := s.MustPull(ctx, a)
				s.MustPull(ctx, b)
				filter := &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: a}}
				resp, err := s.Env.Images.ListImages(ctx, &runtime.ListImagesRequest{Filter: filter})
				Expect(err).NotTo(HaveOccurred(), "ListImages with filter.image %s", a)
				Expect(ids(resp.GetImages())).To(ConsistOf(idA), "ListImages with filter.image %s must return that image only", a)
				if s.Env.Cfg.Features.Has(config.FeatureStreamImages) {
					streamed, err := s.StreamAll(ctx, filter)
					Expect(err).NotTo(HaveOccurred(), "StreamImages with filter.image %s", a)
					Expect(ids(streamed)).To(ConsistOf(idA), "StreamImages with filter.image %s must return that image only", a)
				}
			})

		su.Spec("LIST-008", "StreamImages of an empty store sends no message and ends with EOF; ListImages returns no image",
			framework.Meta{Needs: []config.Feature{config.FeatureStreamImages}, Serial: true, Refs: []string{"IS-02", "IS-04", "IS-01"}},
			func(ctx context.Context, s *harness.Spec) {
				// "lists of at least one item" (IS-02): with nothing to send, an empty message is
				// still a message. Serial, so that no other spec's images are in the store; a
				// store holding images the suite did not pull cannot be emptied by it.
				if present := s.List(ctx); len(present) > 0 {
					framework.Unsupported("the store holds %d image(s) the suite did not pull (first: %s %v); an empty store is needed", len(present), present[0].GetId(), present[0].GetRepoTags())
				}
				batches, err := s.Stream(ctx, nil)
				Expect(err).NotTo(HaveOccurred(), "StreamImages of an empty store must end with EOF, not an error")
				Expect(batches).To(BeEmpty(), "StreamImages of an empty store sent %d message(s) (IS-02: each carries at least one item)", len(batches))
			})

		su.Spec("LIST-009", "a StreamImages cancelled by its client after the first message leaves the target serving: the next stream, ListImages and a pull all work",
			framework.Meta{Needs: []config.Feature{config.FeatureStreamImages, config.FeatureStreamBatch}, Refs: []string{"IS-04", "IS-01"}},
			func(ctx context.Context, s *harness.Spec) {
				// kubelet enforces a deadline on the whole stream and discards partial results
				// (IS-05): abandoned streams are routine, and must not leave a lock or an
				// iterator behind that wedges the next call.
				n := s.Env.Cfg.Features.Int(config.FeatureStreamBatch)
				if n <= 0 || n > 64 {
					framework.Unsupported("stream-batch=%d: the spec needs a batch size of 1 to 64 to send more than one message", n)
				}
				img := s.Unique(1, 64)
				repo := s.Push(img, "anon", "t0")
				var ids []string
				for i := 0; i <= n; i++ {
					one := s.Unique(1, 64)
					tag := fmt.Sprintf("t%d", i)
					Expect(one.Push(s.Env.Reg, repo, tag)).To(Succeed())
					ids = append(ids, s.MustPull(ctx, s.Ref(repo, tag)))
				}
				By("read one message, then cancel")
				sctx, cancel := context.WithCancel(ctx)
				st, err := s.Env.Images.StreamImages(sctx, &runtime.StreamImagesRequest{})
				Expect(err).NotTo(HaveOccurred())
				first, err := st.Recv()
				Expect(err).NotTo(HaveOccurred(), "the first message of a stream of %d+ images", n+1)
				Expect(first.GetImages()).NotTo(BeEmpty())
				cancel()
				for err == nil {
					_, err = st.Recv()
				}
				// The rest may have been in flight already (EOF) or not (Canceled): both are fine.
				Expect(errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled).To(BeTrue(), "the cancelled stream ended with %v", err)

				By("the target still serves: a whole stream, ListImages, a pull")
				streamed, err := s.StreamAll(ctx, nil)
				Expect(err).NotTo(HaveOccurred(), "StreamImages after a client cancelled one")
				listed := s.List(ctx)
				for _, id := range ids {
					Expect(harness.Find(streamed, id)).NotTo(BeNil(), "StreamImages after a cancelled stream lacks %s", id)
					Expect(harness.Find(listed, id)).NotTo(BeNil(), "ListImages after a cancelled stream lacks %s", id)
				}
				_, ref := s.PushUnique("after")
				s.MustPull(ctx, ref)
			})

		su.Spec("LIST-007", "every listed image has a non-empty id and a size > 0 (what kubelet's client requires)",
			framework.Meta{Refs: []string{"CV-03", "IS-27", "IS-01"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				s.MustPull(ctx, ref)
				list := s.List(ctx)
				Expect(harness.Find(list, ref)).NotTo(BeNil())
				for _, img := range list {
					Expect(img.GetId()).NotTo(BeEmpty(), "a listed image without id: %v", img.GetRepoTags())
					Expect(img.GetSize()).To(BeNumerically(">", 0), "listed image %s has size 0", img.GetId())
				}
			})
	})
}

// checkBatches asserts IS-02/IS-03 and returns the flattened images.
func checkBatches(batches [][]*runtime.Image) []*runtime.Image {
	GinkgoHelper()
	seen := map[string]bool{}
	var all []*runtime.Image
	for i, b := range batches {
		Expect(b).NotTo(BeEmpty(), "StreamImages message %d is empty (IS-02: at least one item)", i)
		for _, img := range b {
			Expect(seen[img.GetId()]).To(BeFalse(), "image %s sent twice in one stream (IS-03)", img.GetId())
			seen[img.GetId()] = true
			all = append(all, img)
		}
	}
	return all
}

// ids is the id of each image, in order.
func ids(imgs []*runtime.Image) []string {
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.GetId())
	}
	return out
}
