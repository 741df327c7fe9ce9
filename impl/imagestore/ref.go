package imagestore

import (
	"fmt"
	"strings"

	"github.com/criimage/criimage/impl/internal/echo"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// MinIDPrefix is the shortest hex ID prefix Resolve accepts. Shorter hex strings are not treated
// as prefixes at all (they resolve to nothing, like any unknown name): a one- or two-character
// "prefix" matches by accident far too easily (containerd accepts even "c", and "" matches a
// lone image — see containerd-cri-images.md §9.6). Four characters keep crictl's and docker's
// short IDs (12–13 characters) working.
const MinIDPrefix = 4

// Normalize turns what a CRI client sent into the fully qualified reference criimage stores, with
// reference.ParseDockerRef's rules (the same as containerd's CRI plugin): "docker.io/library" and
// ":latest" are implied, "index.docker.io" is "docker.io", and for "name:tag@digest" the tag is
// dropped — such a reference pulls and is recorded by digest only. A bare image ID
// ("sha256:<64 hex>") is refused: it names content, not a repository, and ParseDockerRef would
// read it as the tag <hex> of docker.io/library/sha256 (containerd pulls that). Errors are
// InvalidArgument and name the input.
func Normalize(ref string) (reference.Named, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	if isID(ref) {
		return nil, fmt.Errorf("image reference %s is an image ID, which names no repository to pull from: %w", echo.Quote(ref), errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %s: %v: %w", echo.Quote(ref), err, errdefs.ErrInvalidArgument)
	}
	return named, nil
}

// RepoDigestAndTag returns the records a pull of named creates besides the ID: the repo digest
// (name@<top-level digest>) and the repo tag ("" when named carries a digest).
func RepoDigestAndTag(named reference.Named, target digest.Digest) (repoDigest, repoTag string) {
	if c, ok := named.(reference.Canonical); ok {
		return c.String(), ""
	}
	repoDigest = named.Name() + "@" + target.String()
	if t, ok := named.(reference.NamedTagged); ok {
		repoTag = t.String()
	}
	return repoDigest, repoTag
}

// SplitReferences sorts record names into repo tags and repo digests; IDs ("sha256:…") and
// anything unparseable are left out. Both lists come back in reference order.
func SplitReferences(refs []string) (tags, digests []string) {
	for _, r := range refs {
		if isID(r) {
			continue
		}
		parsed, err := reference.ParseAnyReference(r)
		if err != nil {
			continue
		}
		switch parsed.(type) {
		case reference.Canonical:
			digests = append(digests, parsed.String())
		case reference.Tagged:
			tags = append(tags, parsed.String())
		}
	}
	return tags, digests
}

// isID reports whether s is an image ID: "sha256:" followed by 64 lowercase hex characters.
func isID(s string) bool {
	d, err := digest.Parse(s)
	return err == nil && d.Algorithm() == digest.SHA256 && s == d.String()
}

// idPrefix returns the hex part of s when s can be an ID prefix ("sha256:" optional, lowercase
// hex, MinIDPrefix to 64 characters).
func idPrefix(s string) (string, bool) {
	p := strings.TrimPrefix(s, "sha256:")
	if len(p) < MinIDPrefix || len(p) > 64 {
		return "", false
	}
	for _, c := range p {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return p, true
}

// ParseID returns s if it is a full image ID ("sha256:" and 64 lowercase hex characters).
func ParseID(s string) (string, error) {
	if !isID(s) {
		return "", fmt.Errorf("not an image ID %s: %w", echo.Quote(s), errdefs.ErrInvalidArgument)
	}
	return s, nil
}
