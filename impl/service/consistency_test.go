package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/backend/backendtest"
)

// TestRestartRebuildsAndReclaims: images survive a restart; leases a crashed process left behind
// are reclaimed; records of images whose content or snapshot is incomplete are never listed.
func TestRestartRebuildsAndReclaims(t *testing.T) {
	root := t.TempDir()
	good := testImage(t, 1, "7")
	e := newEnv(t, envOpts{root: root, images: map[string]v1.Image{"good": good, "quay.io/good/again:2": good}})
	id := e.pull(t, "good")
	e.pull(t, "quay.io/good/again:2")
	ctx := context.Background()

	// A pull interrupted mid-way: content (and a snapshot) under a lease nobody will end.
	if _, err := backendtest.Write(ctx, e.b, testImage(t, 2, ""), backend.Native, backendtest.Complete); err != nil {
		t.Fatal(err)
	}
	// A partial download of that interrupted pull.
	lctx, err := leaseCtx(e)
	if err != nil {
		t.Fatal(err)
	}
	cw, err := content.OpenWriter(lctx, e.b.Content, content.WithRef("partial-layer"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("half a layer")); err != nil {
		t.Fatal(err)
	}
	cw.Close()
	if st, _ := e.b.RawContent().ListStatuses(ctx); len(st) != 1 {
		t.Fatalf("partial download not on disk: %v", st)
	}
	// Records pointing at images that are not whole: never unpacked; a layer missing.
	for i, stage := range []backendtest.Stage{backendtest.NoUnpack, backendtest.NoLastBlob} {
		w, err := backendtest.Write(ctx, e.b, testImage(t, int64(3+i), ""), backend.Native, stage)
		if err != nil {
			t.Fatal(err)
		}
		name := "docker.io/library/broken:" + string(rune('a'+i))
		if _, err := e.b.Images.Create(e.b.Context(ctx), images.Image{Name: name, Target: w.Target}); err != nil {
			t.Fatal(err)
		}
		if err := w.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.stop()

	e = newEnv(t, envOpts{root: root})
	if got := e.list(t); len(got) != 1 || got[0].Id != id || len(got[0].RepoTags) != 2 || got[0].Uid.GetValue() != 7 {
		t.Fatalf("after restart List = %v", got)
	}
	for _, key := range []string{"broken:a", "broken:b"} {
		if got := e.status(t, key); got != nil {
			t.Fatalf("incomplete image %s reported: %v", key, got)
		}
	}
	// Removing the broken ones by name works, then nothing but the good image is on disk.
	e.remove(t, "broken:a")
	e.remove(t, "broken:b")
	e.noLeaks(t)
	if st := e.status(t, "quay.io/good/again:2"); st == nil || st.Id != id {
		t.Fatalf("status after restart = %v", st)
	}
}

// leaseCtx returns a namespaced context holding a new lease nobody will end (a crashed pull).
func leaseCtx(e *env) (context.Context, error) {
	ctx := e.b.Context(context.Background())
	l, err := e.b.Leases.Create(ctx, leases.WithRandomID())
	if err != nil {
		return nil, err
	}
	return leases.WithLease(ctx, l.ID), nil
}

// TestOutOfBandDeletion: content or snapshots deleted behind the service's back stop the image
// being reported (so kubelet pulls again), and a pull brings it back.
func TestOutOfBandDeletion(t *testing.T) {
	imgs := map[string]v1.Image{"a": testImage(t, 1, ""), "b": testImage(t, 2, ""), "c": testImage(t, 3, "")}
	e := newEnv(t, envOpts{images: imgs})
	ctx := e.b.Context(context.Background())
	for r := range imgs {
		e.pull(t, r)
	}
	a, _ := e.svc.Index().Resolve("a")
	b, _ := e.svc.Index().Resolve("b")
	c, _ := e.svc.Index().Resolve("c")
	// a: top snapshot removed through the metadata; b: a layer removed through the metadata;
	// c: config blob file deleted from disk under everything.
	if err := e.b.Snapshotters[backend.Native].Remove(ctx, a.ChainID.String()); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Content.Delete(ctx, b.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(backend.ContentRoot(e.root), "blobs", "sha256", c.Config.Digest.Encoded())
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	if got := e.list(t); len(got) != 0 {
		t.Fatalf("List after out-of-band deletion = %v", got)
	}
	for r := range imgs {
		if got := e.status(t, r); got != nil {
			t.Fatalf("Status(%s) after out-of-band deletion = %v", r, got)
		}
	}
	e.pull(t, "a")
	if got := e.status(t, "a"); got == nil {
		t.Fatal("re-pulled image not reported")
	}
}

// TestOutOfBandDeletionMany: the same with more images than List stats blob by blob (it lists
// the blob directory once instead) and with List's metadata answers kept between calls: a
// deleted blob file, blob record or top snapshot still hides its image, and only it.
func TestOutOfBandDeletionMany(t *testing.T) {
	const n = 36
	imgs := map[string]v1.Image{}
	for i := range n {
		imgs[fmt.Sprintf("many:%d", i)] = testImage(t, int64(100+i), "")
	}
	e := newEnv(t, envOpts{images: imgs})
	refs := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range refs {
				e.pull(t, r)
			}
		}()
	}
	for r := range imgs {
		refs <- r
	}
	close(refs)
	wg.Wait()
	if got := e.list(t); len(got) != n {
		t.Fatalf("List = %d images, want %d", len(got), n)
	}
	a, _ := e.svc.Index().Resolve("many:7")
	if err := os.Remove(filepath.Join(backend.BlobDir(e.root, "sha256"), a.Layers[1].Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	got := e.list(t)
	if len(got) != n-1 {
		t.Fatalf("List after a layer file was deleted = %d images, want %d", len(got), n-1)
	}
	for _, img := range got {
		if img.Id == a.ID {
			t.Fatalf("image %s with a deleted layer file listed", a.ID)
		}
	}
	// The metadata answers of the lists above are reused only until the next metadata commit:
	// a layer record deleted, then a top snapshot removed, each hides its image at once.
	ctx := e.b.Context(context.Background())
	b, _ := e.svc.Index().Resolve("many:8")
	if err := e.b.Content.Delete(ctx, b.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
	if got := e.list(t); len(got) != n-2 {
		t.Fatalf("List after a layer record was deleted = %d images, want %d", len(got), n-2)
	}
	c, _ := e.svc.Index().Resolve("many:9")
	if err := e.b.Snapshotters[backend.Native].Remove(ctx, c.ChainID.String()); err != nil {
		t.Fatal(err)
	}
	if got := e.list(t); len(got) != n-3 {
		t.Fatalf("List after a top snapshot was removed = %d images, want %d", len(got), n-3)
	}
}
