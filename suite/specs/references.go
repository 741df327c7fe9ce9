package specs

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// references: how references are normalized and how every form looks an image up.
func references(su *framework.Tree) {
	Describe("References and lookup", func() {
		su.Spec("REF-001", "an untagged reference pulls :latest and reports it as a tag",
			framework.Meta{Refs: []string{"IS-26", "CV-08"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "latest")
				bare := s.Env.Reg.PlainHost() + "/" + repo
				id := s.MustPull(ctx, bare)
				st := s.Status(ctx, bare)
				Expect(st).NotTo(BeNil(), "ImageStatus of the untagged reference %s", bare)
				Expect(st.GetId()).To(Equal(id))
				Expect(st.GetRepoTags()).To(ContainElement(bare + ":latest"))
			})

		su.Spec("REF-002", "ImageStatus finds the image by image_ref, tag and repository digest, with equal answers",
			framework.Meta{Refs: []string{"IS-25", "IS-26", "IS-13"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				id := s.MustPull(ctx, ref)
				byTag := s.Status(ctx, ref)
				Expect(byTag).NotTo(BeNil())
				for _, form := range []string{id, s.DigestRef(repo, img)} {
					got := s.Status(ctx, form)
					Expect(got).NotTo(BeNil(), "ImageStatus(%q)", form)
					Expect(got.GetId()).To(Equal(byTag.GetId()), "ImageStatus(%q).id", form)
					Expect(got.GetRepoTags()).To(ConsistOf(byTag.GetRepoTags()), "ImageStatus(%q).repo_tags", form)
					Expect(got.GetRepoDigests()).To(ConsistOf(byTag.GetRepoDigests()), "ImageStatus(%q).repo_digests", form)
				}
			})

		su.Spec("REF-003", "ImageStatus accepts the image ID with and without the sha256: prefix",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-25"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				other := "sha256:" + id
				if strings.HasPrefix(id, "sha256:") {
					other = strings.TrimPrefix(id, "sha256:")
				}
				got := s.Status(ctx, other)
				Expect(got).NotTo(BeNil(), "ImageStatus(%q), the other spelling of image_ref %q", other, id)
				Expect(got.GetId()).To(Equal(id))
			})

		su.Spec("REF-004", "ImageStatus of an absent image returns a nil image and no error, for every reference form",
			framework.Meta{Refs: []string{"IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				img, ref := s.PushUnique("v1") // pushed, never pulled
				repo := s.Repo("anon")
				for _, form := range []string{
					ref,
					s.Ref(repo, "nosuchtag"),
					s.Env.Reg.PlainHost() + "/" + repo + "@" + img.Digest.String(),
					img.ID,
					"sha256:" + strings.Repeat("0", 64),
					strings.Repeat("0", 64),
				} {
					resp, err := s.StatusFull(ctx, form, false)
					Expect(err).NotTo(HaveOccurred(), "ImageStatus(%q) of an absent image must not fail", form)
					Expect(resp.GetImage()).To(BeNil(), "ImageStatus(%q) of an absent image", form)
				}
			})

		su.Spec("REF-005", "malformed references are rejected by PullImage and create nothing",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				// What a rejected reference could have created carries the spec's repository or
				// the 64 a's in a name: look for those, not at the store's size (other specs pull
				// meanwhile under ginkgo -p).
				repo := s.Repo("anon")
				host := s.Env.Reg.PlainHost()
				for _, bad := range []string{
					"",
					host + "/" + strings.ToUpper(repo) + ":v1",         // uppercase repository
					strings.Repeat("a", 64),                            // 64 hex characters
					host + "/" + repo + ":",                            // empty tag
					host + "/" + repo + "@sha256:abc",                  // short digest
					host + "/" + repo + ":v1@sha256:" + "zz",           // bad digest
					host + "/" + repo + ":" + strings.Repeat("t", 129), // tag too long
				} {
					_, err := s.Pull(ctx, bad, nil)
					st := harness.ExpectPullError(err, "malformed reference "+bad)
					harness.Observe("%s → %v: %s", bad, st.Code(), st.Message())
				}
				for _, img := range s.List(ctx) {
					for _, name := range append(img.GetRepoTags(), img.GetRepoDigests()...) {
						Expect(strings.ToLower(name)).NotTo(Or(ContainSubstring(strings.ToLower(repo)), ContainSubstring(strings.Repeat("a", 64))),
							"a rejected reference created image %s", img.GetId())
					}
				}
			})

		su.Spec("REF-006", "malformed references are rejected with InvalidArgument",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				repo := s.Repo("anon")
				for _, bad := range []string{s.Env.Reg.PlainHost() + "/" + strings.ToUpper(repo) + ":v1", s.Env.Reg.PlainHost() + "/" + repo + "@sha256:abc"} {
					_, err := s.Pull(ctx, bad, nil)
					Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "PullImage(%q): %v", bad, err)
				}
			})

		su.Spec("REF-007", "tags are case-sensitive and kept as written",
			framework.Meta{Refs: []string{"IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "MixedCase")
				ref := s.Ref(repo, "MixedCase")
				s.MustPull(ctx, ref)
				Expect(s.Status(ctx, ref).GetRepoTags()).To(ContainElement(ref))
				resp, err := s.StatusFull(ctx, s.Ref(repo, "mixedcase"), false)
				Expect(err).NotTo(HaveOccurred())
				Expect(resp.GetImage()).To(BeNil(), "tag lookup must be case-sensitive")
			})

		su.Spec("REF-008", "a reference with both tag and digest pulls the digest",
			framework.Meta{Refs: []string{"IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				other := s.Unique(1, 256)
				Expect(other.Push(s.Env.Reg, repo, "v2")).To(Succeed())
				// The tag names other content: the digest must win.
				ref := s.Ref(repo, "v2") + "@" + img.Digest.String()
				id := s.MustPull(ctx, ref)
				Expect(id).To(Equal(s.Status(ctx, s.DigestRef(repo, img)).GetId()))
				st := s.Status(ctx, s.DigestRef(repo, img))
				Expect(st.GetRepoDigests()).To(ContainElement(s.DigestRef(repo, img)))
				harness.Observe("repo_tags after a tag@digest pull: %s", strings.Join(st.GetRepoTags(), ", "))
			})

		// Serial: a runtime that resolves "" by prefix (containerd's digest set) answers with an
		// image only while the store holds exactly one; another process's images would hide that.
		su.Spec("REF-009", "ImageStatus of an empty reference never returns an image",
			framework.Meta{Level: framework.Recommended, Serial: true, Refs: []string{"IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				s.MustPull(ctx, ref)
				resp, err := s.StatusFull(ctx, "", false)
				if err != nil {
					harness.Observe("ImageStatus(\"\") → %v", err)
					return
				}
				Expect(resp.GetImage()).To(BeNil(), "ImageStatus(\"\") returned an image")
			})

		su.Spec("REF-010", "short, docker.io and index.docker.io forms normalize to docker.io/library/NAME:latest and all resolve",
			framework.Meta{Needs: []config.Feature{config.FeatureMirror}, Serial: true, Refs: []string{"CV-08"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "library", "latest") // library/<name>
				name := strings.TrimPrefix(repo, "library/")
				id := s.MustPull(ctx, name)
				full := "docker.io/library/" + name + ":latest"
				st := s.Status(ctx, full)
				Expect(st).NotTo(BeNil(), "ImageStatus(%s) after PullImage(%s)", full, name)
				Expect(st.GetId()).To(Equal(id))
				Expect(st.GetRepoTags()).To(ContainElement(full))
				for _, form := range []string{name, name + ":latest", "library/" + name, "docker.io/" + name,
					"docker.io/library/" + name, name + "@" + img.Digest.String(), "docker.io/library/" + name + "@" + img.Digest.String(),
					"index.docker.io/library/" + name, "index.docker.io/" + name + ":latest"} { // index.docker.io is docker.io
					got := s.Status(ctx, form)
					Expect(got).NotTo(BeNil(), "ImageStatus(%q)", form)
					Expect(got.GetId()).To(Equal(id), "ImageStatus(%q)", form)
				}
				Expect(s.MustPull(ctx, "index.docker.io/library/"+name)).To(Equal(id), "PullImage through the index.docker.io alias")
			})

		su.Spec("REF-012", "image_ref is the image ID, not a repository digest or tag",
			framework.Meta{Refs: []string{"IS-36", "IS-25"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				id := s.MustPull(ctx, s.DigestRef(repo, img))
				Expect(id).NotTo(ContainSubstring("@"), "image_ref %q looks like a repository digest (pre-v1.36 meaning)", id)
				Expect(id).NotTo(ContainSubstring("/"), "image_ref %q looks like a reference", id)
				Expect(id).NotTo(ContainSubstring(img.Digest.Encoded()), "image_ref %q is the manifest digest, not the image ID", id)
				Expect(s.Status(ctx, id).GetId()).To(Equal(id))
			})

		su.Spec("REF-013", "ImageStatus by a truncated image ID never answers another image",
			framework.Meta{Refs: []string{"IS-25", "IS-06"}}, func(ctx context.Context, s *harness.Spec) {
				_, refA := s.PushUnique("v1")
				_, refB := s.PushUnique("v1")
				ids := []string{s.MustPull(ctx, refA), s.MustPull(ctx, refB)}
				// Whether a truncated ID resolves is implementation-defined (REF-011); answering
				// with an image whose ID does not start with it is wrong whatever the choice.
				for i, id := range ids {
					prefix := strings.TrimPrefix(id, "sha256:")[:12]
					other := ids[1-i]
					Expect(strings.HasPrefix(strings.TrimPrefix(other, "sha256:"), prefix)).To(BeFalse(), "fixture: both images' IDs start with %s", prefix)
					for _, form := range []string{prefix, "sha256:" + prefix} {
						resp, err := s.StatusFull(ctx, form, false)
						if err != nil {
							harness.Observe("ImageStatus(%s) → %v", form, err)
							continue
						}
						got := resp.GetImage()
						if got == nil {
							harness.Observe("ImageStatus(%s) → nil", form)
							continue
						}
						Expect(got.GetId()).NotTo(Equal(other), "ImageStatus(%q), a prefix of %s, answered the other image", form, id)
						Expect(strings.TrimPrefix(got.GetId(), "sha256:")).To(HavePrefix(prefix),
							"ImageStatus(%q) answered an image whose id %s does not start with it", form, got.GetId())
					}
				}
			})

		su.Spec("REF-014", "a truncated ID shared by two images resolves to neither: ImageStatus answers no image and RemoveImage removes nothing",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-25", "IS-06", "IS-10"}}, func(ctx context.Context, s *harness.Spec) {
				a, b, prefix := sharedIDPrefix(s, 4)
				ids := map[string]string{}
				refs := map[string]string{}
				for _, img := range []fixtures.Image{a, b} {
					refs[img.ID] = s.Ref(s.Push(img, "anon", "v1"), "v1")
					ids[img.ID] = s.MustPull(ctx, refs[img.ID])
					Expect(ids[img.ID]).To(HavePrefix("sha256:"+prefix), "image_ref of %s", refs[img.ID])
				}
				for _, form := range []string{prefix, "sha256:" + prefix} {
					resp, err := s.StatusFull(ctx, form, false)
					harness.Observe("ImageStatus(%s), a prefix of two images → image=%s err=%v", form, yesNo(resp.GetImage() != nil), err)
					if err == nil {
						Expect(resp.GetImage()).To(BeNil(), "ImageStatus(%q), a prefix of both %s and %s, chose %s", form, a.ID, b.ID, resp.GetImage().GetId())
					}
					err = s.Remove(ctx, form)
					harness.Observe("RemoveImage(%s), a prefix of two images → err=%v", form, err)
					for fid, ref := range refs {
						st := s.Status(ctx, ref)
						Expect(st).NotTo(BeNil(), "RemoveImage(%q), a prefix of two images, removed %s", form, ref)
						Expect(st.GetId()).To(Equal(ids[fid]))
					}
				}
			})

		su.Spec("REF-011", "records how the target treats truncated image IDs",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-25"}}, func(ctx context.Context, s *harness.Spec) {
				_, ref := s.PushUnique("v1")
				id := s.MustPull(ctx, ref)
				hex := strings.TrimPrefix(id, "sha256:")
				for _, n := range []int{1, 12} {
					resp, err := s.StatusFull(ctx, hex[:n], false)
					harness.Observe("ImageStatus(first %d hex) → image=%s err=%v", n, yesNo(resp.GetImage() != nil), err)
				}
			})

		su.Spec("REF-015", "PullImage of a bare image ID (sha256:<64 hex>) is refused with InvalidArgument and asks no registry for library/sha256",
			framework.Meta{Level: framework.Recommended, Needs: []config.Feature{config.FeatureMirror}, Refs: []string{"IS-13", "IS-07", "CV-08"}},
			func(ctx context.Context, s *harness.Spec) {
				// An image ID names content, not a place to pull it from (ImageSpec.image may carry
				// one, IS-13, for the RPCs that look images up). Parsed as a docker reference it
				// is the tag <hex> of docker.io/library/sha256: a pull that goes there fetches
				// whatever that repository holds under a name that looks like an ID.
				_, ref := s.PushUnique("v1")
				present := s.MustPull(ctx, ref)
				absent := "sha256:" + strings.Repeat("0", 64)
				for _, id := range []string{present, absent} {
					_, err := s.Pull(ctx, id, nil)
					harness.Observe("PullImage(%s) → %v", id, err)
					Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "PullImage(%s): an image ID is not a reference to pull", id)
				}
				for _, e := range s.Journal() {
					Expect(e.Repo).NotTo(HavePrefix("library/sha256"), "the target asked the docker.io mirror for %s %s", e.Method, e.Path)
				}
				Expect(s.Status(ctx, present).GetId()).To(Equal(present), "the refused pull changed the image it names")
			})

		su.Spec("REF-016", "a registry host written with capitals pulls from that host and is reported as written",
			framework.Meta{Level: framework.Recommended, Needs: []config.Feature{config.FeatureTLSHostname}, Refs: []string{"IS-26", "CV-08"}},
			func(ctx context.Context, s *harness.Spec) {
				// Host names are case-insensitive (RFC 4343), the repository path is not; kubelet
				// keeps the image name of the pod spec as written (CV-08) and looks it up by that.
				img := s.Unique(1, 256)
				repo := s.Push(img, "anon", "v1")
				ref := strings.ToUpper(s.Env.Reg.TLSHost()) + "/" + repo + ":v1"
				id, err := s.Pull(ctx, ref, nil)
				Expect(err).NotTo(HaveOccurred(), "PullImage(%s): the host name is %s in other letters", ref, s.Env.Reg.TLSHost())
				Expect(id).To(ContainSubstring(img.Config.Encoded()))
				st := s.Status(ctx, ref)
				Expect(st).NotTo(BeNil(), "ImageStatus(%s), the reference as pulled", ref)
				Expect(st.GetRepoTags()).To(ContainElement(ref), "the tag must be kept as written")
			})
	})
}

// sharedIDPrefix returns two fresh images whose IDs share their first n hex characters (found by
// generating candidates: for n = 4 about 300 on average, milliseconds) and that prefix.
func sharedIDPrefix(s *harness.Spec, n int) (fixtures.Image, fixtures.Image, string) {
	seen := map[string]fixtures.Image{}
	for range 50000 {
		img := s.Unique(1, 16)
		p := strings.TrimPrefix(img.ID, "sha256:")[:n]
		if prev, ok := seen[p]; ok {
			return prev, img, p
		}
		seen[p] = img
	}
	Fail(fmt.Sprintf("no two of 50000 fresh images share an ID prefix of %d hex characters", n))
	return fixtures.Image{}, fixtures.Image{}, ""
}
