package service_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/backend/backendtest"
	"github.com/criimage/criimage/impl/pull"
	"github.com/criimage/criimage/impl/service"
)

// localImages is a puller over images held in memory: it writes them into the backend the way
// a registry pull does (backendtest.Write: content, GC labels, unpack, under a lease). Gates let
// a test hold a pull after its content is in and before the service records it.
type localImages struct {
	b      *backend.Backend
	mu     sync.Mutex
	images map[string]v1.Image // normalized ref → image
	gates  map[string]*gate
	pulls  int
}

type gate struct{ held, release chan struct{} }

func (l *localImages) add(ref string, img v1.Image) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.images[n.String()] = img
}

// arm holds the next pull of ref after its content is written.
func (l *localImages) arm(ref string) *gate {
	n, _ := reference.ParseDockerRef(ref)
	g := &gate{held: make(chan struct{}), release: make(chan struct{})}
	l.mu.Lock()
	l.gates[n.String()] = g
	l.mu.Unlock()
	return g
}

func (l *localImages) Pull(ctx context.Context, req pull.Request) (pull.Result, error) {
	ref, sn := req.Ref, req.Snapshotter
	l.mu.Lock()
	img, ok := l.images[ref.String()]
	if !ok && len(l.images) > 0 {
		if c, isC := ref.(reference.Canonical); isC {
			for k, v := range l.images {
				if d, _ := v.Digest(); d.String() == c.Digest().String() {
					img, ok = l.images[k], true
				}
			}
		}
	}
	g := l.gates[ref.String()]
	delete(l.gates, ref.String())
	l.pulls++
	l.mu.Unlock()
	if !ok {
		return pull.Result{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: not found", ref))
	}
	w, err := backendtest.Write(ctx, l.b, img, sn, backendtest.Complete)
	if err != nil {
		if w.Done != nil {
			_ = w.Done(context.Background())
		}
		return pull.Result{}, err
	}
	if g != nil {
		close(g.held)
		select {
		case <-g.release:
		case <-ctx.Done():
			_ = w.Done(context.Background())
			return pull.Result{}, ctx.Err()
		}
	}
	return pull.Result{Target: w.Target, Manifest: w.Target, Config: w.Config, Done: w.Done}, nil
}

type env struct {
	root  string
	b     *backend.Backend
	svc   *service.Service
	local *localImages
	is    runtime.ImageServiceClient
	rs    runtime.RuntimeServiceClient
	stop  func()
}

type envOpts struct {
	snapshotters []string
	cfg          service.Config
	root         string
	images       map[string]v1.Image
	// wrap, if set, wraps the local puller (a shared flight, a counter).
	wrap func(service.Puller) service.Puller
}

// newEnv serves a Service over real gRPC on a unix socket and returns clients to it.
func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	root := o.root
	if root == "" {
		root = t.TempDir()
	}
	b, err := backend.Open(ctx, root, o.snapshotters...)
	if err != nil {
		t.Fatal(err)
	}
	local := &localImages{b: b, images: map[string]v1.Image{}, gates: map[string]*gate{}}
	for r, img := range o.images {
		local.add(r, img)
	}
	cfg := o.cfg
	cfg.Backend, cfg.Puller = b, local
	if o.wrap != nil {
		cfg.Puller = o.wrap(local)
	}
	svc, err := service.New(ctx, cfg)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	// Short socket path: sun_path is 108 bytes.
	dir, err := os.MkdirTemp("", "cis")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtime.RegisterImageServiceServer(srv, svc)
	runtime.RegisterRuntimeServiceServer(srv, svc.Runtime())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{root: root, b: b, svc: svc, local: local, is: runtime.NewImageServiceClient(conn), rs: runtime.NewRuntimeServiceClient(conn)}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			conn.Close()
			srv.Stop()
			if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("serve: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("close backend: %v", err)
			}
			os.RemoveAll(dir)
		})
	}
	t.Cleanup(e.stop)
	return e
}

func testImage(t testing.TB, seed int64, user string) v1.Image {
	t.Helper()
	img, err := backendtest.Image(seed, 2, 2048, user)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configID(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func manifestDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func (e *env) pull(t testing.TB, ref string) string {
	t.Helper()
	resp, err := e.is.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("PullImage(%q): %v", ref, err)
	}
	return resp.ImageRef
}

func (e *env) status(t *testing.T, key string) *runtime.Image {
	t.Helper()
	resp, err := e.is.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: key}})
	if err != nil {
		t.Fatalf("ImageStatus(%q): %v", key, err)
	}
	return resp.Image
}

func (e *env) list(t testing.TB) []*runtime.Image {
	t.Helper()
	resp, err := e.is.ListImages(context.Background(), &runtime.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	return resp.Images
}

func (e *env) remove(t testing.TB, key string) {
	t.Helper()
	if _, err := e.is.RemoveImage(context.Background(), &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: key}}); err != nil {
		t.Fatalf("RemoveImage(%q): %v", key, err)
	}
}

func (e *env) fsUsed(t *testing.T) (bytes, inodes uint64) {
	t.Helper()
	resp, err := e.is.ImageFsInfo(context.Background(), &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	if len(resp.ImageFilesystems) == 0 {
		t.Fatal("ImageFsInfo: no image filesystem")
	}
	u := resp.ImageFilesystems[0]
	if u.Timestamp <= 0 || u.FsId.GetMountpoint() == "" || u.UsedBytes == nil || u.InodesUsed == nil {
		t.Fatalf("ImageFsInfo: incomplete %v", u)
	}
	return u.UsedBytes.Value, u.InodesUsed.Value
}

// noLeaks checks that nothing but what the listed images hold is on disk, after a GC, and that
// no lease and no record outside the index is left.
func (e *env) noLeaks(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, snaps, err := backendtest.OnDisk(ctx, e.b)
	if err != nil {
		t.Fatal(err)
	}
	var wantBlobs, wantSnaps int
	for _, img := range e.svc.Index().List() {
		wantBlobs += 2 + len(img.Layers)
		wantSnaps += len(img.Layers)
	}
	if len(blobs) != wantBlobs || len(snaps) != wantSnaps {
		t.Errorf("on disk: %d blobs %v, %d snapshots %v; want %d and %d", len(blobs), blobs, len(snaps), snaps, wantBlobs, wantSnaps)
	}
	ingests, err := e.b.RawContent().ListStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ingests {
		t.Errorf("partial download left: %s (%d bytes)", st.Ref, st.Offset)
	}
	nctx := e.b.Context(ctx)
	ls, err := e.b.Leases.List(nctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 0 {
		t.Errorf("leases left: %v", ls)
	}
	recs, err := e.b.Images.List(nctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		id, ok := e.svc.Index().Owner(r.Name)
		if !ok {
			t.Errorf("orphan record %q", r.Name)
			continue
		}
		img, _ := e.svc.Index().Get(id)
		if !slices.Contains(img.References, r.Name) {
			t.Errorf("record %q not among %s's names %v", r.Name, id, img.References)
		}
	}
}
