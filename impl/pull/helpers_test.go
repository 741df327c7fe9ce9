package pull

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/imagestore"
	"github.com/criimage/criimage/registry"
)

type env struct {
	t   *testing.T
	ctx context.Context
	reg *registry.Registry
	b   *backend.Backend
	p   *Puller
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	b, err := backend.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return &env{t: t, ctx: ctx, reg: reg, b: b, p: New(b, opts)}
}

func (e *env) ref(s string) reference.Named {
	e.t.Helper()
	n, err := reference.ParseDockerRef(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// tgz returns a gzip'ed tar of files and its diff ID.
func tgz(t *testing.T, files map[string]string) ([]byte, digest.Digest) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	gw := gzip.NewWriter(&gb)
	if _, err := gw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return gb.Bytes(), digest.FromBytes(tb.Bytes())
}

type testImage struct {
	mediaType string
	raw       []byte
	digest    digest.Digest
	config    digest.Digest
	layers    []digest.Digest
	blobs     map[digest.Digest][]byte
	platform  ocispec.Platform
}

func (ti testImage) desc() ocispec.Descriptor {
	p := ti.platform
	return ocispec.Descriptor{MediaType: ti.mediaType, Digest: ti.digest, Size: int64(len(ti.raw)), Platform: &p}
}

// size is what Result.Size should be for a direct pull: manifest + config + layers.
func (ti testImage) size() int64 {
	n := int64(len(ti.raw))
	for _, b := range ti.blobs {
		n += int64(len(b))
	}
	return n
}

// buildImage makes an image with one layer per files map (Docker schema 2, or OCI if oci).
func buildImage(t *testing.T, oci bool, plat ocispec.Platform, layers ...map[string]string) testImage {
	t.Helper()
	ti := testImage{blobs: map[digest.Digest][]byte{}, platform: plat}
	cfg := ocispec.Image{Platform: plat, Config: ocispec.ImageConfig{Cmd: []string{"/bin/true"}, User: "1000"}}
	cfg.RootFS.Type = "layers"
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}}
	layerType, configType := images.MediaTypeDockerSchema2LayerGzip, images.MediaTypeDockerSchema2Config
	m.MediaType, ti.mediaType = images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2Manifest
	if oci {
		layerType, configType = ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig
		m.MediaType, ti.mediaType = ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageManifest
	}
	for _, files := range layers {
		gz, diffID := tgz(t, files)
		d := digest.FromBytes(gz)
		ti.blobs[d] = gz
		ti.layers = append(ti.layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerType, Digest: d, Size: int64(len(gz))})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ti.config = digest.FromBytes(cb)
	ti.blobs[ti.config] = cb
	m.Config = ocispec.Descriptor{MediaType: configType, Digest: ti.config, Size: int64(len(cb))}
	if ti.raw, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	ti.digest = digest.FromBytes(ti.raw)
	return ti
}

var (
	linuxAMD64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	linuxS390x = ocispec.Platform{OS: "linux", Architecture: "s390x"}
)

func (e *env) push(repo, tag string, ti testImage) {
	e.t.Helper()
	for d, b := range ti.blobs {
		got, err := e.reg.PutBlob(repo, b)
		if err != nil || got != d {
			e.t.Fatalf("PutBlob %s: %v (%s)", d, err, got)
		}
	}
	if _, err := e.reg.PutManifest(repo, tag, ti.mediaType, ti.raw); err != nil {
		e.t.Fatal(err)
	}
}

// pushIndex pushes the images untagged and an index (OCI or Docker list) over them under tag.
func (e *env) pushIndex(repo, tag string, oci bool, imgs ...testImage) (ocispec.Descriptor, []byte) {
	e.t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: images.MediaTypeDockerSchema2ManifestList}
	if oci {
		idx.MediaType = ocispec.MediaTypeImageIndex
	}
	for _, ti := range imgs {
		e.push(repo, "", ti)
		idx.Manifests = append(idx.Manifests, ti.desc())
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := e.reg.PutManifest(repo, tag, idx.MediaType, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: idx.MediaType, Digest: d, Size: int64(len(raw))}, raw
}

// leftovers lists every blob and snapshot still on disk (raw stores, any namespace).
func (e *env) leftovers() []string {
	e.t.Helper()
	var out []string
	if err := e.b.RawContent().Walk(e.ctx, func(i content.Info) error {
		out = append(out, "blob "+i.Digest.String())
		return nil
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	sts, err := e.b.RawContent().ListStatuses(e.ctx)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	for _, st := range sts {
		out = append(out, fmt.Sprintf("ingest %s (%d bytes)", st.Ref, st.Offset))
	}
	for name := range e.b.Snapshotters {
		if err := e.b.RawSnapshotter(name).Walk(e.ctx, func(_ context.Context, i snapshots.Info) error {
			out = append(out, fmt.Sprintf("snapshot %s/%s", name, i.Name))
			return nil
		}); err != nil && !errdefs.IsNotFound(err) {
			e.t.Fatal(err)
		}
	}
	ls, err := e.b.Leases.List(e.b.Context(e.ctx))
	if err != nil && !errdefs.IsNotFound(err) {
		e.t.Fatal(err)
	}
	for _, l := range ls {
		out = append(out, "lease "+l.ID)
	}
	return out
}

// assertClean runs GC and fails if anything remains.
func (e *env) assertClean() {
	e.t.Helper()
	if err := e.b.GC(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		e.t.Fatalf("after GC, still present: %v", left)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

// reportedSize is the size the service reports for res: imagestore.Read is the one place that
// derives image facts (at pull and at restart), so the pull tests check its answer.
func (e *env) reportedSize(res Result) int64 {
	e.t.Helper()
	img, err := imagestore.Read(e.b.Context(e.ctx), e.b.Content, res.Target, res.Manifest, platforms.Default())
	if err != nil {
		e.t.Fatalf("imagestore.Read of the pulled image: %v", err)
	}
	return int64(img.Size)
}
