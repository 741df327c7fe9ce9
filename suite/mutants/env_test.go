package mutants_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/internal/embedded"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/mutants"
)

// env is the real reference ImageService on a unix socket, pulling over HTTP from a fixture
// registry; proxies under test forward to it.
type env struct {
	reg *registry.Registry
	ref harness.Target
	n   int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	dir, err := os.MkdirTemp("", "criimage-mt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	hosts := filepath.Join(dir, "hosts")
	if _, _, err := harness.WriteHostsConfig(hosts, reg, harness.HostsOptions{Mirror: true}); err != nil {
		t.Fatal(err)
	}
	// The embedded reference as the suite's entry points configure it.
	srv, err := (&embedded.Reference{}).Start(ctx, hosts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{reg: reg, ref: srv}
}

// client starts a proxy for mutant and returns a client of it.
func (e *env) client(t *testing.T, mutant string) runtime.ImageServiceClient {
	t.Helper()
	p, err := mutants.Start(context.Background(), e.ref.Endpoint(), mutant)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		if err := p.Close(); err != nil {
			t.Errorf("close proxy %s: %v", mutant, err)
		}
	})
	return runtime.NewImageServiceClient(conn)
}

// unique pushes fresh content to a new repository in namespace ns under tag.
func (e *env) unique(t *testing.T, ns, tag string) (fixtures.Image, string, string) {
	t.Helper()
	e.n++
	img := fixtures.Unique(fmt.Sprintf("%s/%d", t.Name(), e.n), 1, 256)
	repo := fmt.Sprintf("%s/mt-%d-%d", ns, time.Now().UnixNano(), e.n)
	if err := img.Push(e.reg, repo, tag); err != nil {
		t.Fatal(err)
	}
	return img, repo, e.reg.PlainHost() + "/" + repo + ":" + tag
}

func pull(ctx context.Context, c runtime.ImageServiceClient, ref string, auth *runtime.AuthConfig) (string, error) {
	resp, err := c.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: auth})
	return resp.GetImageRef(), err
}

func mustPull(t *testing.T, c runtime.ImageServiceClient, ref string) string {
	t.Helper()
	id, err := pull(context.Background(), c, ref, nil)
	if err != nil {
		t.Fatalf("PullImage(%s): %v", ref, err)
	}
	return id
}

func statusOf(ctx context.Context, c runtime.ImageServiceClient, ref string, verbose bool) (*runtime.ImageStatusResponse, error) {
	return c.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}, Verbose: verbose})
}

func mustStatus(t *testing.T, c runtime.ImageServiceClient, ref string) *runtime.Image {
	t.Helper()
	resp, err := statusOf(context.Background(), c, ref, false)
	if err != nil {
		t.Fatalf("ImageStatus(%q): %v", ref, err)
	}
	return resp.GetImage()
}

func list(t *testing.T, c runtime.ImageServiceClient) []*runtime.Image {
	t.Helper()
	resp, err := c.ListImages(context.Background(), &runtime.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetImages()
}

func remove(ctx context.Context, c runtime.ImageServiceClient, ref string) error {
	_, err := c.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	return err
}

// streamed collects every StreamImages message until EOF or an error.
func streamed(ctx context.Context, c runtime.ImageServiceClient) ([][]*runtime.Image, error) {
	st, err := c.StreamImages(ctx, &runtime.StreamImagesRequest{})
	if err != nil {
		return nil, err
	}
	return criendpoint.Drain(st)
}

func fsUsed(t *testing.T, c runtime.ImageServiceClient) *runtime.FilesystemUsage {
	t.Helper()
	resp, err := c.ImageFsInfo(context.Background(), &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetImageFilesystems()) == 0 {
		t.Fatal("no image filesystem")
	}
	return resp.GetImageFilesystems()[0]
}

func findRef(imgs []*runtime.Image, ref string) *runtime.Image {
	return harness.Find(imgs, ref)
}
