#!/usr/bin/env bash
# release-check.sh — prove the release reproducible: clone HEAD twice, at two different paths,
# build the release in each (the second with an empty build cache unless COLD=0, so no compiled
# package is shared), and require byte-identical binaries (equal SHA256SUMS), no local path in any
# binary, and a stamped version whose revision is HEAD and which is not "modified".
#
# Environment: PLATFORMS (as release.sh), COLD (1: second build with an empty GOCACHE).
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
COLD=${COLD:-1}

tmp=$(mktemp -d /tmp/criimage-release-check.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

head=$(git -C "$ROOT_DIR" rev-parse HEAD)
a=$tmp/a/criimage
b=$tmp/second/clone/at/a/longer/path/criimage
for dir in "$a" "$b"; do
	git clone -q "$ROOT_DIR" "$dir"
	git -C "$dir" checkout -q "$head"
done

start=$SECONDS
DIST=$tmp/dist-a bash "$a/hack/release.sh" >/dev/null
echo "release-check: first build in $((SECONDS - start))s"
start=$SECONDS
if [[ $COLD == 1 ]]; then
	GOCACHE=$tmp/gocache DIST=$tmp/dist-b bash "$b/hack/release.sh" >/dev/null
else
	DIST=$tmp/dist-b bash "$b/hack/release.sh" >/dev/null
fi
echo "release-check: second build (cold cache: $COLD) in $((SECONDS - start))s"

fail=0
if ! cmp -s "$tmp/dist-a/SHA256SUMS" "$tmp/dist-b/SHA256SUMS"; then
	echo "release-check: the two builds differ:" >&2
	diff "$tmp/dist-a/SHA256SUMS" "$tmp/dist-b/SHA256SUMS" >&2 || true
	fail=1
fi
(cd "$tmp/dist-a" && sha256sum --quiet -c SHA256SUMS) || { echo "release-check: SHA256SUMS does not match the binaries" >&2; fail=1; }

# No path of this machine may be in a binary: not the clones, not the module cache, not $HOME.
for bin in "$tmp"/dist-a/criimage-*; do
	for p in "$tmp" "$ROOT_DIR" "$(go env GOMODCACHE)" "$(go env GOROOT)" "$HOME/"; do
		if grep -qaF "$p" "$bin"; then
			echo "release-check: $(basename "$bin") contains the local path $p" >&2
			fail=1
		fi
	done
done

goarch=$(go env GOARCH)
host_bin=$tmp/dist-a/criimage-linux-$goarch
if [[ -x $host_bin ]]; then
	v=$("$host_bin" version --json)
	rev=$(sed -n 's/^  "revision": "\(.*\)",$/\1/p' <<<"$v")
	modified=$(sed -n 's/^  "modified": \(.*\),$/\1/p' <<<"$v")
	if [[ $rev != "$head" || $modified != false ]]; then
		echo "release-check: the binary says revision '$rev' modified '$modified', want $head and false:" >&2
		echo "$v" >&2
		fail=1
	fi
	"$host_bin" version | head -1
fi
[[ $fail == 0 ]] || exit 1
echo "release-check: reproducible:"
cat "$tmp/dist-a/SHA256SUMS"
