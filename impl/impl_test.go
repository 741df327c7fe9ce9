package impl_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/backend/backendtest"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/route"
)

type fixture struct {
	reg *registry.Registry
	cat *fixtures.Set
}

// newRegistry starts the fixture registry and pushes the named catalog images (each under
// anon/<name>:latest, plus any extra repos).
func newRegistry(t *testing.T, names ...string) fixture {
	t.Helper()
	reg, err := registry.Start(context.Background(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	cat, err := fixtures.Catalog(fixtures.Options{ForeignURL: reg.ForeignURL()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := cat.MustImage(n).Push(reg, "anon/"+n, "latest"); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{reg, cat}
}

func (f fixture) ref(name string) string { return f.reg.PlainHost() + "/anon/" + name + ":latest" }

type server struct {
	srv  *impl.Server
	root string
	is   runtime.ImageServiceClient
}

func start(t *testing.T, root string, cfg impl.Config) *server {
	t.Helper()
	dir, err := os.MkdirTemp("", "cii")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.Root = root
	srv, err := impl.Start(context.Background(), "unix://"+filepath.Join(dir, "s.sock"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{srv: srv, root: root, is: runtime.NewImageServiceClient(conn)}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			conn.Close()
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	})
	return s
}

func (s *server) pull(ctx context.Context, ref string) (string, error) {
	resp, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	return resp.GetImageRef(), err
}

func (s *server) status(t *testing.T, key string) *runtime.Image {
	t.Helper()
	resp, err := s.is.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: key}})
	if err != nil {
		t.Fatalf("ImageStatus(%q): %v", key, err)
	}
	return resp.Image
}

func (s *server) list(t *testing.T) []*runtime.Image {
	t.Helper()
	resp, err := s.is.ListImages(context.Background(), &runtime.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Images
}

// onDisk reopens root (the server must be closed) and reports what GC leaves.
func onDisk(t *testing.T, root string) (blobs, snaps int) {
	t.Helper()
	ctx := context.Background()
	b, err := backend.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	bl, sn, err := backendtest.OnDisk(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	// Partial downloads (ingests) count too, even broken ones ListStatuses cannot read.
	ingests, err := os.ReadDir(filepath.Join(backend.ContentRoot(root), "ingest"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ingests {
		t.Errorf("partial download left on disk: %s", e.Name())
	}
	return len(bl), len(sn)
}

// TestPullFromRegistry pulls catalog images (schema 2, OCI index, user forms) from the fixture
// registry and checks what the catalog expects: ID, size, repo digest, user fields.
func TestPullFromRegistry(t *testing.T) {
	names := []string{fixtures.NameSchema2Layers, fixtures.NameOCIIndex, fixtures.NameUser1000Group, fixtures.NameUserGroup}
	f := newRegistry(t, names...)
	s := start(t, t.TempDir(), impl.Config{})
	ctx := context.Background()
	for _, n := range names {
		want := f.cat.MustImage(n)
		ref := f.ref(n)
		id, err := s.pull(ctx, ref)
		if err != nil {
			t.Fatalf("pull %s: %v", n, err)
		}
		st := s.status(t, ref)
		if id != want.ID || st.Id != want.ID || st.Size != want.Size {
			t.Errorf("%s: image_ref %s id %s size %d; want %s size %d", n, id, st.Id, st.Size, want.ID, want.Size)
		}
		if !slices.Equal(st.RepoTags, []string{ref}) || !slices.Equal(st.RepoDigests, []string{f.reg.PlainHost() + "/anon/" + n + "@" + want.Digest.String()}) {
			t.Errorf("%s: tags %v digests %v", n, st.RepoTags, st.RepoDigests)
		}
		if (want.UID == nil) != (st.Uid == nil) || (want.UID != nil && *want.UID != st.Uid.Value) || want.Username != st.Username {
			t.Errorf("%s: uid %v username %q; want %v %q", n, st.Uid, st.Username, want.UID, want.Username)
		}
	}
	before := s.list(t)
	if len(before) != len(names) {
		t.Fatalf("List: %d images", len(before))
	}
	// A restart rebuilds the same index from the records (index images keep their platform
	// manifest through the record label).
	s.srv.Close()
	s = start(t, s.root, impl.Config{})
	after := s.list(t)
	if len(after) != len(before) {
		t.Fatalf("after restart: %d images, want %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Id != b.Id || a.Size != b.Size || !slices.Equal(a.RepoTags, b.RepoTags) || !slices.Equal(a.RepoDigests, b.RepoDigests) || a.Username != b.Username || (a.Uid == nil) != (b.Uid == nil) {
			t.Errorf("after restart %v, before %v", a, b)
		}
	}
}

// TestFailedPullLeavesNothing: an image whose layer does not unpack fails PullImage; nothing is
// listed and nothing stays on disk.
func TestFailedPullLeavesNothing(t *testing.T) {
	f := newRegistry(t, fixtures.NameCorruptGzip, fixtures.NameDiffIDMismatch, fixtures.NameMissingLayer)
	root := t.TempDir()
	s := start(t, root, impl.Config{})
	for _, n := range []string{fixtures.NameCorruptGzip, fixtures.NameDiffIDMismatch, fixtures.NameMissingLayer} {
		if _, err := s.pull(context.Background(), f.ref(n)); err == nil {
			t.Fatalf("pull of %s succeeded", n)
		}
		if got := s.list(t); len(got) != 0 {
			t.Fatalf("after failed pull of %s: List = %v", n, got)
		}
	}
	s.srv.Close()
	if blobs, snaps := onDisk(t, root); blobs != 0 || snaps != 0 {
		t.Fatalf("after failed pulls: %d blobs, %d snapshots on disk", blobs, snaps)
	}
}

// TestRemoveDuringPullAtRegistryGate holds a pull's layer GET at the registry; List shows nothing
// meanwhile, a RemoveImage of the same name succeeds, and once released the image appears whole.
func TestRemoveDuringPullAtRegistryGate(t *testing.T) {
	n := fixtures.NameSchema2Layers
	f := newRegistry(t, n)
	root := t.TempDir()
	s := start(t, root, impl.Config{})
	img := f.cat.MustImage(n)
	g := f.reg.Gates().Arm(route.Match{Kind: route.KindBlob, Digest: img.Layers[len(img.Layers)-1]})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := s.pull(ctx, f.ref(n))
		done <- err
	}()
	if err := g.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.list(t); len(got) != 0 {
		t.Fatalf("List during pull = %v", got)
	}
	if _, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: f.ref(n)}}); err != nil {
		t.Fatal(err)
	}
	g.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.status(t, img.ID); st == nil || len(st.RepoTags) != 1 {
		t.Fatalf("after release: %v", st)
	}
	if _, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: img.ID[:12]}}); err != nil {
		t.Fatal(err)
	}
	s.srv.Close()
	if blobs, snaps := onDisk(t, root); blobs != 0 || snaps != 0 {
		t.Fatalf("after remove: %d blobs, %d snapshots", blobs, snaps)
	}
}

func TestStartErrors(t *testing.T) {
	for _, listen := range []string{"tcp://10.0.0.1:0", "tcp://0.0.0.0:0", "unix://rel/path", "http://x", "unix:///"} {
		if _, err := impl.Start(context.Background(), listen, impl.Config{Root: t.TempDir()}); err == nil || !strings.Contains(err.Error(), listen) {
			t.Errorf("Start(%q) = %v, want an error naming it", listen, err)
		}
	}
	if _, err := impl.Start(context.Background(), "tcp://127.0.0.1:0", impl.Config{Root: t.TempDir(), RuntimeHandlers: map[string]string{"x": "zfs"}}); err == nil || !strings.Contains(err.Error(), "zfs") {
		t.Errorf("unknown snapshotter: %v", err)
	}
	if _, err := impl.Start(context.Background(), "tcp://127.0.0.1:0", impl.Config{Root: t.TempDir(), Pinned: []string{"Bad/Ref"}}); err == nil || !strings.Contains(err.Error(), "Bad/Ref") {
		t.Errorf("bad pinned ref: %v", err)
	}
	// tcp on loopback works, and a second server on the same root is refused.
	root := t.TempDir()
	s := start(t, root, impl.Config{})
	if _, err := impl.Start(context.Background(), "tcp://127.0.0.1:0", impl.Config{Root: root}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second server on one root: %v", err)
	}
	_, err := s.is.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ImageStatus(\"\") = %v", err)
	}
}

// TestConcurrentPullsAndRemoves: identical concurrent pulls all succeed with one image_ref and
// fetch each blob once; then looped concurrent pulls and removes of the image all succeed and
// leave a consistent state with nothing leaked.
func TestConcurrentPullsAndRemoves(t *testing.T) {
	n := fixtures.NameSchema2Layers
	f := newRegistry(t, n)
	root := t.TempDir()
	s := start(t, root, impl.Config{})
	img := f.cat.MustImage(n)
	ref := f.ref(n)
	ctx := context.Background()
	// Hold the first layer so that every pull joins the same flight.
	g := f.reg.Gates().Arm(route.Match{Kind: route.KindBlob, Digest: img.Layers[0]})
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Go(func() { ids[i], errs[i] = s.pull(ctx, ref) })
	}
	if err := g.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	g.Release()
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != img.ID {
			t.Fatalf("pull %d: %s, %v", i, ids[i], errs[i])
		}
	}
	for _, d := range img.Layers {
		if got := f.reg.Journal().BlobGets("anon/"+n, d); got != 1 {
			t.Errorf("blob %s fetched %d times, want 1", d, got)
		}
	}

	var fails sync.Map
	for w := range 3 {
		wg.Go(func() {
			for range 5 {
				if _, err := s.pull(ctx, ref); err != nil {
					fails.Store(err.Error(), w)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 5 {
				if _, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
					fails.Store(err.Error(), -1)
				}
			}
		})
	}
	wg.Wait()
	fails.Range(func(k, _ any) bool { t.Errorf("concurrent call failed: %v", k); return true })
	list := s.list(t)
	st := s.status(t, ref)
	if (len(list) == 1) != (st != nil) || len(list) > 1 {
		t.Fatalf("List %v and Status %v disagree", list, st)
	}
	if _, err := s.pull(ctx, ref); err != nil {
		t.Fatalf("final pull: %v", err)
	}
	if _, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: img.ID}}); err != nil {
		t.Fatal(err)
	}
	s.srv.Close()
	if blobs, snaps := onDisk(t, root); blobs != 0 || snaps != 0 {
		t.Fatalf("after final remove: %d blobs, %d snapshots", blobs, snaps)
	}
}

// TestNoSecretInErrorsOrLogs: wrong and malformed credentials fail the pull without the secret
// showing up in the gRPC error or in any log line (debug level included).
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	f := newRegistry(t)
	if err := f.cat.MustImage(fixtures.NameAuthBasic).Push(f.reg, "basic/small", "latest"); err != nil {
		t.Fatal(err)
	}
	var logs safeBuffer
	s := start(t, t.TempDir(), impl.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	const secret = "s3cret-Pa55"
	ref := f.reg.PlainHost() + "/basic/small:latest"
	for _, a := range []*runtime.AuthConfig{
		{Username: "criimage", Password: secret},
		{Auth: base64.StdEncoding.EncodeToString([]byte("criimage" + secret))}, // no colon
		{IdentityToken: secret},
		{RegistryToken: secret},
	} {
		_, err := s.is.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: a})
		if err == nil {
			t.Fatalf("pull with bad credentials succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("secret in error: %v", err)
		}
	}
	// And a good pull, to have success lines in the log too.
	if _, err := s.is.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: &runtime.AuthConfig{Username: "criimage", Password: "criimage-password"}}); err != nil {
		t.Fatal(err)
	}
	s.srv.Close()
	out := logs.String()
	if strings.Contains(out, secret) || strings.Contains(out, "criimage-password") {
		t.Errorf("secret in logs:\n%s", out)
	}
	if !strings.Contains(out, "PullImage") {
		t.Errorf("no PullImage log line at all:\n%s", out)
	}
}

// safeBuffer is a bytes.Buffer safe for concurrent writers (slog handlers write from RPCs).
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
