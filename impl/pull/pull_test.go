package pull

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/platforms"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/grpcerr"
)

func TestPullFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Platform: platforms.Only(linuxAMD64)})
	host := e.reg.PlainHost()
	two := []map[string]string{{"etc/a": "a"}, {"etc/b": "b"}}

	docker := buildImage(t, false, linuxAMD64, two...)
	e.push("anon/schema2", "v1", docker)
	oci := buildImage(t, true, linuxAMD64, two...)
	e.push("anon/oci", "v1", oci)

	amd := buildImage(t, true, linuxAMD64, map[string]string{"arch": "amd64"})
	arm := buildImage(t, true, linuxARM64, map[string]string{"arch": "arm64"})
	ociIdx, ociIdxRaw := e.pushIndex("anon/index", "v1", true, arm, amd)
	damd := buildImage(t, false, linuxAMD64, map[string]string{"arch": "amd64", "list": "y"})
	darm := buildImage(t, false, linuxARM64, map[string]string{"arch": "arm64", "list": "y"})
	list, listRaw := e.pushIndex("anon/list", "v1", false, darm, damd)

	for _, tc := range []struct {
		name     string
		ref      string
		target   ocispec.Descriptor
		chosen   testImage
		wantSize int64
	}{
		{"docker schema2", host + "/anon/schema2:v1", ocispec.Descriptor{MediaType: docker.mediaType, Digest: docker.digest, Size: int64(len(docker.raw))}, docker, docker.size()},
		{"oci manifest", host + "/anon/oci:v1", ocispec.Descriptor{MediaType: oci.mediaType, Digest: oci.digest, Size: int64(len(oci.raw))}, oci, oci.size()},
		{"oci index", host + "/anon/index:v1", ociIdx, amd, int64(len(ociIdxRaw)) + amd.size()},
		{"docker list", host + "/anon/list:v1", list, damd, int64(len(listRaw)) + damd.size()},
		{"by digest", host + "/anon/index@" + ociIdx.Digest.String(), ociIdx, amd, int64(len(ociIdxRaw)) + amd.size()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(tc.ref)})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if res.Target.Digest != tc.target.Digest || res.Target.MediaType != tc.target.MediaType || res.Target.Size != tc.target.Size {
				t.Errorf("Target = %+v, want %+v", res.Target, tc.target)
			}
			if res.Manifest.Digest != tc.chosen.digest {
				t.Errorf("Manifest = %s, want %s", res.Manifest.Digest, tc.chosen.digest)
			}
			if res.Config.Digest != tc.chosen.config {
				t.Errorf("Config = %s, want %s", res.Config.Digest, tc.chosen.config)
			}
			if got := e.reportedSize(res); got != tc.wantSize {
				t.Errorf("reported size = %d, want %d", got, tc.wantSize)
			}
			e.assertUnpacked(res, "native")
			if err := res.Done(e.ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Nothing holds the content any more (no records were created).
	e.assertClean()
}

// assertUnpacked checks the config names the top snapshot and that it exists, committed.
func (e *env) assertUnpacked(res Result, sn string) {
	e.t.Helper()
	ctx := e.b.Context(e.ctx)
	cb, err := content.ReadBlob(ctx, e.b.Content, res.Config)
	if err != nil {
		e.t.Fatalf("config not in the content store: %v", err)
	}
	var cfg ocispec.Image
	if err := jsonUnmarshal(cb, &cfg); err != nil {
		e.t.Fatal(err)
	}
	chain := identity.ChainID(cfg.RootFS.DiffIDs).String()
	info, err := e.b.Content.Info(ctx, res.Config.Digest)
	if err != nil {
		e.t.Fatal(err)
	}
	if got := info.Labels["containerd.io/gc.ref.snapshot."+sn]; got != chain {
		e.t.Errorf("config label gc.ref.snapshot.%s = %q, want %q", sn, got, chain)
	}
	if _, err := e.b.Snapshotters[sn].Stat(ctx, chain); err != nil {
		e.t.Errorf("top snapshot %s: %v", chain, err)
	}
	for _, d := range []ocispec.Descriptor{res.Target, res.Manifest} {
		if _, err := e.b.Content.Info(ctx, d.Digest); err != nil {
			e.t.Errorf("%s not in the content store: %v", d.Digest, err)
		}
	}
}

func TestPullPlatform(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Platform: platforms.Only(linuxARM64)})
	amd := buildImage(t, true, linuxAMD64, map[string]string{"arch": "amd64"})
	arm := buildImage(t, true, linuxARM64, map[string]string{"arch": "arm64"})
	e.pushIndex("anon/multi", "v1", true, amd, arm)
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/multi:v1")})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Done(e.ctx)
	if res.Config.Digest != arm.config {
		t.Fatalf("Config = %s, want the arm64 config %s", res.Config.Digest, arm.config)
	}
	// The amd64 manifest was not fetched.
	if _, err := e.b.Content.Info(e.b.Context(e.ctx), amd.digest); err == nil {
		t.Error("the amd64 manifest was fetched too")
	}
}

func TestPullNoPlatformMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Platform: platforms.Only(linuxS390x)})
	amd := buildImage(t, true, linuxAMD64, map[string]string{"arch": "amd64"})
	arm := buildImage(t, true, linuxARM64, map[string]string{"arch": "arm64"})
	e.pushIndex("anon/multi", "v1", true, amd, arm)
	ref := e.reg.PlainHost() + "/anon/multi:v1"
	_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
	if grpcerr.Code(err) != codes.NotFound {
		t.Fatalf("Pull = %v, want NotFound", err)
	}
	for _, want := range []string{ref, "linux/amd64", "linux/arm64/v8", "no manifest for the platform"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	e.assertClean()
}

func TestPullNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "a"})
	e.push("anon/there", "v1", img)
	for _, ref := range []string{
		e.reg.PlainHost() + "/anon/there:v2",
		e.reg.PlainHost() + "/anon/missing:v1",
		e.reg.PlainHost() + "/anon/there@sha256:" + strings.Repeat("0", 64),
	} {
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
		if grpcerr.Code(err) != codes.NotFound || !strings.Contains(err.Error(), ref) {
			t.Errorf("Pull(%s) = %v, want NotFound naming the reference", ref, err)
		}
	}
	e.assertClean()
}

func TestPullBadRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ref := e.ref(e.reg.PlainHost() + "/anon/x:v1")
	if _, err := e.p.Pull(e.ctx, Request{}); grpcerr.Code(err) != codes.InvalidArgument {
		t.Errorf("nil ref: %v", err)
	}
	if _, err := e.p.Pull(e.ctx, Request{Ref: ref, Snapshotter: "zfs"}); grpcerr.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "zfs") {
		t.Errorf("unknown snapshotter: %v", err)
	}
	if len(e.reg.Journal().Entries()) != 0 {
		t.Error("a bad request reached the registry")
	}
}

func TestPullRegistryUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ref := "127.0.0.1:1/anon/x:v1" // nothing listens on port 1
	_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
	if grpcerr.Code(err) != codes.Unknown || !strings.HasPrefix(status.Convert(grpcerr.Status(err)).Message(), "RegistryUnavailable: ") || !strings.Contains(err.Error(), ref) {
		t.Fatalf("Pull = %v, want Unknown with a RegistryUnavailable prefix, naming the reference", err)
	}
}

func TestPullIntoRequestedSnapshotter(t *testing.T) {
	t.Parallel()
	e := newOverlayEnv(t)
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	e.push("anon/overlay", "v1", img)
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/overlay:v1"), Snapshotter: backend.Overlayfs})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	e.assertUnpacked(res, backend.Overlayfs)
	info, err := e.b.Content.Info(e.b.Context(e.ctx), res.Config.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.Labels["containerd.io/gc.ref.snapshot.native"]; ok {
		t.Error("unpacked into native too")
	}
	_ = res.Done(e.ctx)
	e.assertClean()
}

// TestOverlayParallelUnpackWhiteouts: with overlayfs the layers are extracted in parallel
// (parentless snapshots, rebased in order at commit); a whiteout in a later layer must still
// hide the file of an earlier one in the committed chain.
func TestOverlayParallelUnpackWhiteouts(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting the snapshot needs root")
	}
	e := newOverlayEnv(t)
	img := buildImage(t, true, linuxAMD64,
		map[string]string{"a": "1", "b": "2"},
		map[string]string{".wh.a": "", "c": "3"},
		map[string]string{"d": "4", ".wh.b": ""},
		map[string]string{"b": "5"})
	e.push("anon/overlay-wh", "v1", img)
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/overlay-wh:v1"), Snapshotter: backend.Overlayfs})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	defer func() { _ = res.Done(e.ctx) }()
	ctx := e.b.Context(e.ctx)
	cb, err := content.ReadBlob(ctx, e.b.Content, res.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	mustJSON(t, cb, &cfg)
	sn := e.b.Snapshotters[backend.Overlayfs]
	mounts, err := sn.View(ctx, "view-wh", identity.ChainID(cfg.RootFS.DiffIDs).String())
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	defer func() { _ = sn.Remove(ctx, "view-wh") }()
	dir := t.TempDir()
	if err := mount.All(mounts, dir); err != nil {
		t.Fatalf("mount: %v", err)
	}
	defer func() { _ = mount.UnmountAll(dir, 0) }()
	got := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		bb, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[de.Name()] = string(bb)
	}
	if want := map[string]string{"b": "5", "c": "3", "d": "4"}; !maps.Equal(got, want) {
		t.Fatalf("unpacked root = %v, want %v", got, want)
	}
}

// newOverlayEnv is newEnv with overlayfs open in the backend (skipped where it is not available).
func newOverlayEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, Options{})
	b, err := backend.Open(e.ctx, t.TempDir(), backend.Overlayfs)
	if err != nil {
		t.Skipf("overlayfs not available here: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	e.b, e.p = b, New(b, Options{})
	return e
}
