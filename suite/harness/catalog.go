package harness

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/fixtures"
)

// Catalog returns the fixture catalog salted for this run and spec: its images have the
// documented shapes and expected outcomes, but content (and so IDs) no other spec shares, so
// that one spec's cleanup never removes another's image.
func (s *Spec) Catalog() *fixtures.Set {
	GinkgoHelper()
	if s.catalog == nil {
		set, err := fixtures.Catalog(fixtures.Options{
			Seed:       fmt.Sprintf("%s/%s", s.Env.Nonce, s.ID),
			ForeignURL: s.Env.Reg.ForeignURL(),
			ManyLayers: 16, // enough for a chain of snapshots, cheap enough for a 60 s suite
		})
		Expect(err).NotTo(HaveOccurred(), "fixture catalog")
		s.catalog = set
	}
	return s.catalog
}

// Fixture returns the named catalog image (see Catalog).
func (s *Spec) Fixture(name string) fixtures.Image {
	GinkgoHelper()
	img, err := s.Catalog().Image(name)
	Expect(err).NotTo(HaveOccurred(), "fixture %s", name)
	return img
}

// FixturesWithUsers returns the catalog images whose config sets a User.
func (s *Spec) FixturesWithUsers() []fixtures.Image {
	var out []fixtures.Image
	for _, name := range s.Catalog().Names() {
		if !strings.HasPrefix(name, "user-") {
			continue
		}
		img := s.Fixture(name)
		if img.User != "" {
			out = append(out, img)
		}
	}
	return out
}

// DockerLibraryRef splits "docker.io/library/NAME:TAG" (any docker.io spelling) into the
// fixture repository "library/NAME" and TAG.
func DockerLibraryRef(ref string) (repo, tag string, ok bool) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil || reference.Domain(named) != "docker.io" {
		return "", "", false
	}
	path := reference.Path(named)
	if !strings.HasPrefix(path, "library/") {
		return "", "", false
	}
	tagged, isTagged := named.(reference.Tagged)
	if !isTagged {
		return "", "", false
	}
	return path, tagged.Tag(), true
}
