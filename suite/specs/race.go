package specs

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	"github.com/opencontainers/go-digest"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// raceSpecs: concurrency made deterministic with registry gates.
func raceSpecs(su *framework.Tree) {
	Describe("Concurrency", func() {
		su.Spec("RACE-001", "concurrent pulls of one reference all succeed with the same image_ref",
			framework.Meta{Refs: []string{"IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				_, _, ref, results := concurrentPulls(ctx, s, 4)
				var ids []string
				for i, r := range results {
					Expect(r.Err).NotTo(HaveOccurred(), "concurrent pull #%d", i)
					ids = append(ids, r.ImageRef)
				}
				for _, id := range ids {
					Expect(id).To(Equal(ids[0]))
				}
				Expect(s.Status(ctx, ref).GetId()).To(Equal(ids[0]))
			})

		su.Spec("RACE-002", "concurrent pulls of one reference fetch each blob once",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img, repo, _, results := concurrentPulls(ctx, s, 4)
				for _, r := range results {
					Expect(r.Err).NotTo(HaveOccurred())
				}
				for _, l := range append([]digest.Digest{img.Config}, img.Layers...) {
					Expect(s.EventuallyBlobGets(repo, l)).To(Equal(1), "blob %s fetched more than once by 4 concurrent pulls", l)
				}
			})

		su.Spec("RACE-003", "while a pull is in flight, neither ListImages nor ImageStatus shows a partial image",
			framework.Meta{Refs: []string{"IS-01", "IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(3, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				g, res := s.PullHeld(ctx, ref, nil, repo, img.Layers[2], "the last layer")
				s.ExpectAbsent(ctx, ref, img.ID, s.DigestRef(repo, img))
				g.Release()
				r := <-res
				Expect(r.Err).NotTo(HaveOccurred())
				Expect(s.Status(ctx, ref).GetId()).To(Equal(r.ImageRef))
			})

		su.Spec("RACE-004", "RemoveImage during a pull of the same reference succeeds, and the pull completes consistently",
			framework.Meta{Refs: []string{"IS-08", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				g, res := s.PullHeld(ctx, ref, nil, repo, img.Layers[1], "the last layer")
				Expect(s.Remove(ctx, ref)).To(Succeed(), "RemoveImage of an image still being pulled")
				g.Release()
				r := <-res
				Expect(r.Err).NotTo(HaveOccurred(), "the pull must complete after a concurrent no-op RemoveImage")
				expectConsistent(ctx, s, ref, r.ImageRef)
				Expect(s.Status(ctx, ref)).NotTo(BeNil(), "the image pulled after the removal must exist")
			})

		su.Spec("RACE-005", "interleaved pulls and removals of one image end consistent, and a final pull succeeds",
			framework.Meta{Refs: []string{"IS-08", "IS-10", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				s.DeferOneDescription() // the pulls below race the removals
				var wg sync.WaitGroup
				for range 4 {
					wg.Add(2)
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						if _, err := s.Pull(ctx, ref, nil); err != nil {
							harness.Observe("pull during removals: %v", err)
						}
					}()
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						Expect(s.Remove(ctx, id)).To(Succeed())
					}()
				}
				wg.Wait()
				expectConsistent(ctx, s, ref, id)
				Expect(s.MustPull(ctx, ref)).To(Equal(id))
				expectConsistent(ctx, s, ref, id)
				Expect(s.Remove(ctx, ref)).To(Succeed())
				s.ExpectAbsent(ctx, ref, id)
			})

		su.Spec("RACE-006", "a tag moved between pulls resolves to the new image and leaves the old one untagged",
			framework.Meta{Refs: []string{"IS-26", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				a, b := s.Unique(1, 256), s.Unique(1, 256)
				repo := s.Push(a, "anon", "t")
				ref := s.Ref(repo, "t")
				idA := s.MustPull(ctx, ref)
				Expect(b.Push(s.Env.Reg, repo, "t")).To(Succeed())
				idB := s.MustPull(ctx, ref)
				Expect(idB).NotTo(Equal(idA))
				Expect(s.Status(ctx, ref).GetId()).To(Equal(idB))
				if old := s.Status(ctx, idA); old != nil {
					Expect(old.GetRepoTags()).NotTo(ContainElement(ref), "the moved tag still names the old image")
				}
				listed := harness.Find(s.List(ctx), ref)
				Expect(listed.GetId()).To(Equal(idB))
			})

		su.Spec("RACE-007", "two tags of one image pulled concurrently give one image with both tags",
			framework.Meta{Refs: []string{"IS-26", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "a")
				Expect(img.Push(s.Env.Reg, repo, "b")).To(Succeed())
				g := s.GateBlob(repo, img.Layers[0])
				ra := s.PullAsync(ctx, s.Ref(repo, "a"), nil)
				rb := s.PullAsync(ctx, s.Ref(repo, "b"), nil)
				s.WaitHeld(ctx, g, "the first layer")
				g.Release()
				a, b := <-ra, <-rb
				Expect(a.Err).NotTo(HaveOccurred())
				Expect(b.Err).NotTo(HaveOccurred())
				Expect(b.ImageRef).To(Equal(a.ImageRef))
				Expect(s.Status(ctx, a.ImageRef).GetRepoTags()).To(ContainElements(s.Ref(repo, "a"), s.Ref(repo, "b")))
			})

		su.Spec("RACE-008", "RemoveImage of one tag while another tag of the same image is being pulled: the pull re-creates the image with only its own tag, no orphan record",
			framework.Meta{Refs: []string{"IS-09", "IS-10", "IS-25", "IS-26", "IS-35"}}, func(ctx context.Context, s *harness.Spec) {
				// Decided: RemoveImage(a) returns before the pull of b resolves b, so it removes the
				// image with all its names (IS-09, IS-10); the pull then brings the image back under
				// b and its digest only. Tag a must not come back (nobody pulled it since), and the
				// image must be one entry with names, not an ID-only record beside it (#13875).
				img := s.Unique(2, 1024)
				repo := s.Push(img, "anon", "a")
				Expect(img.Push(s.Env.Reg, repo, "b")).To(Succeed())
				refA, refB, dig := s.Ref(repo, "a"), s.Ref(repo, "b"), s.DigestRef(repo, img)
				id := s.MustPull(ctx, refA)
				Expect(id).To(Equal(img.ID))

				By("hold the pull of b at its first request (the manifest of b), remove a")
				resolve := s.Gate(route.Match{Repo: repo, Kind: route.KindManifest, Reference: "b"})
				res := s.PullAsync(ctx, refB, nil)
				s.WaitHeld(ctx, resolve, "the manifest of tag b")
				Expect(s.Remove(ctx, refA)).To(Succeed(), "RemoveImage of tag a while tag b of the same image is being pulled")
				s.ExpectAbsent(ctx, refA, refB, dig, id)
				// If the removal freed the content, the pull of b must fetch a layer again: hold
				// it there too, and check that nothing of the image shows meanwhile (a target that
				// kept the content finishes without fetching; both orders end below).
				By("let the pull of b go on; if it fetches a layer again, nothing of the image shows meanwhile")
				layer := s.GateBlob(repo, img.Layers[1])
				resolve.Release()
				var r harness.PullResult
				select {
				case <-layer.Held():
					s.ExpectAbsent(ctx, refA, refB, dig, id)
					layer.Release()
					r = <-res
				case r = <-res:
					s.Env.Reg.Gates().Disarm(layer)
					harness.Observe("the pull of b fetched no layer again after the removal of a (content kept)")
				}
				Expect(r.Err).NotTo(HaveOccurred(), "the pull of tag b after the concurrent removal of tag a")
				Expect(r.ImageRef).To(Equal(id), "tag b names the same image")

				By("b's pull recreated the image with b and its digest only")
				st := s.Status(ctx, refB)
				Expect(st).NotTo(BeNil(), "ImageStatus(b) after its pull")
				Expect(st.GetId()).To(Equal(id))
				Expect(st.GetRepoTags()).To(ConsistOf(refB), "tag a was removed before b was pulled and must not come back")
				Expect(st.GetRepoDigests()).To(ConsistOf(dig))
				Expect(s.Status(ctx, refA)).To(BeNil(), "ImageStatus(a) after a was removed")
				byID := s.Status(ctx, id)
				Expect(byID.GetRepoTags()).To(ConsistOf(refB), "ImageStatus by ID agrees with ImageStatus(b)")
				var entries []*runtime.Image
				for _, l := range s.List(ctx) {
					if l.GetId() == id {
						entries = append(entries, l)
					}
					Expect(l.GetRepoTags()).NotTo(ContainElement(refA), "ListImages still names the removed tag a (entry %s)", l.GetId())
				}
				Expect(entries).To(HaveLen(1), "ListImages must show the image once")
				Expect(entries[0].GetRepoTags()).To(ConsistOf(refB))
				Expect(entries[0].GetRepoDigests()).To(ConsistOf(dig), "no ID-only record: the listed image carries its digest")
			})

		su.Spec("RACE-009", "while one pull is held, a pull of another image, ImageStatus, ListImages, StreamImages, RemoveImage and ImageFsInfo all complete",
			framework.Meta{Refs: []string{"IS-01", "IS-06", "IS-07", "IS-10", "IS-12"}}, func(ctx context.Context, s *harness.Spec) {
				// kubelet pulls in parallel (serializeImagePulls=false) and its image GC and
				// eviction manager keep calling during long pulls: one lock around pulls, or
				// around the store, stalls the node behind its slowest registry.
				a := s.Unique(2, 1024)
				repoA := s.Push(a, "anon", "v1")
				_, refB := s.PushUnique("v1")
				_, refC := s.PushUnique("v1")
				idC := s.MustPull(ctx, refC)
				g, resA := s.PullHeld(ctx, s.Ref(repoA, "v1"), nil, repoA, a.Layers[1], "the last layer of A")
				bounded, cancel := context.WithTimeout(ctx, otherCallsBound(s))
				defer cancel()

				By("a pull of B, with no blob in common with A, completes while A is held")
				idB := s.MustPull(bounded, refB)
				By("ImageStatus, ListImages and StreamImages answer while A is held")
				Expect(s.Status(bounded, refC).GetId()).To(Equal(idC))
				Expect(harness.Find(s.List(bounded), idB)).NotTo(BeNil(), "ListImages while A is held")
				if s.Env.Cfg.Features.Has(config.FeatureStreamImages) {
					streamed, err := s.StreamAll(bounded, nil)
					Expect(err).NotTo(HaveOccurred(), "StreamImages while A is held")
					Expect(harness.Find(streamed, idB)).NotTo(BeNil(), "StreamImages while A is held")
				}
				By("RemoveImage of C and ImageFsInfo answer while A is held")
				Expect(s.Remove(bounded, refC)).To(Succeed(), "RemoveImage(%s) while A is held", refC)
				s.ExpectAbsent(bounded, refC, idC)
				Expect(s.FsInfo(bounded).GetImageFilesystems()).NotTo(BeEmpty())

				Expect(resA).NotTo(Receive(), "the pull of A finished while its last layer was held: the spec proved nothing")
				g.Release()
				r := <-resA
				Expect(r.Err).NotTo(HaveOccurred(), "the pull of A after its gate opened")
			})
	})
}

// expectConsistent: ImageStatus and ListImages agree about ref.
func expectConsistent(ctx context.Context, s *harness.Spec, ref, id string) {
	GinkgoHelper()
	st := s.Status(ctx, ref)
	listed := harness.Find(s.List(ctx), ref)
	if st == nil {
		Expect(listed).To(BeNil(), "ListImages shows %s but ImageStatus does not", ref)
		return
	}
	Expect(listed).NotTo(BeNil(), "ImageStatus shows %s but ListImages does not", ref)
	Expect(st.GetId()).To(Equal(id))
	Expect(listed.GetId()).To(Equal(id))
}

// concurrentPulls starts n pulls of one fresh image while its first layer is held at the registry,
// so that all of them are in flight together, then lets them finish and returns their results.
func concurrentPulls(ctx context.Context, s *harness.Spec, n int) (img fixtures.Image, repo, ref string, results []harness.PullResult) {
	GinkgoHelper()
	img = s.Unique(3, 2048)
	repo = s.Push(img, "anon", "v1")
	ref = s.Ref(repo, "v1")
	g := s.GateBlob(repo, img.Layers[0])
	var chans []<-chan harness.PullResult
	for range n {
		chans = append(chans, s.PullAsync(ctx, ref, nil))
	}
	s.WaitHeld(ctx, g, "the first layer")
	g.Release()
	for _, ch := range chans {
		results = append(results, <-ch)
	}
	return img, repo, ref, results
}

// otherCallsBound is how long RACE-009 gives all the calls made while a pull is held: the RPC
// timeout, or 20 s if that is shorter. They are small pulls and lookups on a quiet target; what
// the spec catches is a call that waits for the held pull, which would never finish.
func otherCallsBound(s *harness.Spec) time.Duration {
	return min(s.Env.Cfg.RPCTimeout, 20*time.Second)
}
