package harness

import (
	"context"
	"maps"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/suite/config"
)

// truncatedIDLengths are the truncated image IDs (hex digits, no "sha256:") the one-image
// invariant tries: docker's short ID, half an ID, all but one digit. At 12 digits and more an
// accidental prefix shared with another image of the run is out of reach (2^-48 per pair).
func truncatedIDLengths() []int { return []int{12, 32, 63} }

// Facts is what the one-image invariant compares: every field of runtime.Image, with repo_tags
// and repo_digests as sorted sets and an empty annotation map as none.
type Facts struct {
	ID                 string
	RepoTags           []string
	RepoDigests        []string
	Size               uint64
	UID                *int64
	Username           string
	Pinned             bool
	SpecImage          string
	SpecAnnotations    map[string]string
	SpecUserSpecified  string
	SpecRuntimeHandler string
}

// FactsOf normalizes img for comparison (nil for nil).
func FactsOf(img *runtime.Image) *Facts {
	if img == nil {
		return nil
	}
	f := &Facts{
		ID:                 img.GetId(),
		RepoTags:           sortedSet(img.GetRepoTags()),
		RepoDigests:        sortedSet(img.GetRepoDigests()),
		Size:               img.GetSize(),
		Username:           img.GetUsername(),
		Pinned:             img.GetPinned(),
		SpecImage:          img.GetSpec().GetImage(),
		SpecUserSpecified:  img.GetSpec().GetUserSpecifiedImage(),
		SpecRuntimeHandler: img.GetSpec().GetRuntimeHandler(),
	}
	if img.GetUid() != nil {
		v := img.GetUid().GetValue()
		f.UID = &v
	}
	if a := img.GetSpec().GetAnnotations(); len(a) > 0 {
		f.SpecAnnotations = maps.Clone(a)
	}
	return f
}

func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// AcceptedForms returns every reference form of img that the one-image invariant checks: its
// tags and repository digests, its ID, the ID without "sha256:", and the truncated IDs of
// truncatedIDLengths (whether the target accepts those is up to it; IS-25 leaves it open).
func AcceptedForms(img *runtime.Image) (names, truncated []string) {
	id := img.GetId()
	names = append(append(slices.Clone(img.GetRepoTags()), img.GetRepoDigests()...), id)
	hex, ok := strings.CutPrefix(id, "sha256:")
	if !ok || len(hex) != 64 {
		return names, nil
	}
	names = append(names, hex)
	for _, n := range truncatedIDLengths() {
		truncated = append(truncated, hex[:n])
	}
	return names, truncated
}

// ExpectOneDescription asserts the one-image invariant for the image with ID id, if it exists:
// ImageStatus of every form in AcceptedForms describes the same image with equal Facts (a
// truncated ID may instead find nothing or be refused: accepting one is optional), and ListImages
// and, when declared, StreamImages list it exactly once with the same Facts. The harness calls it
// after every successful pull and, at the end of every spec body, for every image the spec's
// pulls returned; specs call it after anything else that changes an image's names.
func (s *Spec) ExpectOneDescription(ctx context.Context, id string) {
	GinkgoHelper()
	byID := s.Status(ctx, id)
	if byID == nil {
		return
	}
	want := FactsOf(byID)
	names, truncated := AcceptedForms(byID)
	for _, form := range names {
		Expect(FactsOf(s.Status(ctx, form))).To(Equal(want),
			"one image, one description: ImageStatus(%s) must describe image %s exactly as ImageStatus(%s) does", form, id, id)
	}
	for _, form := range truncated {
		resp, err := s.StatusFull(ctx, form, false)
		if err != nil || resp.GetImage() == nil {
			continue // this truncated form is not accepted: allowed
		}
		Expect(FactsOf(resp.GetImage())).To(Equal(want),
			"one image, one description: ImageStatus(%s), a truncated ID it accepts, must describe image %s exactly as ImageStatus(%s) does", form, id, id)
	}
	expectListedOnce(s.List(ctx), want, "ListImages")
	if s.Env.Cfg.Features.Has(config.FeatureStreamImages) {
		streamed, err := s.StreamAll(ctx, nil)
		Expect(err).NotTo(HaveOccurred(), "StreamImages")
		expectListedOnce(streamed, want, "StreamImages")
	}
}

// expectListedOnce asserts that listed holds want's image exactly once, with want's Facts.
func expectListedOnce(listed []*runtime.Image, want *Facts, rpc string) {
	GinkgoHelper()
	var found []*Facts
	for _, img := range listed {
		if img.GetId() == want.ID {
			found = append(found, FactsOf(img))
		}
	}
	Expect(found).To(HaveLen(1), "one image, one description: %s must list image %s exactly once", rpc, want.ID)
	Expect(found[0]).To(Equal(want), "one image, one description: %s must describe image %s exactly as ImageStatus does", rpc, want.ID)
}

// Stream calls StreamImages with filter (may be nil) and returns its messages in order.
func (s *Spec) Stream(ctx context.Context, filter *runtime.ImageFilter) ([][]*runtime.Image, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	st, err := s.Env.Images.StreamImages(cctx, &runtime.StreamImagesRequest{Filter: filter})
	if err != nil {
		return nil, err
	}
	return criendpoint.Drain(st)
}

// StreamAll is Stream flattened.
func (s *Spec) StreamAll(ctx context.Context, filter *runtime.ImageFilter) ([]*runtime.Image, error) {
	batches, err := s.Stream(ctx, filter)
	return slices.Concat(batches...), err
}

// DeferOneDescription tells the harness that this spec's synchronous pulls run concurrently with
// other changes to the same images (removals, other pulls of the same names), so the one-image
// invariant is checked for them at the end of the body only, when nothing moves any more.
func (s *Spec) DeferOneDescription() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deferInvariant = true
}

// ExpectPulledDescribedOnce checks the one-image invariant for every image a pull of this spec
// returned that still exists. The spec framework calls it at the end of every spec body.
func (s *Spec) ExpectPulledDescribedOnce(ctx context.Context) {
	GinkgoHelper()
	s.mu.Lock()
	ids := slices.Compact(slices.Sorted(slices.Values(s.pulledIDs)))
	s.mu.Unlock()
	for _, id := range ids {
		s.ExpectOneDescription(ctx, id)
	}
}

// pulled records image_ref id of a successful pull and reports whether to check the invariant
// for it now.
func (s *Spec) pulled(id string) (checkNow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pulledIDs = append(s.pulledIDs, id)
	return !s.deferInvariant
}
