package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// In-process benchmarks of the reference, for profiling its pull and list paths
// (make bench-profile). The registry runs in the same process, so its serving cost shows in
// the profile too (registry/… frames). The side-by-side numbers come from the driver.

type env struct {
	reg *registry.Registry
	d   *Target
}

func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = reg.Close() })
	dir := b.TempDir()
	certs := filepath.Join(dir, "certs.d")
	if _, err := runtimeconfig.WriteCertsDir(certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		b.Fatal(err)
	}
	sn := "overlayfs"
	if os.Geteuid() != 0 {
		sn = "native"
	}
	srv, err := impl.Start(ctx, "unix://"+filepath.Join(dir, "s.sock"), impl.Config{
		Root: filepath.Join(dir, "root"), HostsDirs: []string{certs}, Snapshotter: sn,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	d, err := DialTarget(ReferenceName, srv.Endpoint(), os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	return &env{reg: reg, d: d}
}

// BenchmarkPull256MiB: cold pull of 256 MiB in 8 incompressible layers.
func BenchmarkPull256MiB(b *testing.B) {
	e := newEnv(b)
	p, err := largeImage(e.reg, 256<<20, 8, "anon/bench/large")
	if err != nil {
		b.Fatal(err)
	}
	benchPull(b, e, p)
}

// BenchmarkPull200Layers: cold pull of 200 small layers.
func BenchmarkPull200Layers(b *testing.B) {
	e := newEnv(b)
	p, err := manyLayersImage(e.reg, 200, "anon/bench/many")
	if err != nil {
		b.Fatal(err)
	}
	benchPull(b, e, p)
}

func benchPull(b *testing.B, e *env, p pushed) {
	ctx := context.Background()
	b.SetBytes(p.Size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.d.Images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: p.Ref}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := removeCold(ctx, e.d, p.Ref); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkConcurrent16: 16 concurrent pulls of one fresh 64 MiB image; reports blob GETs.
func BenchmarkConcurrent16(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	b.ReportAllocs()
	maxPer := 0
	for i := range b.N {
		b.StopTimer()
		p, err := push(e.reg, fixtures.Unique(fmt.Sprintf("bench-go-concurrent %d", i), 4, 16<<20), "anon/bench/c16", fmt.Sprint(i))
		if err != nil {
			b.Fatal(err)
		}
		seq := e.reg.Journal().Last()
		b.StartTimer()
		if _, err := concurrentPull(ctx, e.d, p.Ref, 16); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m, _ := blobGets(e.reg.Journal().Since(seq), p.Repo, p.Blobs)
		maxPer = max(maxPer, m)
		if err := removeCold(ctx, e.d, p.Ref); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(maxPer), "max-GETs/blob")
}

// BenchmarkList: ListImages and StreamImages over 2,000 images (filled once).
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	refs, _, err := listImages(e.reg, 2000, RepoPrefix+"list")
	if err != nil {
		b.Fatal(err)
	}
	if err := each(ctx, refs, 8, func(ctx context.Context, ref string) error {
		_, err := e.d.Images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		return err
	}, nil); err != nil {
		b.Fatal(err)
	}
	b.Run("List", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := listAll(ctx, e.d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stream", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := streamAll(ctx, e.d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPull1GiB: cold pull of 1 GiB in 4 layers (go test -trace, then
// `go tool trace -pprof=syscall` shows where the pull waits on the disk).
func BenchmarkPull1GiB(b *testing.B) {
	e := newEnv(b)
	p, err := largeImage(e.reg, 1<<30, 4, "anon/bench/huge")
	if err != nil {
		b.Fatal(err)
	}
	benchPull(b, e, p)
}
