package runtimeconfig

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/internal/clienttest"
	"github.com/criimage/criimage/registry/route"
)

// A running fixture registry is a Source (criimage registry can hand itself to WriteCertsDir).
var _ Source = (*registry.Registry)(nil)

// Environment of TestLiveRuntime, set by hack/containerd-gate.sh (or by hand) for a running
// runtime whose config_path is CRIIMAGE_CERTS_DIR.
const (
	envEndpoint = "CRIIMAGE_CRI_ENDPOINT" // unix:///…/containerd.sock
	envCertsDir = "CRIIMAGE_CERTS_DIR"    // the runtime's config_path root
)

// TestLiveRuntime is the smoke check of a real runtime configured by this package: it starts the
// fixture registry, writes the certs.d tree into the runtime's config_path, and pulls through CRI
// from the plain host, docker.io (mirrored), the TLS host by name (CA-verified; the name must
// resolve to loopback) and the TLS address; then Status, List, ImageFsInfo, Remove.
func TestLiveRuntime(t *testing.T) {
	endpoint, certs := os.Getenv(envEndpoint), os.Getenv(envCertsDir)
	if endpoint == "" || certs == "" {
		t.Skipf("no live runtime: set %s and %s (hack/containerd-gate.sh does)", envEndpoint, envCertsDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := WriteCertsDir(certs, reg, CertsOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, hostName(reg.TLSHost()))
	if err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		t.Fatalf("%s must resolve to loopback for the runtime (an /etc/hosts line): %v %v", hostName(reg.TLSHost()), addrs, err)
	}

	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	wantID := cfgName.String()
	for _, repo := range []string{"anon/smoke", "library/smoke"} {
		seed(t, reg, repo, "v1", img)
	}

	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	is := runtimeapi.NewImageServiceClient(conn)
	v, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatalf("CRI Version: %v", err)
	}
	t.Logf("runtime %s %s (CRI %s)", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)

	refs := []struct {
		pull, listed string
		listener     route.Listener
	}{
		{reg.PlainHost() + "/anon/smoke:v1", reg.PlainHost() + "/anon/smoke:v1", route.ListenerPlain},
		{"smoke:v1", "docker.io/library/smoke:v1", route.ListenerPlain},
		{reg.TLSHost() + "/anon/smoke:v1", reg.TLSHost() + "/anon/smoke:v1", route.ListenerTLS},
		{reg.TLSAddr() + "/anon/smoke:v1", reg.TLSAddr() + "/anon/smoke:v1", route.ListenerTLS},
	}
	for _, r := range refs {
		before := reg.Journal().Last()
		resp, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: r.pull}})
		if err != nil {
			t.Errorf("PullImage %s: %v", r.pull, err)
			continue
		}
		if resp.ImageRef != wantID {
			t.Errorf("PullImage %s: image_ref %s, want %s", r.pull, resp.ImageRef, wantID)
		}
		var got []string
		for _, e := range reg.Journal().Since(before) {
			got = append(got, string(e.Listener)+" "+e.Method+" "+e.Path+"?"+e.RawQuery)
			if e.Listener != r.listener {
				t.Errorf("PullImage %s reached the %s listener: %s %s", r.pull, e.Listener, e.Method, e.Path)
			}
		}
		if len(got) == 0 {
			t.Errorf("PullImage %s: the fixture saw no request", r.pull)
		}
		if r.pull == "smoke:v1" && !strings.Contains(strings.Join(got, "\n"), "/v2/library/smoke/manifests/v1?ns=docker.io") {
			t.Errorf("docker.io pull did not go through the mirror: %q", got)
		}
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: r.pull}})
		if err != nil || st.Image == nil {
			t.Errorf("ImageStatus %s: %v %v", r.pull, st, err)
		} else if !contains(st.Image.RepoTags, r.listed) {
			t.Errorf("ImageStatus %s: repo tags %q lack %s", r.pull, st.Image.RepoTags, r.listed)
		}
	}
	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, im := range list.Images {
		found = found || im.Id == wantID
	}
	if !found {
		t.Errorf("ListImages lacks %s", wantID)
	}
	fs, err := is.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) == 0 {
		t.Errorf("ImageFsInfo: %v %v", fs, err)
	} else {
		t.Logf("image fs: %s", fs.ImageFilesystems[0].FsId.GetMountpoint())
	}
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: wantID}}); err != nil {
		t.Errorf("RemoveImage %s: %v", wantID, err)
	}
	if st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: wantID}}); err != nil || st.Image != nil {
		t.Errorf("after RemoveImage: status %v, %v", st.GetImage(), err)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// seed pushes img into repo:tag through the registry's Go seeding API.
func seed(t *testing.T, reg *registry.Registry, repo, tag string, img v1.Image) {
	t.Helper()
	clienttest.Seed(t, reg, repo, tag, img)
}
