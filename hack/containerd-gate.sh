#!/usr/bin/env bash
# containerd-gate.sh VERSION — run criimage against a real containerd as a peer of the reference.
#
#   1. locate the daemon (VERSION 1.6.20: Debian's /usr/bin/containerd; 2.4.2, 2.3.7, 2.2.9: the
#      ones .ci/install-peers.sh built) and crictl;
#   2. write its config under a fresh temp dir (criimage config containerd): own root, state,
#      socket, certs.d; CRI on, no CNI, NRI off;
#   3. make the fixture TLS name (registry.criimage.test) resolve to 127.0.0.1 — an /etc/hosts
#      line, added only if the name does not resolve yet, removed on exit;
#   4. start the daemon with every proxy variable pointing at a dead loopback port and NO_PROXY
#      covering only loopback and the fixture name, so nothing can leave 127.0.0.0/8;
#   5. wait for the CRI socket (bounded; on failure print the daemon log tail);
#   6. smoke check (go test -run TestLiveRuntime: plain, docker.io mirror, TLS name and address;
#      with CRIIMAGE_DIST, TestReleaseImage: criimage's own image pulled by the daemon),
#      then the conformance suite when "criimage test" is available;
#   7. stop the daemon and remove everything it created — also on failure (trap).
#
# Environment: CONTAINERD_BIN, CRICTL_BIN, CRIIMAGE_BIN (default: built into the temp dir),
# SNAPSHOTTER (overlayfs), GATE_MODE (auto | smoke | suite), REPORT_DIR
# (_output/gates/containerd-VERSION), READY_TIMEOUT (seconds, 30), PULL_PATH (2.x: transfer|local),
# PROFILE (suite/profiles/containerd-VERSION[-local].yaml: features and expectations), FEATURES
# (more --features over the profile's) / EXPECTATIONS (another file), CONFIG_PATH_ROOTS (2: the
# certs.d is the second of two config_path roots), CONFIG_ARGS (more "criimage config" flags),
# PROGRESS_TIMEOUT (2.x, default 10s; 0 = "0s", no timeout), GINKGO_PROCS (N > 1: criimage test
# --parallel N; Serial specs still run alone).
set -euo pipefail

usage() { echo "usage: $0 VERSION   (2.4.2, 2.3.7, 2.2.9 or 1.6.20)" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
VERSION=$1
shift

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
export PATH="$PATH:/usr/local/go/bin"
PEERS_PREFIX=${CRIIMAGE_PEERS_PREFIX:-/opt/criimage}
TLS_NAME=registry.criimage.test
SNAPSHOTTER=${SNAPSHOTTER:-overlayfs}
GATE_MODE=${GATE_MODE:-auto}
READY_TIMEOUT=${READY_TIMEOUT:-30}
PULL_PATH=${PULL_PATH:-transfer}
suffix=""
[[ $PULL_PATH == local ]] && suffix="-local"
report_suffix=$suffix
[[ $GATE_MODE == smoke ]] && report_suffix+="-smoke" # a smoke run never overwrites a suite run's reports
REPORT_DIR=${REPORT_DIR:-$ROOT_DIR/_output/gates/containerd-$VERSION$report_suffix}

# What each version declares to the suite (features, expectations) is its profile,
# suite/profiles/containerd-VERSION[-local].yaml; here only the daemon config that goes with it.
# The suite gets the profile plus what only this run knows (endpoint, certs.d, restart command)
# and any override: FEATURES (more --features, replacing the profile's values of the features
# they name), EXPECTATIONS (another file), PROGRESS_TIMEOUT (2.x).
PROFILE=${PROFILE:-$ROOT_DIR/suite/profiles/containerd-$VERSION$suffix.yaml}
[[ -f $PROFILE ]] || { echo "gate: no profile $PROFILE" >&2; exit 2; }
FEATURE_OVERRIDES=${FEATURES:-}
case $VERSION in
2.4.2 | 2.3.7 | 2.2.9)
	# The same config for each 2.x (checked in each version's source): all three read config
	# version 3 (version.ConfigVersion is 4 in 2.3 and 2.4, migrated on load; 3 in 2.2), and all
	# have pinned_images, use_local_image_pull, image_pull_progress_timeout, per-handler
	# snapshotters and the transfer plugin's config_path.
	CONTAINERD_BIN=${CONTAINERD_BIN:-$PEERS_PREFIX/containerd-v$VERSION/bin/containerd}
	# The profile's runtime-handler=criimage-native and pinned=docker.io/library/pause:criimage
	# (criimage config's default sandbox image) are what this config sets up.
	CONFIG_EXTRA=(--runtime-handler criimage-native=native)
	# PROGRESS_TIMEOUT: image_pull_progress_timeout (the profile declares 10s); 0 writes "0s" (no
	# timeout: #14158 hangs).
	PROGRESS_TIMEOUT=${PROGRESS_TIMEOUT:-10s}
	if [[ $PROGRESS_TIMEOUT == 0 || $PROGRESS_TIMEOUT == 0s ]]; then
		CONFIG_EXTRA+=(--no-pull-progress-timeout)
		FEATURE_OVERRIDES+="${FEATURE_OVERRIDES:+,}progress-timeout=0"
	else
		CONFIG_EXTRA+=(--pull-progress-timeout "$PROGRESS_TIMEOUT")
		[[ $PROGRESS_TIMEOUT == 10s ]] || FEATURE_OVERRIDES+="${FEATURE_OVERRIDES:+,}progress-timeout=$PROGRESS_TIMEOUT"
	fi
	;;
1.6.20)
	CONTAINERD_BIN=${CONTAINERD_BIN:-/usr/bin/containerd}
	CONFIG_EXTRA=()
	[[ $PULL_PATH == transfer ]] || { echo "gate: PULL_PATH is a 2.x setting" >&2; exit 2; }
	;;
*) usage ;;
esac
EXPECTATIONS=${EXPECTATIONS:-}
# For gate.json: the profile's features (its only YAML list) and the overrides.
FEATURES_DESC=$(sed -n 's/^  - //p' "$PROFILE" | paste -sd, -)${FEATURE_OVERRIDES:+ + $FEATURE_OVERRIDES}
if [[ -z ${CRICTL_BIN:-} ]]; then
	CRICTL_BIN=$PEERS_PREFIX/bin/crictl
	[[ -x $CRICTL_BIN ]] || CRICTL_BIN=$(command -v crictl || true)
fi

die() { echo "gate: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "containerd needs root: run as root"
[[ -x $CONTAINERD_BIN ]] || die "no containerd at $CONTAINERD_BIN: run .ci/install-peers.sh"
[[ -n $CRICTL_BIN && -x $CRICTL_BIN ]] || die "no crictl: run .ci/install-peers.sh"
actual=$("$CONTAINERD_BIN" --version)
[[ $actual == *" $VERSION"* || $actual == *" v$VERSION"* ]] || die "$CONTAINERD_BIN is not $VERSION: $actual"

gate_start=$(date +%s%N)
TMP=$(mktemp -d /tmp/criimage-gate.XXXXXX)
HOSTS_MARK="# criimage-gate:$$"
HOSTS_ADDED=false

cleanup() {
	local rc=$?
	set +e
	if [[ -f $TMP/daemon.env ]]; then
		bash "$ROOT_DIR/hack/containerd-daemon.sh" stop "$TMP"
	fi
	# Unmount anything the daemon left mounted under the temp dir (deepest first).
	awk -v t="$TMP/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" || echo "gate: could not unmount $m" >&2
	done
	if $HOSTS_ADDED; then
		# Rewrite in place (no rename): /etc/hosts may be a bind mount.
		grep -vF "$HOSTS_MARK" /etc/hosts >"$TMP/hosts.new" && cat "$TMP/hosts.new" >/etc/hosts
		grep -qF "$HOSTS_MARK" /etc/hosts && echo "gate: could not remove the /etc/hosts line '$HOSTS_MARK'" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$REPORT_DIR"
if [[ -z ${CRIIMAGE_BIN:-} ]]; then
	CRIIMAGE_BIN=$TMP/criimage
	go build -o "$CRIIMAGE_BIN" ./cmd/criimage
fi

# 2. Config.
config_args=(containerd --dir "$TMP/cd" --version "$VERSION" --snapshotter "$SNAPSHOTTER" "${CONFIG_EXTRA[@]}")
[[ $PULL_PATH == local ]] && config_args+=(--local-pull)
if [[ ${CONFIG_PATH_ROOTS:-1} == 2 ]]; then
	# config_path = "<empty root>:<certs.d>" (2.x's transfer path ignores multi-root paths: #12415).
	config_args+=(--certs-dir "$TMP/cd/certs-first" --certs-dir "$TMP/cd/certs.d")
fi
# CONFIG_ARGS: more "criimage config containerd" flags, e.g. --no-pull-progress-timeout.
read -r -a extra_config <<<"${CONFIG_ARGS:-}"
config_args+=("${extra_config[@]}")
config_out=$("$CRIIMAGE_BIN" config "${config_args[@]}") # (errexit applies here, not inside eval "$(…)")
eval "$config_out"
[[ ${CONFIG_PATH_ROOTS:-1} == 2 ]] && CONTAINERD_CERTS_DIR=$TMP/cd/certs.d
echo "gate: containerd $VERSION ($CONTAINERD_BIN), config $CONTAINERD_CONFIG, snapshotter $SNAPSHOTTER, pull path $PULL_PATH"

# 3. Name resolution for the fixture TLS host.
# Our own marker line, unless the name resolves to loopback without any gate's line (then it is
# configured permanently): concurrent gates each add and remove their own line.
addr=$(getent hosts "$TLS_NAME" | awk '{ print $1; exit }' || true)
if [[ $addr != 127.* ]] || grep -qF '# criimage-gate:' /etc/hosts; then
	printf '127.0.0.1 %s %s\n' "$TLS_NAME" "$HOSTS_MARK" >>/etc/hosts
	HOSTS_ADDED=true
	echo "gate: added '127.0.0.1 $TLS_NAME' to /etc/hosts (removed on exit)"
fi

# 4./5. Start, with no way out of loopback, and wait for CRI (bounded).
{
	printf 'CONTAINERD_BIN=%q\nCONTAINERD_CONFIG=%q\nCONTAINERD_LOG=%q\n' "$CONTAINERD_BIN" "$CONTAINERD_CONFIG" "$CONTAINERD_LOG"
	printf 'CONTAINERD_SOCKET=%q\nCONTAINERD_ENDPOINT=%q\nCRICTL_BIN=%q\n' "$CONTAINERD_SOCKET" "$CONTAINERD_ENDPOINT" "$CRICTL_BIN"
	printf 'READY_TIMEOUT=%q\nNO_PROXY_HOSTS=%q\n' "$READY_TIMEOUT" "localhost,127.0.0.0/8,::1,$TLS_NAME"
} >"$TMP/daemon.env"
bash "$ROOT_DIR/hack/containerd-daemon.sh" start "$TMP"
ready=$(<"$TMP/ready-seconds")
echo "gate: CRI ready in ${ready}s"
"$CRICTL_BIN" --config /dev/null --runtime-endpoint "$CONTAINERD_ENDPOINT" version 2>/dev/null | sed 's/^/gate:   /'
RESTART_CMD="bash $ROOT_DIR/hack/containerd-daemon.sh restart $TMP"

# 6. Smoke check, then the suite.
result=pass
# With CRIIMAGE_DIST (a dist/ after make release image), the daemon also pulls criimage's own
# image (internal/selfimage TestReleaseImage); without it that test skips.
# -p 1: one package at a time, so neither sees the other's image in the daemon's store.
CRIIMAGE_CRI_ENDPOINT=$CONTAINERD_ENDPOINT CRIIMAGE_CERTS_DIR=$CONTAINERD_CERTS_DIR \
	go test -count=1 -p 1 -run '^(TestLiveRuntime|TestReleaseImage)$' -v ./registry/runtimeconfig ./internal/selfimage >"$REPORT_DIR/smoke.log" 2>&1 || result=fail
grep -E '^(=== RUN|--- |\s+live_test.go|ok|FAIL|PASS)' "$REPORT_DIR/smoke.log" | sed 's/^/gate: smoke: /' || true
[[ $result == pass ]] || { echo "gate: smoke check failed; daemon log tail:" >&2; tail -n 30 "$CONTAINERD_LOG" >&2; }

suite=skipped
if [[ $result == pass && $GATE_MODE != smoke ]]; then
	test_help=$("$CRIIMAGE_BIN" test --help 2>&1 || true)
	if [[ $test_help == *-profile* ]]; then
		suite=run
		test_args=(test --profile "$PROFILE" --image-endpoint "$CONTAINERD_ENDPOINT" --features "restart=$RESTART_CMD"
			--registry-config-dir "$CONTAINERD_CERTS_DIR" --report-dir "$REPORT_DIR")
		[[ -n $FEATURE_OVERRIDES ]] && test_args+=(--features "$FEATURE_OVERRIDES")
		[[ -n $EXPECTATIONS ]] && test_args+=(--expectations "$EXPECTATIONS")
		if [[ ${GINKGO_PROCS:-1} -gt 1 ]]; then
			[[ $test_help == *-parallel* ]] || die "GINKGO_PROCS=$GINKGO_PROCS: this criimage has no 'test --parallel'"
			test_args+=(--parallel "$GINKGO_PROCS")
		fi
		echo "gate: criimage ${test_args[*]} $*"
		"$CRIIMAGE_BIN" "${test_args[@]}" "$@" || result=fail
	elif [[ $GATE_MODE == suite ]]; then
		die "GATE_MODE=suite but 'criimage test' is not available yet"
	else
		echo "gate: 'criimage test' is not available yet: smoke check only"
	fi
fi

cp "$CONTAINERD_CONFIG" "$REPORT_DIR/config.toml"
# The daemon log shows deviations such as ParseAuth echoing a decoded credential: keep the copy in
# the report free of the fixture password (registry/auth.FixturePassword, a documented fixture value).
sed 's/criimage-password/<redacted:fixture-password>/g' "$CONTAINERD_LOG" >"$REPORT_DIR/containerd.log"
wall_ms=$((($(date +%s%N) - gate_start) / 1000000))
wall=$(printf '%d.%03d' $((wall_ms / 1000)) $((wall_ms % 1000)))
cat >"$REPORT_DIR/gate.json" <<JSON
{"runtime": "containerd", "version": "$VERSION", "binary_version": "$actual", "snapshotter": "$SNAPSHOTTER",
 "pull_path": "$PULL_PATH", "profile": "${PROFILE#"$ROOT_DIR"/}", "features": "$FEATURES_DESC", "started": "$(date -u -d "@$((gate_start / 1000000000))" +%FT%TZ)",
 "socket_ready_seconds": $ready, "wall_seconds": $wall, "suite": "$suite", "result": "$result"}
JSON
echo "gate: containerd $VERSION: $result (suite $suite) in ${wall}s; report in $REPORT_DIR"
[[ $result == pass ]]
