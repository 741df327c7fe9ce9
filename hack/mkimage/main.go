// Command mkimage builds criimage's OCI image (internal/selfimage) from the linux release
// binaries in a dist directory: an OCI image layout and a tar of it (for ctr import, skopeo,
// podman load), and prints the index digest. `make image` runs it after `make release`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/criimage/criimage/internal/selfimage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	dist := fs.String("dist", "dist", "directory of the release binaries (criimage-linux-ARCH)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms of the image, comma-separated")
	out := fs.String("layout", "", "OCI image layout directory to write (default DIST/image)")
	archive := fs.String("archive", "", "tar of the layout to write (default DIST/criimage-image.oci.tar)")
	repo := fs.String("repo", selfimage.DefaultRepo, "image name recorded in the layout's index.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(*dist, "image")
	}
	if *archive == "" {
		*archive = filepath.Join(*dist, "criimage-image.oci.tar")
	}
	var bins []selfimage.Binary
	for _, p := range strings.Split(*platforms, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos == "" || goarch == "" {
			return fmt.Errorf("platform %q: want OS/ARCH", p)
		}
		bins = append(bins, selfimage.Binary{OS: goos, Arch: goarch, Path: filepath.Join(*dist, "criimage-"+goos+"-"+goarch)})
	}
	img, err := selfimage.New(bins)
	if err != nil {
		return err
	}
	if err := img.WriteLayout(*out, *repo); err != nil {
		return err
	}
	if err := selfimage.WriteArchive(*out, *archive, img.Build.Time); err != nil {
		return err
	}
	d, err := img.Index.Digest()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dist, "criimage-image.digest"), []byte(d.String()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("mkimage: %s:%s %s\nmkimage: layout %s\nmkimage: archive %s\n", *repo, img.Tag(), d, *out, *archive)
	return nil
}
