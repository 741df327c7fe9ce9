package specs

import (
	"context"
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// expectFixture pulls a catalog image pushed to a fresh repository and checks what the fixture
// says a correct runtime reports: image_ref = Image.id naming the chosen config, the top-level
// digest as repository digest, the tag, size > 0, and the platform's layers fetched.
func expectFixture(ctx context.Context, s *harness.Spec, img fixtures.Image) string {
	GinkgoHelper()
	repo := s.Push(img, "anon", "v1")
	ref := s.Ref(repo, "v1")
	id, err := s.Pull(ctx, ref, nil)
	Expect(err).NotTo(HaveOccurred(), "PullImage of %s (%s)", img.Name, img.Note)
	st := s.Status(ctx, ref)
	Expect(st).NotTo(BeNil(), "ImageStatus of %s", img.Name)
	Expect(st.GetId()).To(Equal(id))
	if img.Config != "" {
		Expect(id).To(ContainSubstring(img.Config.Encoded()), "%s: image_ref should name the %s config %s", img.Name, img.Platform, img.Config)
	}
	Expect(st.GetRepoDigests()).To(ContainElement(s.DigestRef(repo, img)), "%s: the top-level digest is the repository digest", img.Name)
	Expect(st.GetRepoTags()).To(ContainElement(ref))
	Expect(st.GetSize()).To(BeNumerically(">", 0))
	for _, l := range img.Layers {
		if isForeign(img, l) {
			continue
		}
		s.EventuallyBlobGets(repo, l)
	}
	return ref
}

func isForeign(img fixtures.Image, d interface{ String() string }) bool {
	for _, f := range img.Foreign {
		if f.String() == d.String() {
			return true
		}
	}
	return false
}

// expectCleanFailure pushes img, expects PullImage to fail and leave nothing behind.
func expectCleanFailure(ctx context.Context, s *harness.Spec, img fixtures.Image) {
	repo := s.Push(img, "anon", "v1")
	ref := s.Ref(repo, "v1")
	_, err := s.Pull(ctx, ref, nil)
	st := harness.ExpectPullError(err, img.Name+": "+fixtures.FailureDoc(img.Failure))
	harness.Observe("%s → %v: %s", img.Name, st.Code(), st.Message())
	absent := []string{ref, s.DigestRef(repo, img)}
	if img.ID != "" {
		absent = append(absent, img.ID)
	}
	s.ExpectAbsent(ctx, absent...)
}

// expectSchema1 pulls the named schema 1 fixture from a fresh repository (the target declares
// schema1) and checks the converted image: image_ref = Image.id, the tag, size > 0, and no wrong
// repository digest. A repository digest of this repository, if reported, must be the digest the
// registry serves the manifest under (signed: the canonical payload digest); reporting none is
// allowed and recorded: the converted image has no digest of its own at the registry, and
// containerd deliberately omits it ("digest is not actual repo digest for schema1 image",
// cri util.GetRepoDigestAndTag) rather than report the converted manifest's.
func expectSchema1(ctx context.Context, s *harness.Spec, name string) {
	GinkgoHelper()
	img := s.Fixture(name)
	repo := s.Push(img, "anon", "v1")
	ref := s.Ref(repo, "v1")
	id, err := s.Pull(ctx, ref, nil)
	Expect(err).NotTo(HaveOccurred(), "%s: the target declares schema1", name)
	st := s.Status(ctx, ref)
	Expect(st).NotTo(BeNil(), "%s: ImageStatus after the pull", name)
	Expect(st.GetId()).To(Equal(id))
	Expect(st.GetRepoTags()).To(ContainElement(ref), "%s: RepoTags", name)
	Expect(st.GetSize()).To(BeNumerically(">", 0))
	prefix := s.Env.Reg.PlainHost() + "/" + repo + "@"
	var mine []string
	for _, d := range st.GetRepoDigests() {
		if strings.HasPrefix(d, prefix) {
			mine = append(mine, d)
		}
	}
	if len(mine) == 0 {
		harness.Observe("%s: no repository digest reported for %s", name, repo)
		return
	}
	Expect(mine).To(ConsistOf(s.DigestRef(repo, img)), "%s: the repository digest must be the one the registry serves the manifest under", name)
}

// formatSpecs: manifest formats and platform choice.
func formatSpecs(su *framework.Tree) {
	Describe("Image formats", func() {
		su.Spec("FMT-001", "a Docker schema 2 image with several layers pulls and reports the fixture's identity",
			framework.Meta{Refs: []string{"IS-07", "IS-25", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameSchema2Layers))
			})
		su.Spec("FMT-002", "an OCI image manifest pulls and reports the fixture's identity",
			framework.Meta{Refs: []string{"IS-07", "IS-25", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameOCI))
			})
		su.Spec("FMT-003", "an OCI index pulls the host platform's manifest; the index digest is the repository digest",
			framework.Meta{Refs: []string{"IS-07", "IS-14", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameOCIIndex))
			})
		su.Spec("FMT-004", "a Docker manifest list pulls the host platform's manifest",
			framework.Meta{Refs: []string{"IS-07", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameManifestList))
			})
		su.Spec("FMT-005", "an index without an entry for the host platform fails cleanly",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				expectCleanFailure(ctx, s, s.Fixture(fixtures.NameIndexNoHost))
			})
		su.Spec("FMT-006", "zstd-compressed OCI layers pull",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameOCIZstd))
			})
		su.Spec("FMT-007", "foreign (non-distributable) layers are fetched from their URLs",
			framework.Meta{Level: framework.Recommended, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				img := s.Fixture(fixtures.NameForeignLayer)
				expectFixture(ctx, s, img)
				Expect(hasListener(s, route.ListenerForeign)).To(BeTrue(), "the foreign layer was not fetched from its URL")
			})
		su.Spec("FMT-008", "an image with an empty layer pulls",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameEmptyLayer))
			})
		su.Spec("FMT-009", "an image with many layers pulls",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				expectFixture(ctx, s, s.Fixture(fixtures.NameManyLayers))
			})
		// Signed (…v1+prettyjws) and unsigned (…v1+json) schema 1 are separate specs: runtimes
		// differ between them (containerd 1.6 converts only the signed form), and one ID per form
		// keeps an expectation from hiding the other.
		su.Spec("FMT-010", "a signed Docker schema 1 image (v1+prettyjws) is converted and pulled",
			framework.Meta{Needs: []config.Feature{config.FeatureSchema1}, Refs: []string{"IS-07", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectSchema1(ctx, s, fixtures.NameSchema1Signed)
			})
		su.Spec("FMT-014", "an unsigned Docker schema 1 image (v1+json) is converted and pulled",
			framework.Meta{Needs: []config.Feature{config.FeatureSchema1}, Refs: []string{"IS-07", "IS-26"}}, func(ctx context.Context, s *harness.Spec) {
				expectSchema1(ctx, s, fixtures.NameSchema1)
			})
		su.Spec("FMT-011", "without schema 1 support, schema 1 pulls fail with a classified error and leave nothing",
			framework.Meta{Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				if s.Env.Cfg.Features.Has(config.FeatureSchema1) {
					framework.Unsupported("the target declares schema1 (FMT-010 and FMT-014 check the conversion)")
				}
				for _, name := range []string{fixtures.NameSchema1, fixtures.NameSchema1Signed} {
					img := s.Fixture(name)
					repo := s.Push(img, "anon", "v1")
					ref := s.Ref(repo, "v1")
					_, err := s.Pull(ctx, ref, nil)
					st := harness.ExpectPullError(err, name+" without schema1 support")
					Expect(strings.ToLower(st.Message())).To(Or(ContainSubstring("schema 1"), ContainSubstring("schema1"),
						ContainSubstring("manifest.v1"), ContainSubstring("not supported")),
						"%s: the error should say schema 1 is unsupported: %s", name, st.Message())
					s.ExpectAbsent(ctx, ref, s.DigestRef(repo, img))
				}
			})
		su.Spec("FMT-012", "records what the target does with hazardous layers (path escapes, device nodes, gzip bomb)",
			framework.Meta{Level: framework.Informational, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				for _, name := range s.Catalog().Names() {
					img := s.Fixture(name)
					if img.Outcome != fixtures.OutcomeEither || img.Failure == "" {
						continue // only the hazard classes; e.g. schema 1 is FMT-010/011/014
					}
					if _, onHost := fixtures.EscapeTargets()[name]; onHost {
						continue // FMT-013
					}
					if img.Failure == fixtures.FailureGzipBomb {
						harness.Observe("%s: not run (expands to %d MiB)", name, int(s.Catalog().Options().BombSize>>20))
						continue
					}
					repo := s.Push(img, "anon", "v1")
					ref := s.Ref(repo, "v1")
					_, err := s.Pull(ctx, ref, nil)
					listed := s.Status(ctx, ref) != nil
					harness.Observe("%s: %v; listed: %s", name, err, yesNo(listed))
					if err != nil {
						Expect(listed).To(BeFalse(), "%s failed but is listed", name)
					}
				}
			})

		su.Spec("FMT-013", "layers whose entries escape the rootfs never write on the host",
			framework.Meta{Serial: true, Refs: []string{"IS-07"}}, func(ctx context.Context, s *harness.Spec) {
				// The target shares this host (it pulls from a loopback registry), so the suite can
				// look where an escaping entry would land.
				for name, hostPath := range fixtures.EscapeTargets() {
					if _, err := os.Lstat(hostPath); err == nil {
						Fail(fmt.Sprintf("%s exists before the pull (left by an earlier run?): remove it so the spec can judge", hostPath))
					}
					img := s.Fixture(name)
					repo := s.Push(img, "anon", "v1")
					ref := s.Ref(repo, "v1")
					_, err := s.Pull(ctx, ref, nil)
					harness.Observe("%s: %v", name, err)
					if err == nil {
						Expect(s.Status(ctx, ref)).NotTo(BeNil(), "%s: the pull succeeded but the image is not there", name)
					} else {
						s.ExpectAbsent(ctx, ref)
					}
					_, statErr := os.Lstat(hostPath)
					if statErr == nil {
						_ = os.Remove(hostPath)
					}
					Expect(statErr).To(HaveOccurred(), "%s: the target wrote %s on the host (%s)", name, hostPath, fixtures.FailureDoc(img.Failure))
				}
			})
	})
}
