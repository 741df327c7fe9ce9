package selfimage

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// Environment of TestReleaseImage.
const (
	envDist         = "CRIIMAGE_DIST"          // a dist directory after make release image
	envRequireImage = "CRIIMAGE_REQUIRE_IMAGE" // "1": a missing dist fails the test (CI)
	envCRIEndpoint  = "CRIIMAGE_CRI_ENDPOINT"  // a live runtime (the containerd gate's smoke check)
	envCertsDir     = "CRIIMAGE_CERTS_DIR"     // that runtime's config_path root
)

// TestReleaseImage proves that make image made a real image: the layout is pushed to the fixture
// registry over the distribution API; the binary for this machine's architecture, taken from the
// layer pulled back, runs `version` and is the release binary; the release binary's own `serve`
// pulls the image through CRI and reports it under the ID of this platform's config; and, when
// the containerd gate runs this test against its daemon, containerd pulls it too.
func TestReleaseImage(t *testing.T) {
	dist := os.Getenv(envDist)
	if dist == "" {
		if os.Getenv(envRequireImage) == "1" {
			t.Fatalf("%s is not set (and %s=1): run make release image and point %s at dist/", envDist, envRequireImage, envDist)
		}
		t.Skipf("no release image: make release image, then %s=$PWD/dist (make image-check does both)", envDist)
	}
	hostBin := filepath.Join(dist, "criimage-linux-"+runtime.GOARCH)
	build, err := ReadBuild(hostBin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	idx := releaseIndex(t, filepath.Join(dist, "image"))
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	tag := (&Image{Build: build}).Tag()
	ref, err := name.ParseReference(reg.PlainHost()+"/anon/criimage:"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}

	// From the registry: this platform's image, its binary, and the binary's own account of itself.
	pulled, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		t.Fatalf("pull %s for linux/%s: %v", ref, runtime.GOARCH, err)
	}
	wantID, err := pulled.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	layerBin := binaryFromImage(t, pulled)
	release, err := os.ReadFile(hostBin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(layerBin, release) {
		t.Fatalf("the image's %s (%d bytes) is not %s (%d bytes)", BinaryPath, len(layerBin), hostBin, len(release))
	}
	extracted := filepath.Join(t.TempDir(), "criimage")
	if err := os.WriteFile(extracted, layerBin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, extracted, "version", "--json").Output()
	if err != nil {
		t.Fatalf("%s version --json (from the image's layer): %v", extracted, err)
	}
	var v struct{ Version, Revision string }
	if err := json.Unmarshal(out, &v); err != nil || v.Revision != build.Revision || v.Version != build.Version {
		t.Fatalf("the image's binary says %s (%v), want version %s revision %s", out, err, build.Version, build.Revision)
	}
	t.Logf("image %s: linux/%s binary runs: version %s revision %s", ref, runtime.GOARCH, v.Version, v.Revision)

	// Through CRI: the release binary's serve, then (in the gate) a real runtime.
	certs := t.TempDir()
	if _, err := runtimeconfig.WriteCertsDir(certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "criimage.sock")
	serve := exec.CommandContext(ctx, hostBin, "serve", "--listen", "unix://"+sock, "--root", t.TempDir(), "--hosts-dir", certs, "--log-level", "warn")
	serve.Stderr = os.Stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
	}()
	pullThroughCRI(ctx, t, "criimage serve", "unix://"+sock, ref.String(), wantID.String())

	if ep, dir := os.Getenv(envCRIEndpoint), os.Getenv(envCertsDir); ep != "" && dir != "" {
		if _, err := runtimeconfig.WriteCertsDir(dir, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
			t.Fatal(err)
		}
		pullThroughCRI(ctx, t, "the live runtime", ep, ref.String(), wantID.String())
	}
}

// releaseIndex reads the layout's one index (what index.json names).
func releaseIndex(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("OCI layout %s: %v", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("OCI layout %s: index.json has %d descriptors (%v), want 1", dir, len(m.Manifests), err)
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	plats, err := Platforms(idx)
	if err != nil || len(plats) < 2 {
		t.Fatalf("image platforms %v %v, want linux/amd64 and linux/arm64", plats, err)
	}
	return idx
}

func binaryFromImage(t *testing.T, img v1.Image) []byte {
	t.Helper()
	files := extract(t, mutate.Extract(img))
	f, ok := files[BinaryPath[1:]]
	if !ok || f.mode&0o111 == 0 {
		t.Fatalf("the image has no executable %s", BinaryPath)
	}
	return f.data
}

// pullThroughCRI pulls ref through the CRI endpoint, checks ImageStatus's ID, and removes it.
func pullThroughCRI(ctx context.Context, t *testing.T, what, endpoint, ref, wantID string) {
	t.Helper()
	conn, err := criendpoint.Dial(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	is := runtimeapi.NewImageServiceClient(conn)
	// The server may still be starting: wait for its socket, bounded by ctx.
	resp, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("%s: PullImage %s: %v", what, ref, err)
	}
	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || st.Image == nil {
		t.Fatalf("%s: ImageStatus %s after the pull: %v %v", what, ref, st, err)
	}
	if st.Image.Id != wantID || resp.ImageRef == "" {
		t.Fatalf("%s: ImageStatus id %s (pull ref %s), want %s", what, st.Image.Id, resp.ImageRef, wantID)
	}
	t.Logf("%s pulled %s: id %s, size %d", what, ref, st.Image.Id, st.Image.Size)
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Errorf("%s: RemoveImage %s: %v", what, ref, err)
	}
}
