package selfimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func fakeBuild() Build {
	return Build{Version: "v0.1.0+dirty", Revision: "0123456789abcdef", Time: time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)}
}

func fakeBinaries(t *testing.T) []Binary {
	t.Helper()
	dir := t.TempDir()
	var bins []Binary
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, "criimage-linux-"+arch)
		if err := os.WriteFile(p, []byte("binary for "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, Binary{OS: "linux", Arch: arch, Path: p})
	}
	return bins
}

// TestImageShape: an index of one image per platform, each with one layer holding the binary at
// /usr/bin/criimage (0755) and /results, an entrypoint, and the OCI annotations.
func TestImageShape(t *testing.T) {
	bins := fakeBinaries(t)
	img, err := build(bins, fakeBuild())
	if err != nil {
		t.Fatal(err)
	}
	plats, err := Platforms(img.Index)
	if err != nil || !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("platforms %v %v, want linux/amd64 and linux/arm64", plats, err)
	}
	im, err := img.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "revision", "created", "source"} {
		if im.Annotations["org.opencontainers.image."+k] == "" {
			t.Errorf("index lacks annotation org.opencontainers.image.%s: %v", k, im.Annotations)
		}
	}
	if im.Annotations["org.opencontainers.image.revision"] != "0123456789abcdef" {
		t.Errorf("revision annotation %q", im.Annotations["org.opencontainers.image.revision"])
	}
	for i, d := range im.Manifests {
		pi, err := img.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := pi.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != bins[i].Arch || cf.OS != "linux" || !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath}) || cf.Config.WorkingDir != ResultsDir {
			t.Errorf("%s config: %s/%s entrypoint %v workdir %q", bins[i].Arch, cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.WorkingDir)
		}
		files := extract(t, mutate.Extract(pi))
		want, _ := os.ReadFile(bins[i].Path)
		bin, ok := files["usr/bin/criimage"]
		if !ok || !bytes.Equal(bin.data, want) || bin.mode != 0o755 {
			t.Errorf("%s: usr/bin/criimage = %q mode %o, want the binary %q mode 755", bins[i].Arch, bin.data, bin.mode, want)
		}
		if r, ok := files["results"]; !ok || r.mode != 0o777 {
			t.Errorf("%s: no writable /results: %+v", bins[i].Arch, r)
		}
	}
	if img.Tag() != "v0.1.0-dirty" {
		t.Errorf("tag %q, want v0.1.0-dirty", img.Tag())
	}
}

type file struct {
	data []byte
	mode int64
}

func extract(t *testing.T, rc io.ReadCloser) map[string]file {
	t.Helper()
	defer rc.Close()
	out := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = file{b, h.Mode}
	}
}

// TestReproducible: the same binaries give the same index digest, layout bytes and archive bytes.
func TestReproducible(t *testing.T) {
	bins := fakeBinaries(t)
	var archives [][]byte
	var digests []string
	for range 2 {
		img, err := build(bins, fakeBuild())
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Index.Digest()
		digests = append(digests, d.String())
		dir := filepath.Join(t.TempDir(), "layout")
		if err := img.WriteLayout(dir, DefaultRepo); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		top, _ := idx.IndexManifest()
		if len(top.Manifests) != 1 || top.Manifests[0].Digest != d || top.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/criimage:v0.1.0-dirty" {
			t.Fatalf("layout index.json = %+v, want one descriptor of %s named docker.io/library/criimage:v0.1.0-dirty", top.Manifests, d)
		}
		ar := filepath.Join(t.TempDir(), "image.oci.tar")
		if err := WriteArchive(dir, ar, img.Build.Time); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ar)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, b)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds, two digests: %v", digests)
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Errorf("two archives of the same image differ (%d and %d bytes)", len(archives[0]), len(archives[1]))
	}
}

// TestReadBuildNeedsVCS: a binary without VCS stamping is refused (the test binary is one).
func TestReadBuildNeedsVCS(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBuild(exe); err == nil {
		t.Error("ReadBuild of a binary without vcs.revision succeeded")
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}
