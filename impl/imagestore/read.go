package imagestore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LabelManifest is the record label naming the platform manifest a pull chose, so that the index
// rebuilt at start picks the same one from a multi-platform index.
const LabelManifest = "io.criimage/manifest"

// snapshotRefPrefix is the GC label core/unpack puts on an image config: one per snapshotter the
// image was unpacked into, valued with the chain ID of its top snapshot.
const snapshotRefPrefix = "containerd.io/gc.ref.snapshot."

// Read builds an Image (without References) from the content store: target is the top-level
// descriptor; manifest, when its digest is set, is the platform manifest to use, otherwise the
// manifest matching platform is chosen with images.Manifest (nil platform = the host's).
func Read(ctx context.Context, cs content.Provider, target, manifest ocispec.Descriptor, platform platforms.MatchComparer) (Image, error) {
	var m ocispec.Manifest
	if manifest.Digest == "" {
		if platform == nil {
			platform = platforms.Default()
		}
		mf, err := images.Manifest(ctx, cs, target, platform)
		if err != nil {
			return Image{}, fmt.Errorf("read manifest of %s: %w", target.Digest, err)
		}
		m = mf
		if images.IsManifestType(target.MediaType) {
			manifest = target
		} else {
			manifest, err = findManifest(ctx, cs, target, platform)
			if err != nil {
				return Image{}, err
			}
		}
	} else {
		b, err := content.ReadBlob(ctx, cs, manifest)
		if err != nil {
			return Image{}, fmt.Errorf("read manifest %s: %w", manifest.Digest, err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return Image{}, fmt.Errorf("parse manifest %s: %w", manifest.Digest, err)
		}
		if manifest.MediaType == "" {
			manifest.MediaType = m.MediaType
		}
		manifest.Size = int64(len(b))
	}
	b, err := content.ReadBlob(ctx, cs, m.Config)
	if err != nil {
		return Image{}, fmt.Errorf("read config %s of manifest %s: %w", m.Config.Digest, manifest.Digest, err)
	}
	var spec ocispec.Image
	if err := json.Unmarshal(b, &spec); err != nil {
		return Image{}, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	// containerd's Image.size: top-level manifest or index, the chosen manifest (indexes only),
	// config and layers (usage.CalculateImageUsage with WithManifestLimit(platform, 1)).
	size := uint64(target.Size) + uint64(m.Config.Size)
	if manifest.Digest != target.Digest {
		size += uint64(manifest.Size)
	}
	for _, l := range m.Layers {
		size += uint64(l.Size)
	}
	return Image{
		ID:       m.Config.Digest.String(),
		Target:   target,
		Manifest: manifest,
		Config:   m.Config,
		Layers:   m.Layers,
		ChainID:  identity.ChainID(spec.RootFS.DiffIDs),
		Size:     size,
		Spec:     spec,
	}, nil
}

// findManifest returns the descriptor of the manifest images.Manifest would choose in an index.
func findManifest(ctx context.Context, cs content.Provider, target ocispec.Descriptor, platform platforms.MatchComparer) (ocispec.Descriptor, error) {
	var found *ocispec.Descriptor
	err := images.Walk(ctx, images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if found != nil {
			return nil, nil
		}
		if images.IsManifestType(desc.MediaType) {
			if desc.Platform == nil || platform.Match(*desc.Platform) {
				d := desc
				found = &d
			}
			return nil, nil
		}
		children, err := images.Children(ctx, cs, desc)
		if err != nil {
			return nil, err
		}
		var keep []ocispec.Descriptor
		for _, c := range children {
			if c.Platform == nil || platform.Match(*c.Platform) {
				keep = append(keep, c)
			}
		}
		// Best match first, as images.Manifest does.
		sortByPlatform(keep, platform)
		return keep, nil
	}), target)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("walk %s: %w", target.Digest, err)
	}
	if found == nil {
		return ocispec.Descriptor{}, fmt.Errorf("no manifest for this platform in %s: %w", target.Digest, errdefs.ErrNotFound)
	}
	return *found, nil
}

func sortByPlatform(ds []ocispec.Descriptor, p platforms.MatchComparer) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0; j-- {
			a, b := ds[j-1].Platform, ds[j].Platform
			if a == nil || b == nil || !p.Less(*b, *a) {
				break
			}
			ds[j-1], ds[j] = ds[j], ds[j-1]
		}
	}
}

// Storage is what Check looks at. Content is the metadata-wrapped (namespaced) store; Blobs, when
// set, is the raw store underneath, so that a blob file deleted behind the metadata's back is
// noticed too. Snapshotters are the metadata-wrapped ones, by name.
type Storage struct {
	Content      content.Store
	Blobs        content.Store
	Snapshotters map[string]snapshots.Snapshotter
}

// Check reports whether img is still usable: its manifest, config and layers exist (namespace
// record and, if st.Blobs is set, the blob itself), and its top snapshot (ChainID) exists in at
// least one snapshotter the config's GC labels name. Cost: one metadata read and one stat per
// blob, one snapshot Stat — no blob is read. To check many images, use a Checker.
func Check(ctx context.Context, st Storage, img Image) error {
	return NewChecker(st).Check(ctx, img)
}

// Checker is Check for many images in one pass (List): each blob and each snapshot is looked up
// once per Checker, however many images share it, so a Checker must not outlive the call it
// serves — it remembers what it found, and that is only as fresh as its creation. Give it a
// context carrying one metadata read transaction (boltutil.WithTransaction) so that the
// lookups share it instead of opening one each; nothing it calls opens another transaction on
// the metadata DB. Not safe for concurrent use.
//
// Its lookups come in two kinds: those answered by the metadata DB (a blob's record and
// labels, a snapshot's Stat through the metadata snapshotter) live in a Lookups, which a caller
// may share between Checkers of the same metadata state (UseLookups); the on-disk checks (blob
// files) are the Checker's own, made afresh by every Checker.
type Checker struct {
	st   Storage
	meta *Lookups
	disk map[digest.Digest]error
	// onDisk, after ScanBlobs, holds the encoded digests of the sha256 blob files on disk:
	// it replaces the stat of each blob file through st.Blobs.
	onDisk map[string]struct{}
}

// Lookups are the metadata answers of Checkers: each blob's record (labels or NotFound) and
// each top snapshot's Stat. They stay true as long as the metadata DB does not change — no
// write transaction committed — because nothing else changes what they report: the metadata DB
// and the snapshotters' own DBs are locked by this process (bbolt's flock), and a snapshotter
// removes a snapshot only after a metadata commit dropped it (GC) — only an in-process caller
// of a raw, unwrapped snapshotter could break that, and criimage has none. Safe for concurrent
// use.
type Lookups struct {
	mu    sync.Mutex
	blobs map[digest.Digest]blobState
	snaps map[[2]string]error // {snapshotter, chain ID} → Stat's error
}

// NewLookups returns empty Lookups.
func NewLookups() *Lookups {
	return &Lookups{blobs: map[digest.Digest]blobState{}, snaps: map[[2]string]error{}}
}

// UseLookups makes the Checker take its metadata answers from l (and add to it). Only share
// Lookups between Checkers whose contexts read the same state of the metadata DB (the same
// committed transaction ID).
func (c *Checker) UseLookups(l *Lookups) { c.meta = l }

// ScanBlobs reads, once, the names in dir — the local content store's directory of sha256 blob
// files (backend.BlobDir) — so that the Checker's on-disk check of a sha256 blob is a lookup in
// that listing rather than one stat each: one directory read (a few getdents calls) instead of
// a stat per blob when many images are checked. A blob file deleted after the scan counts as
// present for the rest of the Checker's life, as one deleted after its stat would.
func (c *Checker) ScanBlobs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("list blob files: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list blob files in %s: %w", dir, err)
	}
	c.onDisk = make(map[string]struct{}, len(names))
	for _, n := range names {
		c.onDisk[n] = struct{}{}
	}
	return nil
}

type blobState struct {
	labels map[string]string // read-only once stored
	err    error
}

// NewChecker returns a Checker with nothing looked up yet.
func NewChecker(st Storage) *Checker {
	return &Checker{st: st, meta: NewLookups(), disk: map[digest.Digest]error{}}
}

// blob returns the labels of blob d, or why it is not usable: no record, or no file on disk.
func (c *Checker) blob(ctx context.Context, d digest.Digest) (map[string]string, error) {
	c.meta.mu.Lock()
	b, ok := c.meta.blobs[d]
	c.meta.mu.Unlock()
	if !ok {
		info, err := c.st.Content.Info(ctx, d)
		if err != nil {
			b.err = fmt.Errorf("blob %s: %w", d, err)
		}
		b.labels = info.Labels
		if lasting(err) {
			c.meta.mu.Lock()
			c.meta.blobs[d] = b
			c.meta.mu.Unlock()
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	if c.onDisk != nil && d.Algorithm() == digest.SHA256 {
		// The listing is the memo: one lookup, nothing to remember per blob.
		if _, found := c.onDisk[d.Encoded()]; !found {
			return nil, fmt.Errorf("blob %s on disk: %w", d, errdefs.ErrNotFound)
		}
		return b.labels, nil
	}
	err, ok := c.disk[d]
	if !ok {
		if c.st.Blobs != nil {
			if _, serr := c.st.Blobs.Info(ctx, d); serr != nil {
				err = fmt.Errorf("blob %s on disk: %w", d, serr)
			}
		}
		c.disk[d] = err
	}
	return b.labels, err
}

func (c *Checker) snapshot(ctx context.Context, sn snapshots.Snapshotter, name, key string) error {
	k := [2]string{name, key}
	c.meta.mu.Lock()
	err, ok := c.meta.snaps[k]
	c.meta.mu.Unlock()
	if ok {
		return err
	}
	_, err = sn.Stat(ctx, key)
	if lasting(err) {
		c.meta.mu.Lock()
		c.meta.snaps[k] = err
		c.meta.mu.Unlock()
	}
	return err
}

// lasting reports whether a metadata answer holds for as long as the metadata does: found, or
// not found. Anything else (a cancelled context, an I/O error) is not kept in the Lookups.
func lasting(err error) bool { return err == nil || errdefs.IsNotFound(err) }

// Check is the package-level Check, with lookups shared across the Checker's images.
func (c *Checker) Check(ctx context.Context, img Image) error {
	var cfgLabels map[string]string
	for i := -2; i < len(img.Layers); i++ {
		var d ocispec.Descriptor
		switch i {
		case -2:
			d = img.Manifest
		case -1:
			d = img.Config
		default:
			d = img.Layers[i]
		}
		labels, err := c.blob(ctx, d.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.ID, err)
		}
		if d.Digest == img.Config.Digest {
			cfgLabels = labels
		}
	}
	var tried []string
	for k, v := range cfgLabels {
		name, ok := strings.CutPrefix(k, snapshotRefPrefix)
		if !ok || v != img.ChainID.String() {
			continue
		}
		sn := c.st.Snapshotters[name]
		if sn == nil {
			continue
		}
		if err := c.snapshot(ctx, sn, name, v); err == nil {
			return nil
		}
		tried = append(tried, name)
	}
	if len(tried) == 0 {
		return fmt.Errorf("image %s is not unpacked in any snapshotter: %w", img.ID, errdefs.ErrNotFound)
	}
	slices.Sort(tried)
	return fmt.Errorf("image %s: snapshot %s missing in %s: %w", img.ID, img.ChainID, strings.Join(tried, ", "), errdefs.ErrNotFound)
}
