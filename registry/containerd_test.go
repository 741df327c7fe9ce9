package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry"
)

// fetchAll reads desc with containerd's fetcher and checks the bytes against its digest.
func fetchAll(t *testing.T, ctx context.Context, f interface {
	Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error)
}, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	if digest.FromBytes(b) != desc.Digest {
		t.Fatalf("fetched %s: content digest %s", desc.Digest, digest.FromBytes(b))
	}
	return b
}

// TestContainerdResolverPull resolves and fetches an OCI image (manifest, config, layers) with
// containerd's core/remotes/docker from the plain and the TLS listener.
func TestContainerdResolverPull(t *testing.T) {
	reg := start(t, registry.Options{})
	img, err := random.Image(1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: img})
	want := seedIndex(t, reg, "anon/ctrd", "v1", idx)

	for _, tc := range []struct {
		name   string
		host   string
		client *http.Client
		plain  bool
	}{
		{"plain", reg.PlainHost(), &http.Client{}, true},
		{"tls", reg.TLSAddr(), &http.Client{Transport: tlsTransport(t, reg)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			opts := []docker.RegistryOpt{docker.WithClient(tc.client)}
			if tc.plain {
				opts = append(opts, docker.WithPlainHTTP(docker.MatchAllHosts))
			}
			resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
			name, desc, err := resolver.Resolve(ctx, tc.host+"/anon/ctrd:v1")
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != want || desc.MediaType != ocispec.MediaTypeImageIndex {
				t.Fatalf("resolved %s %s, want %s index", desc.Digest, desc.MediaType, want)
			}
			f, err := resolver.Fetcher(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			var index ocispec.Index
			if err := json.Unmarshal(fetchAll(t, ctx, f, desc), &index); err != nil {
				t.Fatal(err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(fetchAll(t, ctx, f, index.Manifests[0]), &m); err != nil {
				t.Fatal(err)
			}
			fetchAll(t, ctx, f, m.Config)
			for _, l := range m.Layers {
				fetchAll(t, ctx, f, l)
			}
			if n := reg.Journal().BlobGets("anon/ctrd", m.Layers[0].Digest); n < 1 {
				t.Errorf("journal counted %d GETs of the first layer", n)
			}
		})
	}
}
