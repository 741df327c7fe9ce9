# Release (owner: packaging): static binaries + SHA256SUMS in dist/, the OCI image of criimage,
# and the checks that both are what they claim (reproducible bytes; a real, runnable image).

.PHONY: release release-check

## release [PLATFORMS="linux/amd64 linux/arm64 windows/amd64"] [ALLOW_DIRTY=1]: static binaries
## and SHA256SUMS in dist/ (hack/release.sh).
release:
	bash hack/release.sh

## release-check [COLD=0]: two clones at different paths build byte-identical releases with no
## local path inside (hack/release-check.sh).
release-check:
	bash hack/release-check.sh

.PHONY: image image-check

## image: criimage's OCI image (linux/amd64 + linux/arm64 index) from the release binaries:
## dist/image (OCI layout) and dist/criimage-image.oci.tar (hack/mkimage, internal/selfimage).
image:
	@test -x dist/criimage-linux-amd64 -a -x dist/criimage-linux-arm64 || { echo "image: no release binaries in dist/: run make release first" >&2; exit 1; }
	go run ./hack/mkimage -dist dist

## image-check: the image is real: pushed to the fixture registry, its binary run from the layer,
## pulled through the release binary's `criimage serve` (internal/selfimage TestReleaseImage).
## The containerd gates run the same test against their daemon when CRIIMAGE_DIST is set.
image-check:
	CRIIMAGE_DIST=$(abspath dist) CRIIMAGE_REQUIRE_IMAGE=1 go test -count=1 -run '^TestReleaseImage$$' -v ./internal/selfimage
