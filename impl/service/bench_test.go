package service_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/continuity/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend/backendtest"
	"github.com/criimage/criimage/internal/criendpoint"
)

// listImages is the store size of BenchmarkList: the list-10k case of docs/bench.md.
const listImages = 10000

// BenchmarkList: ListImages and StreamImages over real gRPC (unix socket, in process) with
// 10,000 images in the store — tiny images sharing one layer, each with its own config, as
// bench/'s list-10k case. The root is on /dev/shm when there is one: the fill is fsync-bound
// on disk (about 8 bolt commits per image); the listing itself does not write.
func BenchmarkList(b *testing.B) {
	root := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "criimage-bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		root = dir
	}
	base, err := backendtest.Image(1, 1, 512, "")
	if err != nil {
		b.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		b.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	for i := range listImages {
		c := cf.DeepCopy()
		c.Config.Env = []string{fmt.Sprintf("N=%d", i)}
		img, err := mutate.ConfigFile(base, c)
		if err != nil {
			b.Fatal(err)
		}
		imgs[fmt.Sprintf("bench/list:%d", i)] = img
	}
	e := newEnv(b, envOpts{root: root, images: imgs})
	refs := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range refs {
				e.pull(b, r)
			}
		}()
	}
	for r := range imgs {
		refs <- r
	}
	close(refs)
	wg.Wait()
	if n := len(e.list(b)); n != listImages {
		b.Fatalf("listed %d images, want %d", n, listImages)
	}
	ctx := context.Background()
	b.Run("List", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			resp, err := e.is.ListImages(ctx, &runtime.ListImagesRequest{})
			if err != nil || len(resp.Images) != listImages {
				b.Fatalf("ListImages: %d images, %v", len(resp.GetImages()), err)
			}
		}
	})
	b.Run("Stream", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			st, err := e.is.StreamImages(ctx, &runtime.StreamImagesRequest{})
			if err != nil {
				b.Fatal(err)
			}
			batches, err := criendpoint.Drain(st)
			if n := len(criendpoint.Flatten(batches)); err != nil || n != listImages {
				b.Fatalf("StreamImages: %d images", n)
			}
		}
	})
	// ImageFsInfo over the same 10,000 images: with nothing committed since the last call (the
	// poll of kubelet's eviction manager between pulls), after a metadata commit (a pull or
	// removal happened: the content and committed-snapshot sums are recomputed), and the walk of
	// the whole root the service did before (for comparison).
	b.Run("ImageFsInfo", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := e.is.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ImageFsInfoAfterCommit", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			b.StopTimer()
			l, err := e.b.Leases.Create(e.b.Context(ctx), leases.WithID(fmt.Sprintf("bench-%d", i)))
			if err != nil {
				b.Fatal(err)
			}
			if err := e.b.Leases.Delete(e.b.Context(ctx), l); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := e.is.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RootWalk", func(b *testing.B) {
		for range b.N {
			if _, err := fs.DiskUsage(ctx, e.root); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConcurrentSamePull: 1 and 64 concurrent PullImage calls of one image through one
// shared pull (as impl/pull merges them), the image removed before each round, the root on the
// test's temporary directory (real fsyncs): what the service adds per caller of a shared pull.
func BenchmarkConcurrentSamePull(b *testing.B) {
	_, wrap := newShared(nil, 0)
	e := newEnv(b, envOpts{images: map[string]v1.Image{"a": testImage(b, 1, "")}, wrap: wrap})
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprint(callers), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				e.remove(b, "a")
				b.StartTimer()
				var wg sync.WaitGroup
				for range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						e.pull(b, "a")
					}()
				}
				wg.Wait()
			}
		})
	}
}
