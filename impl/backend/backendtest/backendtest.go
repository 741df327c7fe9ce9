// Package backendtest writes images straight into a backend.Backend, the way a pull leaves them
// (content with GC labels, layers unpacked with containerd's applier into a snapshotter, all
// under a lease), and enumerates what is on disk for leak checks. It lets the service's RPCs be
// tested on real containerd storage without a registry. Test code only.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/diff/apply"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/rootfs"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/impl/backend"
)

// Image returns a deterministic random image (docker schema 2) with that many layers of about
// layerSize bytes each, and config User set to user.
func Image(seed int64, layers int, layerSize int64, user string) (v1.Image, error) {
	img, err := random.Image(layerSize, int64(layers), random.WithSource(rand.NewSource(seed)))
	if err != nil {
		return nil, fmt.Errorf("random image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config.User = user
	cf.OS, cf.Architecture = "linux", "amd64"
	return mutate.ConfigFile(img, cf)
}

// Written is what Write put into the backend.
type Written struct {
	Target, Config ocispec.Descriptor
	Layers         []ocispec.Descriptor
	ChainID        digest.Digest
	// Done ends the lease that holds the content and snapshots (like pull.Result.Done).
	Done func(context.Context) error
}

// Stage says how far Write goes, to simulate interrupted pulls.
type Stage int

const (
	Complete   Stage = iota // everything, unpacked
	NoUnpack                // content only, nothing unpacked
	NoLastBlob              // manifest, config and all but the last layer
)

// Write stores img (manifest, config, layers with GC labels) in b's content store and unpacks it
// into the named snapshotter, all under a new lease, stopping early as stage says.
func Write(ctx context.Context, b *backend.Backend, img v1.Image, snapshotter string, stage Stage) (Written, error) {
	ctx = b.Context(ctx)
	l, err := b.Leases.Create(ctx, leases.WithRandomID())
	if err != nil {
		return Written{}, err
	}
	done := func(ctx context.Context) error { return b.Leases.Delete(b.Context(ctx), l) }
	ctx = leases.WithLease(ctx, l.ID)
	w := Written{Done: done}

	rawMf, err := img.RawManifest()
	if err != nil {
		return w, err
	}
	mf, err := img.Manifest()
	if err != nil {
		return w, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return w, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return w, err
	}
	w.Target = ocispec.Descriptor{MediaType: string(mf.MediaType), Digest: digest.FromBytes(rawMf), Size: int64(len(rawMf))}
	w.Config = ocispec.Descriptor{MediaType: string(mf.Config.MediaType), Digest: digest.FromBytes(rawCfg), Size: int64(len(rawCfg))}
	mfLabels := map[string]string{"containerd.io/gc.ref.content.config": w.Config.Digest.String()}
	layers, err := img.Layers()
	if err != nil {
		return w, err
	}
	var rl []rootfs.Layer
	for i, layer := range layers {
		d := mf.Layers[i]
		desc := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
		w.Layers = append(w.Layers, desc)
		mfLabels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = desc.Digest.String()
		rl = append(rl, rootfs.Layer{Blob: desc, Diff: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.Digest(cf.RootFS.DiffIDs[i].String())}})
		if stage == NoLastBlob && i == len(layers)-1 {
			break
		}
		rc, err := layer.Compressed()
		if err != nil {
			return w, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return w, err
		}
		if err := put(ctx, b.Content, desc, data, nil); err != nil {
			return w, err
		}
	}
	if err := put(ctx, b.Content, w.Config, rawCfg, nil); err != nil {
		return w, err
	}
	if err := put(ctx, b.Content, w.Target, rawMf, mfLabels); err != nil {
		return w, err
	}
	if stage != Complete {
		return w, nil
	}
	sn := b.Snapshotters[snapshotter]
	if sn == nil {
		return w, fmt.Errorf("no snapshotter %q", snapshotter)
	}
	chainID, err := rootfs.ApplyLayers(ctx, rl, sn, apply.NewFileSystemApplier(b.Content))
	if err != nil {
		return w, fmt.Errorf("unpack: %w", err)
	}
	w.ChainID = chainID
	// As core/unpack does: the config holds the top snapshot.
	key := "containerd.io/gc.ref.snapshot." + snapshotter
	if _, err := b.Content.Update(ctx, content.Info{Digest: w.Config.Digest, Labels: map[string]string{key: chainID.String()}}, "labels."+key); err != nil {
		return w, err
	}
	return w, nil
}

func put(ctx context.Context, cs content.Store, desc ocispec.Descriptor, data []byte, labels map[string]string) error {
	var opts []content.Opt
	if labels != nil {
		opts = append(opts, content.WithLabels(labels))
	}
	if err := content.WriteBlob(ctx, cs, desc.Digest.String(), bytes.NewReader(data), desc, opts...); err != nil {
		return fmt.Errorf("write %s: %w", desc.Digest, err)
	}
	return nil
}

// OnDisk lists every blob in the raw content store and every snapshot in each raw snapshotter
// (all namespaces, no namespace at all): what really occupies the disk.
func OnDisk(ctx context.Context, b *backend.Backend) (blobs []digest.Digest, snaps []string, err error) {
	err = b.RawContent().Walk(ctx, func(i content.Info) error {
		blobs = append(blobs, i.Digest)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // an empty store has no blobs directory yet
		return nil, nil, err
	}
	for name := range b.Snapshotters {
		sn := b.RawSnapshotter(name)
		if err := sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			snaps = append(snaps, name+"/"+i.Name)
			return nil
		}); err != nil && !errdefs.IsNotFound(err) { // a fresh snapshotter has no bucket yet
			return nil, nil, err
		}
	}
	return blobs, snaps, nil
}
