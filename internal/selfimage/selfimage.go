// Package selfimage builds criimage's own OCI image from release binaries: for each platform, one
// layer holding the static binary at /usr/bin/criimage plus the /results and /tmp directories,
// on an empty base, with entrypoint criimage; the platform images in one OCI index annotated with
// org.opencontainers.image.* (version, revision, created, source). It is written as an OCI image
// layout and as a tar of that layout, which `ctr import`, `skopeo copy oci-archive:` and
// `podman load` read. go-containerregistry does the image model, digests and layout; this package
// only writes the layer's tar (fixed owners, modes and times, so the same binaries give the same
// image bytes) and the archive tar of the layout (sorted, fixed times), which no library offers
// deterministically.
package selfimage

import (
	"archive/tar"
	"bytes"
	debugbuildinfo "debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/criimage/criimage/internal/buildinfo"
)

// Where things are in the image.
const (
	BinaryPath  = "/usr/bin/criimage"
	ResultsDir  = "/results"
	DefaultRepo = "criimage" // the image name a layout's index.json carries (ref name REPO:VERSION)
	Source      = "https://github.com/criimage/criimage"
)

// Binary is one release binary and the platform it is for.
type Binary struct {
	OS, Arch string
	Path     string
}

// Build is what the release binaries say about their build (read from their Go build info, which
// every binary of one release shares).
type Build struct {
	Version  string // module version, e.g. v0.1.0 or a pseudo-version
	Revision string // VCS commit
	Time     time.Time
	Modified bool
}

// ReadBuild reads the build of path (any GOOS/GOARCH: debug/buildinfo reads the file, it does not
// run it).
func ReadBuild(path string) (Build, error) {
	bi, err := debugbuildinfo.ReadFile(path)
	if err != nil {
		return Build{}, fmt.Errorf("selfimage: build info of %s: %w", path, err)
	}
	in := buildinfo.FromBuildInfo(bi)
	b := Build{Version: in.Version, Revision: in.Revision, Modified: in.Modified}
	if in.Revision == "" || in.Time == "" {
		return Build{}, fmt.Errorf("selfimage: %s has no VCS revision and time in its build info (build with -buildvcs in a git checkout: make release)", path)
	}
	t, err := time.Parse(time.RFC3339, in.Time)
	if err != nil {
		return Build{}, fmt.Errorf("selfimage: %s: vcs.time %q: %w", path, in.Time, err)
	}
	b.Time = t.UTC()
	return b, nil
}

// Image is the built index and what it was built from.
type Image struct {
	Index v1.ImageIndex
	Build Build
}

// New builds the index for binaries (at least one; every binary from the same build).
func New(binaries []Binary) (*Image, error) {
	if len(binaries) == 0 {
		return nil, errors.New("selfimage: no binaries")
	}
	var first Build
	for i, bin := range binaries {
		b, err := ReadBuild(bin.Path)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = b
		} else if b != first {
			return nil, fmt.Errorf("selfimage: %s is from build %+v, %s from %+v: one release, one build", binaries[0].Path, first, bin.Path, b)
		}
	}
	return build(binaries, first)
}

// build builds the index of binaries, which are all from build.
func build(binaries []Binary, b Build) (*Image, error) {
	ann := annotations(b)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, bin := range binaries {
		img, err := platformImage(bin, b, ann)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: bin.OS, Architecture: bin.Arch}, Annotations: ann},
		})
	}
	idx, ok := mutate.Annotations(idx, ann).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("selfimage: annotating the index did not give an index")
	}
	return &Image{Index: idx, Build: b}, nil
}

func annotations(b Build) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "criimage",
		"org.opencontainers.image.description": "conformance suite and test harness for the Kubernetes CRI ImageService",
		"org.opencontainers.image.version":     b.Version,
		"org.opencontainers.image.revision":    b.Revision,
		"org.opencontainers.image.created":     b.Time.Format(time.RFC3339),
		"org.opencontainers.image.source":      Source,
	}
}

func platformImage(bin Binary, build Build, ann map[string]string) (v1.Image, error) {
	layerTar, err := layerTar(bin.Path, build.Time)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("selfimage: layer of %s: %w", bin.Path, err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: build.Time}, CreatedBy: "criimage make image: " + path.Base(bin.Path) + " at " + BinaryPath,
	}})
	if err != nil {
		return nil, fmt.Errorf("selfimage: image of %s: %w", bin.Path, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = bin.OS, bin.Arch
	cf.Created = v1.Time{Time: build.Time}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = []string{"version"}
	cf.Config.WorkingDir = ResultsDir
	cf.Config.Env = []string{"PATH=/usr/bin", "TMPDIR=/tmp"}
	cf.Config.Volumes = map[string]struct{}{ResultsDir: {}}
	cf.Config.Labels = ann
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("selfimage: config of %s: %w", bin.Path, err)
	}
	img, ok := mutate.Annotations(img, ann).(v1.Image)
	if !ok {
		return nil, errors.New("selfimage: annotating an image did not give an image")
	}
	return img, nil
}

// layerTar is the one layer: /usr/bin/criimage (0755), /results (0777: the run may be any user)
// and /tmp (1777: the suite writes its registry's CA and hosts.toml files under TMPDIR), owned by
// root, every time set to the commit time.
func layerTar(binPath string, mtime time.Time) ([]byte, error) {
	data, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime, Format: tar.FormatPAX})
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"results/", 0o777}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/bin/", 0o755}} {
		if err := dir(d.name, d.mode); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: BinaryPath[1:], Mode: 0o755, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tag is the image's tag: its version, with a pseudo-version's "+dirty" (a "+" is not allowed in
// a tag) as "-dirty".
func (img *Image) Tag() string {
	tag := []byte(img.Build.Version)
	for i, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			tag[i] = '-'
		}
	}
	return string(tag)
}

// WriteLayout writes the image as an OCI image layout in dir (replaced): index.json names the
// index by its tag (org.opencontainers.image.ref.name) and as docker.io/library/REPO:TAG
// (io.containerd.image.name, for ctr import).
func (img *Image) WriteLayout(dir, repo string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("selfimage: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("selfimage: layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(img.Index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": img.Tag(),
		"io.containerd.image.name":          "docker.io/library/" + repo + ":" + img.Tag(),
	})); err != nil {
		return fmt.Errorf("selfimage: layout %s: %w", dir, err)
	}
	return nil
}

// WriteArchive writes the layout in dir as one tar (an "oci-archive"): files sorted by path,
// owned by root, mode 0644 (directories 0755), every time set to mtime.
func WriteArchive(dir, out string, mtime time.Time) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("selfimage: archive %s: %w", dir, err)
	}
	sort.Strings(files)
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("selfimage: %w", err)
	}
	tw := tar.NewWriter(f)
	for _, p := range files {
		if err := addToArchive(tw, dir, p, mtime); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("selfimage: archive %s: %w", out, err)
	}
	return f.Close()
}

func addToArchive(tw *tar.Writer, dir, p string, mtime time.Time) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("selfimage: %w", err)
	}
	name := filepath.ToSlash(rel)
	if fi.IsDir() {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("selfimage: %s is not a regular file", p)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: fi.Size(), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("selfimage: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("selfimage: archive %s: %w", p, err)
	}
	return nil
}

// Platforms lists the platforms of idx's manifests ("os/arch"), sorted.
func Platforms(idx v1.ImageIndex) ([]string, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range m.Manifests {
		if d.Platform != nil {
			out = append(out, d.Platform.OS+"/"+d.Platform.Architecture)
		}
	}
	slices.Sort(out)
	return out, nil
}
