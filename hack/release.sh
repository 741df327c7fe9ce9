#!/usr/bin/env bash
# release.sh — the release binaries of criimage: static (CGO off), -trimpath, no build ID, the
# version stamped by the Go toolchain from the VCS state (a tag vX.Y.Z on HEAD gives vX.Y.Z,
# otherwise a pseudo-version), for each platform in PLATFORMS, into DIST, with a SHA256SUMS file.
# Two runs on the same commit with the same Go toolchain give the same bytes (hack/release-check.sh
# proves it from two clones at different paths, one with a cold build cache).
#
# Environment:
#   DIST         output directory (dist)
#   PLATFORMS    GOOS/GOARCH list (linux/amd64 linux/arm64 windows/amd64)
#   ALLOW_DIRTY  1 to build from a tree with uncommitted changes (the version then ends in +dirty);
#                refused otherwise, as such a binary cannot be rebuilt by anyone else
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
export PATH="$PATH:/usr/local/go/bin"

DIST=${DIST:-dist}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 windows/amd64}

if [[ -n "$(git status --porcelain 2>/dev/null)" && ${ALLOW_DIRTY:-} != 1 ]]; then
	echo "release: the tree has uncommitted changes (git status); commit them, or ALLOW_DIRTY=1 for a +dirty build" >&2
	exit 1
fi

mkdir -p "$DIST"
rm -f "$DIST"/criimage-* "$DIST/SHA256SUMS"
names=()
for p in $PLATFORMS; do
	goos=${p%/*} goarch=${p#*/}
	[[ $goos && $goarch && $p == */* ]] || { echo "release: bad platform '$p' (want GOOS/GOARCH)" >&2; exit 2; }
	name=criimage-$goos-$goarch
	[[ $goos == windows ]] && name+=.exe
	# Everything that changes the bytes is pinned here, not taken from the caller's environment:
	# no cgo, the baseline instruction sets, no build ID, paths trimmed, VCS stamping on (this
	# overrides a GOFLAGS=-buildvcs=false), the module graph as go.sum says.
	env -u GOFLAGS CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" GOAMD64=v1 GOARM64=v8.0 \
		go build -trimpath -buildvcs=auto -mod=readonly -ldflags='-s -w -buildid=' \
		-o "$DIST/$name" ./cmd/criimage
	names+=("$name")
	echo "release: $DIST/$name"
done
(cd "$DIST" && sha256sum "${names[@]}" > SHA256SUMS)
echo "release: $DIST/SHA256SUMS"
cat "$DIST/SHA256SUMS"
