package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestImageFsInfoDuringChurn: ImageFsInfo answers every call while pulls and removals create and
// delete blobs, ingests and snapshot directories (a walk of the root failed 6 % of such calls
// with "lstat …: no such file or directory"), and the figures return to the baseline after.
func TestImageFsInfoDuringChurn(t *testing.T) {
	images := map[string]v1.Image{}
	for i := range 6 {
		images[fmt.Sprintf("churn/img:%d", i)] = testImage(t, int64(100+i), "")
	}
	e := newEnv(t, envOpts{images: images})
	ctx := context.Background()
	baseBytes, baseInodes := e.fsUsed(t)

	stop := make(chan struct{})
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	var pollers sync.WaitGroup
	for range 2 {
		pollers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if _, err := e.is.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{}); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	var churn sync.WaitGroup
	for ref := range images {
		churn.Go(func() {
			for range 8 {
				if _, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
					t.Errorf("PullImage %s: %v", ref, err)
					return
				}
				if _, err := e.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
					t.Errorf("RemoveImage %s: %v", ref, err)
					return
				}
			}
		})
	}
	churn.Wait()
	close(stop)
	pollers.Wait()
	t.Logf("%d ImageFsInfo calls during 48 pulls and 48 removals, %d failed", calls.Load(), failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d ImageFsInfo calls failed while pulls and removals ran; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	bytes, inodes := e.fsUsed(t)
	if bytes > baseBytes+256<<10 || inodes > baseInodes+8 {
		t.Errorf("after the churn: %d bytes, %d inodes; baseline %d, %d", bytes, inodes, baseBytes, baseInodes)
	}
}

// TestImageFsInfoCountsWhatIsStored: the usage grows by at least an image's blobs and unpacked
// layers when it is pulled, and the figures of a store with nothing new committed do not move.
func TestImageFsInfoCountsWhatIsStored(t *testing.T) {
	img := testImage(t, 7, "")
	e := newEnv(t, envOpts{images: map[string]v1.Image{"count/img": img}})
	b0, i0 := e.fsUsed(t)
	e.pull(t, "count/img")
	b1, i1 := e.fsUsed(t)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var blobs int64
	for _, l := range m.Layers {
		blobs += l.Size
	}
	blobs += m.Config.Size
	// Compressed blobs plus their unpacked files: more than the blobs alone.
	if int64(b1-b0) <= blobs || i1-i0 < uint64(len(m.Layers)+2) {
		t.Errorf("after the pull: +%d bytes, +%d inodes; want more than the %d bytes of blobs and at least %d inodes", b1-b0, i1-i0, blobs, len(m.Layers)+2)
	}
	if b2, i2 := e.fsUsed(t); b2 != b1 || i2 != i1 {
		t.Errorf("nothing changed, yet the usage moved: %d/%d → %d/%d", b1, i1, b2, i2)
	}
	e.remove(t, "count/img")
	if b3, _ := e.fsUsed(t); b3 > b0+64<<10 {
		t.Errorf("after RemoveImage: %d bytes, baseline %d", b3, b0)
	}
}
