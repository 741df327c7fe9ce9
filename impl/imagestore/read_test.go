package imagestore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/backend/backendtest"
	"github.com/criimage/criimage/impl/imagestore"
)

func TestReadAndCheck(t *testing.T) {
	ctx := context.Background()
	b, err := backend.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v1img, err := backendtest.Image(1, 2, 512, "1000:1000")
	if err != nil {
		t.Fatal(err)
	}
	w, err := backendtest.Write(ctx, b, v1img, backend.Native, backendtest.Complete)
	if err != nil {
		t.Fatal(err)
	}
	nctx := b.Context(ctx)
	img, err := imagestore.Read(nctx, b.Content, w.Target, ocispec.Descriptor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(w.Target.Size + w.Config.Size + w.Layers[0].Size + w.Layers[1].Size)
	if img.ID != w.Config.Digest.String() || img.ChainID != w.ChainID || img.Size != want || img.Spec.Config.User != "1000:1000" {
		t.Fatalf("Read = id %s chain %s size %d user %q; want %s %s %d", img.ID, img.ChainID, img.Size, img.Spec.Config.User, w.Config.Digest, w.ChainID, want)
	}
	if img.Manifest.Digest != w.Target.Digest {
		t.Fatalf("manifest = %s, want %s", img.Manifest.Digest, w.Target.Digest)
	}
	st := imagestore.Storage{Content: b.Content, Blobs: b.RawContent(), Snapshotters: b.Snapshotters}
	if err := imagestore.Check(nctx, st, img); err != nil {
		t.Fatalf("Check complete image: %v", err)
	}
	// Top snapshot removed behind our back → not usable.
	if err := b.Snapshotters[backend.Native].Remove(nctx, w.ChainID.String()); err != nil {
		t.Fatal(err)
	}
	if err := imagestore.Check(nctx, st, img); !errdefs.IsNotFound(err) {
		t.Fatalf("Check without snapshot = %v, want NotFound", err)
	}

	// Content only, never unpacked → not usable.
	v1img2, _ := backendtest.Image(2, 1, 256, "")
	w2, err := backendtest.Write(ctx, b, v1img2, backend.Native, backendtest.NoUnpack)
	if err != nil {
		t.Fatal(err)
	}
	img2, err := imagestore.Read(nctx, b.Content, w2.Target, ocispec.Descriptor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagestore.Check(nctx, st, img2); err == nil {
		t.Fatal("Check of a never-unpacked image passed")
	}
	// A missing layer → not usable.
	v1img3, _ := backendtest.Image(3, 2, 256, "")
	w3, err := backendtest.Write(ctx, b, v1img3, backend.Native, backendtest.NoLastBlob)
	if err != nil {
		t.Fatal(err)
	}
	img3, err := imagestore.Read(nctx, b.Content, w3.Target, ocispec.Descriptor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagestore.Check(nctx, st, img3); !errdefs.IsNotFound(err) {
		t.Fatalf("Check with a missing layer = %v", err)
	}
}

// TestCheckerScanBlobs: with the blob directory scanned, a blob file deleted on disk (behind
// the metadata's back) before the scan makes its image unusable, as the stat did, and no other.
func TestCheckerScanBlobs(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b, err := backend.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nctx := b.Context(ctx)
	var imgs []imagestore.Image
	for seed := int64(1); seed <= 2; seed++ {
		v1img, err := backendtest.Image(seed, 1, 512, "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := backendtest.Write(ctx, b, v1img, backend.Native, backendtest.Complete)
		if err != nil {
			t.Fatal(err)
		}
		img, err := imagestore.Read(nctx, b.Content, w.Target, ocispec.Descriptor{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	st := imagestore.Storage{Content: b.Content, Blobs: b.RawContent(), Snapshotters: b.Snapshotters}
	check := func() []error {
		c := imagestore.NewChecker(st)
		if err := c.ScanBlobs(backend.BlobDir(root, "sha256")); err != nil {
			t.Fatal(err)
		}
		var errs []error
		for _, img := range imgs {
			errs = append(errs, c.Check(nctx, img))
		}
		return errs
	}
	if errs := check(); errs[0] != nil || errs[1] != nil {
		t.Fatalf("Check of complete images: %v", errs)
	}
	if err := os.Remove(filepath.Join(backend.BlobDir(root, "sha256"), imgs[1].Layers[0].Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	if errs := check(); errs[0] != nil || !errdefs.IsNotFound(errs[1]) {
		t.Fatalf("Check after the layer file of the second image was deleted: %v", errs)
	}
	if err := os.Remove(filepath.Join(backend.BlobDir(root, "sha256"), imgs[0].Config.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	if errs := check(); !errdefs.IsNotFound(errs[0]) {
		t.Fatalf("Check after the config file of the first image was deleted: %v", errs)
	}
}
