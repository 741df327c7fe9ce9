// Package imagestore is the in-memory index of the images criimage serves: which record names
// (repo tags, repo digests, the ID) belong to which image, what each image is made of, and the
// lookup rules every RPC shares (Resolve). It also reads an image's facts from the content store
// (Read) and checks that an image is still usable (Check; Checker for many images in one pass,
// each shared blob and snapshot looked up once). It holds no lock across calls into
// containerd; the service serializes writers.
package imagestore

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/criimage/criimage/impl/internal/echo"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image as the index knows it. Values are immutable snapshots.
type Image struct {
	ID         string   // "sha256:<config digest>"
	References []string // record names: repo tags, repo digests and the ID, sorted (reference.Sort)

	Target   ocispec.Descriptor // top-level manifest or index (what repo digests name)
	Manifest ocispec.Descriptor // the platform manifest
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	ChainID  digest.Digest // identity.ChainID of the config's diff IDs: the top snapshot's name
	// Size is containerd's: compressed bytes of the top-level manifest or index, the platform
	// manifest (indexes only), the config and the layers (fixtures.Image.Size).
	Size uint64
	Spec ocispec.Image // the image config

	// tags and digests are SplitReferences(References), computed once when the Store takes the
	// image (Put): reference parsing is regexp work that List would otherwise redo per image
	// per call. split says they are set.
	tags, digests []string
	split         bool
}

// RepoTags and RepoDigests of the image, fully qualified. For an image from a Store they are
// computed once (at Put); the caller owns the returned slices.
func (i Image) RepoTags() []string {
	if i.split {
		return slices.Clone(i.tags)
	}
	t, _ := SplitReferences(i.References)
	return t
}

func (i Image) RepoDigests() []string {
	if i.split {
		return slices.Clone(i.digests)
	}
	_, d := SplitReferences(i.References)
	return d
}

// withRefs returns img named by refs (deduplicated, sorted), its tags and digests split.
func withRefs(img Image, refs []string) Image {
	img.References = sortedRefs(refs)
	img.tags, img.digests = SplitReferences(img.References)
	img.split = true
	return img
}

// Store is the index. The zero value is not usable; call New.
type Store struct {
	mu   sync.RWMutex
	byID map[string]Image
	refs map[string]string // record name → ID
	// list is List's answer, built on the first List after a change (nil = stale); it is
	// shared with List's callers, who must not modify it.
	list []Image
}

// New returns an empty index.
func New() *Store {
	return &Store{byID: map[string]Image{}, refs: map[string]string{}}
}

// Put adds img or replaces the image with its ID, in one step: readers see either the old or the
// new state. Each of img.References that belonged to another image moves to img; an image left
// with no names at all is dropped. It returns the IDs of images that lost names.
func (s *Store) Put(img Image) (changed []string) {
	img = withRefs(img, img.References)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = nil
	if old, ok := s.byID[img.ID]; ok {
		for _, r := range old.References {
			if !slices.Contains(img.References, r) {
				delete(s.refs, r)
			}
		}
	}
	for _, r := range img.References {
		owner, ok := s.refs[r]
		if !ok || owner == img.ID {
			continue
		}
		o := s.byID[owner]
		o = withRefs(o, slices.DeleteFunc(slices.Clone(o.References), func(x string) bool { return x == r }))
		if len(o.References) == 0 {
			delete(s.byID, owner)
		} else {
			s.byID[owner] = o
		}
		if !slices.Contains(changed, owner) {
			changed = append(changed, owner)
		}
	}
	for _, r := range img.References {
		s.refs[r] = img.ID
	}
	s.byID[img.ID] = img
	return changed
}

// Delete removes the image with that ID and all its names.
func (s *Store) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.byID[id]
	if !ok {
		return
	}
	s.list = nil
	for _, r := range img.References {
		if s.refs[r] == id {
			delete(s.refs, r)
		}
	}
	delete(s.byID, id)
}

// Get returns the image with exactly that ID.
func (s *Store) Get(id string) (Image, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	img, ok := s.byID[id]
	return img, ok
}

// Owner returns the ID of the image a record name belongs to.
func (s *Store) Owner(ref string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.refs[ref]
	return id, ok
}

// List returns every indexed image, sorted by ID. The slice is built once per change of the
// index and shared: callers must not modify it.
func (s *Store) List() []Image {
	s.mu.RLock()
	list := s.list
	s.mu.RUnlock()
	if list != nil {
		return list
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil {
		ids := slices.Sorted(maps.Keys(s.byID))
		s.list = make([]Image, 0, len(ids))
		for _, id := range ids {
			s.list = append(s.list, s.byID[id])
		}
	}
	return s.list
}

// Resolve finds the image key names. Rules, in order:
//   - "" is InvalidArgument (containerd matches a lone image; we refuse);
//   - a full ID "sha256:<64 hex>" matches that ID only;
//   - anything reference.ParseDockerRef accepts matches a record with exactly that normalized
//     name (tag or digest reference; "name:tag@digest" is looked up by digest);
//   - otherwise a lowercase hex string of MinIDPrefix..64 characters, with or without "sha256:",
//     is an ID prefix: one match resolves, several are InvalidArgument (ambiguous), naming key.
//
// Nothing found is NotFound (errdefs). A name wins over an ID prefix that spells the same thing.
func (s *Store) Resolve(key string) (Image, error) {
	if key == "" {
		return Image{}, fmt.Errorf("empty image name or ID: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if isID(key) {
		if img, ok := s.byID[key]; ok {
			return img, nil
		}
		return Image{}, fmt.Errorf("image %s: %w", echo.Quote(key), errdefs.ErrNotFound)
	}
	if named, err := reference.ParseDockerRef(key); err == nil {
		if id, ok := s.refs[named.String()]; ok {
			return s.byID[id], nil
		}
	}
	if key == "sha256:" {
		return Image{}, fmt.Errorf("empty image ID prefix %s: %w", echo.Quote(key), errdefs.ErrInvalidArgument)
	}
	p, ok := idPrefix(key)
	if !ok {
		return Image{}, fmt.Errorf("image %s: %w", echo.Quote(key), errdefs.ErrNotFound)
	}
	var found []string
	for id := range s.byID {
		if strings.HasPrefix(id, "sha256:"+p) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return Image{}, fmt.Errorf("image %s: %w", echo.Quote(key), errdefs.ErrNotFound)
	case 1:
		return s.byID[found[0]], nil
	default:
		return Image{}, fmt.Errorf("image ID prefix %s is ambiguous (%d images): %w", echo.Quote(key), len(found), errdefs.ErrInvalidArgument)
	}
}

// sortedRefs returns refs without duplicates, sorted with reference.Sort (repo digests, tags,
// then IDs, each alphabetically — stable output for RepoTags/RepoDigests).
func sortedRefs(refs []string) []string {
	out := slices.Clone(refs)
	slices.Sort(out)
	out = slices.Compact(out)
	slices.SortStableFunc(out, func(a, b string) int {
		return rank(a) - rank(b)
	})
	return out
}

func rank(r string) int {
	if isID(r) {
		return 2
	}
	if strings.Contains(r, "@") {
		return 0
	}
	return 1
}
