// Package clienttest is the registry's test clients: pulls made the way real clients make them —
// go-containerregistry's remote (ggcr) and containerd's docker resolver with
// remotes.FetchHandler into a local content store, both verifying every digest — and the
// helpers the registry's test rigs share to seed images. Test code only.
package clienttest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Context is a context for one test, ended after 20 s or with the test.
func Context(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// PullGGCR pulls ref with ggcr's remote: the manifest, the config and every layer's bytes.
func PullGGCR(ctx context.Context, ref string, opts ...remote.Option) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Creds is containerd's docker authorizer with one fixed credential.
func Creds(user, secret string) docker.Authorizer {
	return docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
		return user, secret, nil
	}))
}

// Containerd pulls like containerd's CRI plugin: the docker resolver (plain HTTP) with an
// authorizer, and remotes.FetchHandler into a local content store in Dir.
type Containerd struct {
	Authorizer docker.Authorizer // nil = anonymous
	Headers    http.Header
	Dir        string // the content store's directory (a test's TempDir)
}

// Resolve resolves ref and returns the resolver, the resolved name and the root descriptor.
func (c Containerd) Resolve(ctx context.Context, ref string) (remotes.Resolver, string, ocispec.Descriptor, error) {
	ropts := []docker.RegistryOpt{docker.WithPlainHTTP(docker.MatchAllHosts)}
	if c.Authorizer != nil {
		ropts = append(ropts, docker.WithAuthorizer(c.Authorizer))
	}
	r := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(ropts...), Headers: c.Headers})
	n, desc, err := r.Resolve(ctx, ref)
	return r, n, desc, err
}

// Fetch fetches desc and everything below it into the content store.
func (c Containerd) Fetch(ctx context.Context, r remotes.Resolver, n string, desc ocispec.Descriptor) error {
	f, err := r.Fetcher(ctx, n)
	if err != nil {
		return err
	}
	cs, err := local.NewStore(c.Dir)
	if err != nil {
		return err
	}
	return images.Dispatch(ctx, images.Handlers(remotes.FetchHandler(cs, f), images.ChildrenHandler(cs)), nil, desc)
}

// Pull resolves and fetches ref; it returns the root descriptor.
func (c Containerd) Pull(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, n, desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return desc, err
	}
	return desc, c.Fetch(ctx, r, n, desc)
}

// Blobs returns img's config and compressed layers, for seeding a registry through its Go API.
func Blobs(img v1.Image) (config []byte, layers [][]byte, err error) {
	if config, err = img.RawConfigFile(); err != nil {
		return nil, nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, b)
	}
	return config, layers, nil
}

// PushGGCR writes img to ref with ggcr (the rigs seed their ggcr-backed registries this way).
func PushGGCR(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("seeding %s: %v", ref, err)
	}
}

// Seeder is a registry's Go seeding API (registry.Registry has it).
type Seeder interface {
	PutBlob(repo string, data []byte) (digest.Digest, error)
	PutManifest(repo, tag, mediaType string, raw []byte) (digest.Digest, error)
}

// Seed puts img's config, layers and manifest into repo (tag may be "") through the Go API and
// returns the manifest's digest.
func Seed(t testing.TB, reg Seeder, repo, tag string, img v1.Image) digest.Digest {
	t.Helper()
	config, layers, err := Blobs(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([][]byte{config}, layers...) {
		if _, err := reg.PutBlob(repo, b); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PutManifest(repo, tag, string(mt), raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
