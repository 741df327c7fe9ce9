#!/usr/bin/env bash
# flake-census.sh — run every gate and the reference suite RUNS times and count, per spec and
# target, how often each outcome (passed, failed, expected-failure, unexpected-pass, unsupported,
# …) came up. A spec that is not "stable" (one outcome in every run) is either the runtime's own
# timing — its expectation must be `either`, with the measured rate — or a flaw of ours to fix.
#
# Rounds are interleaved (round 1: every target, round 2: every target, …) so that a slow phase
# of the machine spreads over all targets instead of hitting one.
#
# Environment:
#   RUNS    runs per target (10)
#   GATES   targets (default: reference containerd-2.4.2 containerd-2.4.2-local containerd-1.6.20);
#           "reference" is `criimage test --embedded`, "containerd-VERSION[-local]" is
#           hack/containerd-gate.sh VERSION (with PULL_PATH=local for -local)
#   FOCUS   a --focus regexp, to rerun only the suspects
#   LOAD    a command run over and over in the background during the census (e.g. "make
#           test-race"), to measure a busy machine; recorded in the census
#   NAME    the census's name (quiet, or loaded when LOAD is set)
#   OUT     where the runs' reports go (_output/census/NAME); the census is OUT/census.json and
#           OUT/census.md
#   CRIIMAGE_BIN  a built criimage (default: built into OUT)
# Gates need root (see hack/containerd-gate.sh); the reference does not.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT_DIR"
export PATH="$PATH:/usr/local/go/bin"

RUNS=${RUNS:-10}
GATES=${GATES:-reference containerd-2.4.2 containerd-2.4.2-local containerd-1.6.20}
FOCUS=${FOCUS:-}
LOAD=${LOAD:-}
if [[ -n $LOAD ]]; then NAME=${NAME:-loaded}; else NAME=${NAME:-quiet}; fi
OUT=${OUT:-$ROOT_DIR/_output/census/$NAME}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "census: RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
for g in $GATES; do
	[[ $g == reference || $g =~ ^containerd-[0-9]+\.[0-9]+\.[0-9]+(-local)?$ ]] ||
		{ echo "census: unknown target '$g' (reference or containerd-VERSION[-local])" >&2; exit 2; }
done

rm -rf "$OUT"
mkdir -p "$OUT"
if [[ -z ${CRIIMAGE_BIN:-} ]]; then
	CRIIMAGE_BIN=$OUT/criimage
	go build -o "$CRIIMAGE_BIN" ./cmd/criimage
fi
export CRIIMAGE_BIN

load_pid=""
stop_load() {
	if [[ -n $load_pid ]]; then
		kill -TERM -- "-$load_pid" 2>/dev/null || true
		wait "$load_pid" 2>/dev/null || true
		load_pid=""
	fi
}
trap stop_load EXIT
trap 'exit 130' INT TERM
if [[ -n $LOAD ]]; then
	# Its own process group, so that stopping it stops every process it started.
	# Each iteration's output and exit status go to OUT/load/: a load such as make test-race is
	# itself a run of tests that must not flake.
	mkdir -p "$OUT/load"
	setsid bash -c 'i=0; while :; do i=$((i + 1)); start=$SECONDS; rc=0; '"$LOAD"' >"'"$OUT"'/load/run-$i.log" 2>&1 || rc=$?; echo "load run $i: exit $rc in $((SECONDS - start))s" >>"'"$OUT"'/load/summary.txt"; done' &
	load_pid=$!
	echo "census: background load: $LOAD (pid $load_pid)"
fi

focus_args=()
[[ -n $FOCUS ]] && focus_args=(--focus "$FOCUS")

# run_one TARGET DIR: one run of one target; its exit status and wall time go to DIR/census-run.json.
run_one() {
	local target=$1 dir=$2 rc=0 start end
	mkdir -p "$dir"
	start=$(date +%s%N)
	case $target in
	reference)
		"$CRIIMAGE_BIN" test --embedded --report-dir "$dir" "${focus_args[@]}" >"$dir/run.log" 2>&1 || rc=$?
		;;
	containerd-*-local)
		local v=${target#containerd-}
		PULL_PATH=local REPORT_DIR=$dir bash hack/containerd-gate.sh "${v%-local}" "${focus_args[@]}" >"$dir/run.log" 2>&1 || rc=$?
		;;
	containerd-*)
		REPORT_DIR=$dir bash hack/containerd-gate.sh "${target#containerd-}" "${focus_args[@]}" >"$dir/run.log" 2>&1 || rc=$?
		;;
	esac
	end=$(date +%s%N)
	printf '{"target": "%s", "exit_code": %d, "started": "%s", "wall_seconds": %d.%03d}\n' "$target" "$rc" \
		"$(date -u -d "@$((start / 1000000000))" +%FT%TZ)" $(((end - start) / 1000000000)) $((((end - start) / 1000000) % 1000)) >"$dir/census-run.json"
	echo "census: $target run $(basename "$dir"): exit $rc in $(((end - start) / 1000000000))s"
}

started=$(date -u +%FT%TZ)
for ((i = 1; i <= RUNS; i++)); do
	for g in $GATES; do
		run_one "$g" "$OUT/$g/$(printf 'run-%02d' "$i")"
	done
done
stop_load

census_args=(-in "$OUT" -o "$OUT/census.json" -md "$OUT/census.md" -name "$NAME" -started "$started"
	-commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
	-machine "$(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r)")
[[ -n $LOAD ]] && census_args+=(-load "$LOAD")
[[ -n $FOCUS ]] && census_args+=(-focus "$FOCUS")
go run ./hack/census "${census_args[@]}"
echo "census: $OUT/census.json, $OUT/census.md"
