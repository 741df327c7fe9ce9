package specs

import (
	"context"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// removeSpecs: RemoveImage semantics (IS-08..IS-11).
func removeSpecs(su *framework.Tree) {
	Describe("RemoveImage", func() {
		su.Spec("RM-001", "removing by one tag removes every tag and digest, across repositories",
			framework.Meta{Refs: []string{"IS-09", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				a := s.Push(img, "anon", "1")
				Expect(img.Push(s.Env.Reg, a, "2")).To(Succeed())
				b := s.Push(img, "anon", "3")
				refs := []string{s.Ref(a, "1"), s.Ref(a, "2"), s.Ref(b, "3")}
				var id string
				for _, r := range refs {
					id = s.MustPull(ctx, r)
				}
				Expect(s.Status(ctx, id).GetRepoTags()).To(ContainElements(refs))
				Expect(s.Remove(ctx, refs[1])).To(Succeed())
				s.ExpectAbsent(ctx, append(refs, id, s.DigestRef(a, img), s.DigestRef(b, img))...)
			})

		su.Spec("RM-002", "RemoveImage is idempotent: a second removal and never-pulled names do not fail",
			framework.Meta{Refs: []string{"IS-08"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				Expect(s.Remove(ctx, ref)).To(Succeed())
				Expect(s.Remove(ctx, ref)).To(Succeed(), "second RemoveImage(%s)", ref)
				Expect(s.Remove(ctx, id)).To(Succeed(), "RemoveImage of the removed image's ID")
				Expect(s.Remove(ctx, s.Ref(s.Repo("anon"), "never"))).To(Succeed(), "RemoveImage of a never-pulled name")
				Expect(s.Remove(ctx, strings.Repeat("0", 64))).To(Succeed(), "RemoveImage of an unknown ID")
			})

		su.Spec("RM-003", "removing by repository digest removes the image",
			framework.Meta{Refs: []string{"IS-09", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				Expect(s.Remove(ctx, s.DigestRef(repo, img))).To(Succeed())
				s.ExpectAbsent(ctx, ref, id, s.DigestRef(repo, img))
			})

		su.Spec("RM-004", "removing by image ID removes every name",
			framework.Meta{Refs: []string{"IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				Expect(s.Remove(ctx, id)).To(Succeed())
				s.ExpectAbsent(ctx, ref, id, s.DigestRef(repo, img))
			})

		su.Spec("RM-005", "five concurrent RemoveImage calls of one image all succeed",
			framework.Meta{Refs: []string{"IS-08"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				var wg sync.WaitGroup
				errs := make([]error, 5)
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[i] = s.Remove(ctx, id)
					}()
				}
				wg.Wait()
				for i, err := range errs {
					Expect(err).NotTo(HaveOccurred(), "concurrent RemoveImage #%d", i)
				}
				s.ExpectAbsent(ctx, ref, id)
			})

		su.Spec("RM-006", "removing one image leaves an image that shares its layers intact",
			framework.Meta{Refs: []string{"IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				a := s.Push(img, "anon", "v1")
				other := s.Unique(1, 256)
				b := s.Push(other, "anon", "v1")
				idA := s.MustPull(ctx, s.Ref(a, "v1"))
				idB := s.MustPull(ctx, s.Ref(b, "v1"))
				Expect(s.Remove(ctx, idA)).To(Succeed())
				st := s.Status(ctx, s.Ref(b, "v1"))
				Expect(st).NotTo(BeNil())
				Expect(st.GetId()).To(Equal(idB))
				// The survivor is still usable: a re-pull is answered from the store.
				Expect(s.MustPull(ctx, s.Ref(b, "v1"))).To(Equal(idB))
			})

		su.Spec("RM-007", "RemoveImage of an empty reference removes nothing",
			framework.Meta{Level: framework.Recommended, Serial: true, Refs: []string{"IS-08", "IS-13"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				err := s.Remove(ctx, "")
				harness.Observe("RemoveImage(\"\") → %v", err)
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil(), "RemoveImage(\"\") removed %s", ref)
				Expect(st.GetId()).To(Equal(id))
			})

		su.Spec("RM-008", "RemoveImage by a truncated ID of one image never removes another image",
			framework.Meta{Refs: []string{"IS-10", "IS-25"}}, func(ctx context.Context, s *harness.Spec) {
				_, refA := s.PushUnique("v1")
				_, refB := s.PushUnique("v1")
				idA, idB := s.MustPull(ctx, refA), s.MustPull(ctx, refB)
				prefix := strings.TrimPrefix(idA, "sha256:")[:12]
				Expect(idB).NotTo(HavePrefix("sha256:"+prefix), "fixture: both IDs start with %s", prefix)
				// Whether a truncated ID removes A is implementation-defined; B must survive.
				for _, form := range []string{prefix, "sha256:" + prefix} {
					err := s.Remove(ctx, form)
					harness.Observe("RemoveImage(%s) → %v; %s listed: %s", form, err, refA, yesNo(s.Status(ctx, refA) != nil))
					st := s.Status(ctx, refB)
					Expect(st).NotTo(BeNil(), "RemoveImage(%q), a prefix of %s only, removed the other image %s", form, idA, refB)
					Expect(st.GetId()).To(Equal(idB))
				}
			})

		su.Spec("RM-009", "RemoveImage of any form ImageStatus accepts removes exactly that image",
			framework.Meta{Refs: []string{"IS-08", "IS-10", "IS-25", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				// One fresh image per form, beside a bystander: when ImageStatus(form) finds the
				// image, RemoveImage(form) must remove it (all its names) and nothing else; an OK
				// that removes nothing while ImageStatus still resolves the form is a lie kubelet's
				// image GC would act on.
				_, bystanderRef := s.PushUnique("v1")
				bystander := s.MustPull(ctx, bystanderRef)
				type form struct{ what, ref string }
				forms := func(img *runtime.Image) []form {
					names, truncated := harness.AcceptedForms(img)
					var out []form
					for _, n := range names {
						out = append(out, form{"name", n})
					}
					for _, t := range truncated {
						out = append(out, form{"truncated ID", t})
					}
					return out
				}
				kinds := forms(s.Status(ctx, bystander)) // every fresh image below has the same forms
				for i := range kinds {
					_, ref := s.PushUnique("v1")
					id := s.MustPull(ctx, ref)
					img := s.Status(ctx, ref)
					f := forms(img)[i]
					if s.Status(ctx, f.ref) == nil {
						harness.Observe("ImageStatus does not accept the %s %s: RemoveImage by it not checked", f.what, f.ref)
						continue
					}
					By("RemoveImage(" + f.ref + "), a " + f.what + " ImageStatus resolves")
					Expect(s.Remove(ctx, f.ref)).To(Succeed(), "RemoveImage(%s)", f.ref)
					s.ExpectAbsent(ctx, append(img.GetRepoTags(), append(img.GetRepoDigests(), id, f.ref)...)...)
					Expect(s.Status(ctx, bystander).GetId()).To(Equal(bystander), "RemoveImage(%s) removed another image", f.ref)
				}
			})
	})
}
