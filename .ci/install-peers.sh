#!/usr/bin/env bash
# Install the real CRI runtimes the containerd gates run against, idempotently:
#   - containerd 1.6.20 and runc from Debian (apt), at /usr/bin/containerd;
#   - containerd v2.4.2, v2.3.7 and v2.2.9 built from the Go module proxy, each into its own
#     cached GOBIN ($PREFIX/containerd-vX/bin, never ~/go/bin, so none shadows the Debian one);
#   - crictl v1.37.0 (cri-tools) into $PREFIX/bin.
# Prints the located binaries as shell assignments at the end. Needs root for apt.
set -euo pipefail

PREFIX=${CRIIMAGE_PEERS_PREFIX:-/opt/criimage}
# The 2.x gates, newest first (issue #14's runtime matrix); each is built only if its GOBIN does
# not hold that version yet.
CONTAINERD2_VERSIONS=(2.4.2 2.3.7 2.2.9)
CONTAINERD1_VERSION=1.6.20
CRICTL_VERSION=1.37.0

export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "install-peers: go is not on PATH" >&2; exit 1; }

log() { echo "install-peers: $*" >&2; }

# module_version BINARY MODULE → the version of MODULE the Go binary was built from ("" if none).
module_version() {
	go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
}

# go_install GOBIN MODULE_PATH@VERSION MODULE: build unless GOBIN already holds that version.
go_install() {
	local gobin=$1 pkg=$2 module=$3
	local want=${pkg##*@} bin
	bin="$gobin/$(basename "${pkg%@*}")"
	if [[ -x $bin && "$(module_version "$bin" "$module")" == "$want" ]]; then
		log "$bin is $module $want (cached)"
		return
	fi
	log "building $pkg into $gobin"
	mkdir -p "$gobin"
	# Outside any module, so the project's go.mod does not take part; CGO off: no C toolchain needed.
	(cd / && GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS='' go install "$pkg")
	[[ "$(module_version "$bin" "$module")" == "$want" ]] || { log "$bin is not $module $want after install"; exit 1; }
}

# containerd 1.6.20 + runc (Debian bookworm).
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
if [[ "$(deb_version containerd)" != "$CONTAINERD1_VERSION"* || -z "$(deb_version runc)" ]]; then
	[[ $(id -u) == 0 ]] || { log "containerd $CONTAINERD1_VERSION and runc must be installed from apt: run as root"; exit 1; }
	log "apt-get install containerd runc"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# policy-rc.d keeps the package from starting a system containerd (the gates start their own).
	had_policy=false
	if [[ -e /usr/sbin/policy-rc.d ]]; then had_policy=true; fi
	if ! $had_policy; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; fi
	apt-get install -y -qq containerd runc >/dev/null
	if ! $had_policy; then rm -f /usr/sbin/policy-rc.d; fi
fi
v1=$(deb_version containerd)
[[ $v1 == "$CONTAINERD1_VERSION"* ]] || { log "Debian's containerd is $v1, not $CONTAINERD1_VERSION: the 1.6 expectations are for $CONTAINERD1_VERSION"; exit 1; }
log "containerd $v1 at /usr/bin/containerd, runc $(deb_version runc)"

for v in "${CONTAINERD2_VERSIONS[@]}"; do
	go_install "$PREFIX/containerd-v$v/bin" \
		"github.com/containerd/containerd/v2/cmd/containerd@v$v" github.com/containerd/containerd/v2
done
go_install "$PREFIX/bin" "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION" sigs.k8s.io/cri-tools

echo "CONTAINERD_1_6_20_BIN=/usr/bin/containerd"
for v in "${CONTAINERD2_VERSIONS[@]}"; do
	echo "CONTAINERD_${v//./_}_BIN=$PREFIX/containerd-v$v/bin/containerd"
done
echo "CRICTL_BIN=$PREFIX/bin/crictl"
