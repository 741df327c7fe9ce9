package backend

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func writeBlob(t *testing.T, ctx context.Context, b *Backend, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(ctx, b.Content, desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
		t.Fatalf("write blob: %v", err)
	}
	return desc
}

func rawBlobs(t *testing.T, b *Backend) int {
	t.Helper()
	n := 0
	if err := b.RawContent().Walk(context.Background(), func(content.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecordKeepsContentGCReclaimsRest checks the property every caller relies on: content held
// by a lease survives GC; after the lease ends, only what an image record references survives.
func TestRecordKeepsContentGCReclaimsRest(t *testing.T) {
	root := t.TempDir()
	b, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := b.Context(context.Background())
	l, err := b.Leases.Create(ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, l.ID)
	kept := writeBlob(t, lctx, b, []byte("kept"))
	writeBlob(t, lctx, b, []byte("dropped"))
	if err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rawBlobs(t, b); n != 2 {
		t.Fatalf("leased blobs after GC = %d, want 2", n)
	}
	if _, err := b.Images.Create(ctx, images.Image{Name: "example.com/a:1", Target: kept}); err != nil {
		t.Fatal(err)
	}
	if err := b.Leases.Delete(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rawBlobs(t, b); n != 1 {
		t.Fatalf("blobs after lease end + GC = %d, want 1 (the referenced one)", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the record and its blob are still there.
	b, err = Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx = b.Context(context.Background())
	img, err := b.Images.Get(ctx, "example.com/a:1")
	if err != nil {
		t.Fatalf("record after reopen: %v", err)
	}
	if _, err := b.Content.Info(ctx, img.Target.Digest); err != nil {
		t.Fatalf("content after reopen: %v", err)
	}
	if err := b.Images.Delete(ctx, img.Name); err != nil {
		t.Fatal(err)
	}
	if err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rawBlobs(t, b); n != 0 {
		t.Fatalf("blobs after delete + GC = %d, want 0", n)
	}
	if _, err := b.Content.Info(ctx, kept.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("Info after GC: %v, want NotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(context.Background(), root, "zfs"); err == nil || !strings.Contains(err.Error(), `"zfs"`) {
		t.Fatalf("unknown snapshotter: err = %v, want one naming it", err)
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Fatal("empty root: want an error")
	}
	b, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.Snapshotters[Native]; !ok {
		t.Fatal("native snapshotter missing")
	}
	if b2, err := Open(context.Background(), root); err == nil {
		b2.Close()
		t.Fatal("second Open of a root in use: want an error")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want 'in use'", err)
	}
}

func TestOverlayfs(t *testing.T) {
	b, err := Open(context.Background(), t.TempDir(), Overlayfs)
	if err != nil {
		t.Skipf("overlayfs not available here: %v", err)
	}
	defer b.Close()
	if b.Snapshotters[Overlayfs] == nil || b.Snapshotters[Native] == nil {
		t.Fatalf("snapshotters = %v, want native and overlayfs", b.Snapshotters)
	}
}

// TestOpenRemovesOrphanSnapshotDirs: what a kill -9 during unpack leaves in a snapshotter's
// directory — "new-N" (Prepare), "rm-N" (Remove), a numbered dir whose metadata commit never
// came — is removed when the root is opened again; committed snapshots stay usable.
func TestOpenRemovesOrphanSnapshotDirs(t *testing.T) {
	for _, sn := range []string{Native, Overlayfs} {
		t.Run(sn, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			b, err := Open(ctx, root, sn)
			if err != nil {
				if sn == Overlayfs {
					t.Skipf("overlayfs not available here: %v", err)
				}
				t.Fatal(err)
			}
			nctx := b.Context(ctx)
			if _, err := b.Snapshotters[sn].Prepare(nctx, "active", ""); err != nil {
				t.Fatal(err)
			}
			if err := b.Snapshotters[sn].Commit(nctx, "layer", "active"); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(SnapshotterRoot(root, sn), "snapshots")
			kept, err := os.ReadDir(dir)
			if err != nil || len(kept) != 1 {
				t.Fatalf("snapshot dirs before the crash: %v %v", kept, err)
			}
			for _, orphan := range []string{"new-123456", "rm-7", "99"} {
				if err := os.MkdirAll(filepath.Join(dir, orphan, "fs", "usr"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, orphan, "fs", "usr", "half-a-layer"), make([]byte, 4096), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err = Open(ctx, root, sn)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			left, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 || left[0].Name() != kept[0].Name() {
				var names []string
				for _, e := range left {
					names = append(names, e.Name())
				}
				t.Errorf("after reopening: %v, want only %s", names, kept[0].Name())
			}
			if _, err := b.Snapshotters[sn].Stat(b.Context(ctx), "layer"); err != nil {
				t.Errorf("the committed snapshot is gone: %v", err)
			}
		})
	}
}
