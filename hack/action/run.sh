#!/usr/bin/env bash
# hack/action/run.sh — the criimage GitHub Action (action.yml at the repository root) as a script
# that runs anywhere: obtain criimage, run `criimage test` against the given endpoint, count the
# outcomes in results.json, write the action's outputs. docs/action.md describes it for users.
#
# Inputs, one per input of action.yml (INPUT_<NAME>, dashes as underscores; empty = not given):
#   INPUT_IMAGE_ENDPOINT       unix:///path or tcp://host:port; "embedded" = criimage's embedded
#                              reference ImageService (for trying the action)
#   INPUT_RUNTIME_ENDPOINT     --runtime-endpoint when this criimage has it, else exported as
#                              CRIIMAGE_RUNTIME_ENDPOINT
#   INPUT_FEATURES             one or more lines; each line is one --features value
#   INPUT_PROFILE              --profile, which needs a criimage that has it (none has yet)
#   INPUT_EXPECTATIONS INPUT_REGISTRY_CONFIG_DIR INPUT_FOCUS INPUT_SKIP INPUT_LABEL_FILTER
#                              the criimage test flags of the same names
#   INPUT_PARALLEL             N > 1: --parallel N when this criimage has it; else, when building
#                              from source, the suite's test binary under ginkgo -p; else ignored
#                              with a warning
#   INPUT_REPORT_DIR           default criimage-report (relative to the working directory)
#   INPUT_VERSION              release tag to download (or "latest"); default: the action's own
#                              ref when it is a vX.Y.Z tag, else the latest release
#   INPUT_BUILD_FROM_SOURCE    "true": go build ./cmd/criimage from this checkout of the action
#
# Other environment:
#   CRIIMAGE_ACTION_REF, CRIIMAGE_ACTION_REPOSITORY  github.action_ref / github.action_repository
#   CRIIMAGE_BIN               use this criimage binary: no download, no build (tests, offline use)
#   CRIIMAGE_RELEASE_BASE_URL  a mirror of https://github.com/OWNER/REPO/releases (same layout:
#                              download/TAG/NAME, latest → tag/TAG); http:// only on loopback
#   CRIIMAGE_ACTION_JSON       jq or python3: the results.json reader (default: jq, else python3)
#   GITHUB_OUTPUT              outputs are appended here as name=value lines; unset: printed
#   GITHUB_STEP_SUMMARY        criimage test appends its summary; if it did not, summary.md is
#   RUNNER_TEMP                where downloads and builds go (else $TMPDIR, /tmp); removed on exit
#   CRIIMAGE_* settings of criimage test itself (CRIIMAGE_RPC_TIMEOUT, CRIIMAGE_REGISTRY_PLAIN_ADDR,
#   …) reach it unchanged.
#
# Exit status: criimage's (0: every spec passed, was unsupported, informational or an expected
# failure); 2 for an invalid input; 1 when criimage cannot be obtained or verified.
set -euo pipefail

ACTION_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ACTION_ROOT
readonly DEFAULT_REPOSITORY=criimage/criimage
readonly STEP_SUMMARY_LIMIT=1048576 # GitHub's cap on one step's summary (1 MiB)

on_github() { [[ ${GITHUB_ACTIONS:-} == true ]]; }

# escape_command VALUE → VALUE escaped for a workflow command (%, CR and LF).
escape_command() {
	local s=${1//'%'/%25}
	s=${s//$'\r'/%0D}
	printf '%s' "${s//$'\n'/%0A}"
}

log() { printf 'criimage-action: %s\n' "$*"; }

# notice, warn and die write to stderr (the runner reads workflow commands there too), so that
# they work inside command substitutions.
notice() {
	if on_github; then
		printf '::notice title=criimage action::%s\n' "$(escape_command "$*")" >&2
	else
		printf 'criimage-action: note: %s\n' "$*" >&2
	fi
}

warn() {
	if on_github; then
		printf '::warning title=criimage action::%s\n' "$(escape_command "$*")" >&2
	else
		printf 'criimage-action: warning: %s\n' "$*" >&2
	fi
}

# die CODE MESSAGE: report MESSAGE and exit with CODE (the EXIT trap writes result=failure).
die() {
	local code=$1
	shift
	if on_github; then
		printf '::error title=criimage action::%s\n' "$(escape_command "$*")" >&2
	else
		printf 'criimage-action: error: %s\n' "$*" >&2
	fi
	exit "$code"
}

# trim VALUE → VALUE without leading and trailing white space.
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	printf '%s' "${s%"${s##*[![:space:]]}"}"
}

# input VAR INPUT_NAME: VAR = the trimmed value of INPUT_NAME, which must be one line.
input() {
	local value
	value=$(trim "${!2:-}")
	[[ $value != *$'\n'* && $value != *$'\r'* ]] || die 2 "input $(input_name "$2") must be one line"
	printf -v "$1" '%s' "$value"
}

# input_name INPUT_NAME → the action.yml input name (image-endpoint for INPUT_IMAGE_ENDPOINT).
input_name() {
	local n=${1#INPUT_}
	n=${n//_/-}
	printf '%s' "${n,,}"
}

# abspath PATH → PATH made absolute against the working directory (not resolved further).
abspath() {
	case $1 in
	/*) printf '%s' "$1" ;;
	*) printf '%s/%s' "$PWD" "${1#./}" ;;
	esac
}

report_dir=""
work=""
outputs_written=false

# ---- outputs ------------------------------------------------------------------------------------

# out NAME VALUE: one output (appended to $GITHUB_OUTPUT, or printed).
out() {
	if [[ -n ${GITHUB_OUTPUT:-} ]]; then
		printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
	else
		printf '%s=%s\n' "$1" "$2"
	fi
}

# read_outcomes FILE: the outcome of every entry of results.json, one per line.
read_outcomes() {
	local file=$1 tool=${CRIIMAGE_ACTION_JSON:-}
	if [[ -z $tool ]]; then
		if command -v jq >/dev/null 2>&1; then
			tool=jq
		elif command -v python3 >/dev/null 2>&1; then
			tool=python3
		else
			warn "neither jq nor python3 is installed: cannot count the outcomes in $file"
			return 1
		fi
	fi
	case $tool in
	jq)
		jq -r 'if type == "array" then .[] | (if type == "object" then .outcome // "" else "" end) | tostring
			else error("results.json is not a JSON array") end' "$file"
		;;
	python3)
		python3 - "$file" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)
if not isinstance(data, list):
    sys.exit("results.json is not a JSON array")
for entry in data:
    outcome = entry.get("outcome", "") if isinstance(entry, dict) else ""
    print(outcome if isinstance(outcome, str) else json.dumps(outcome))
PY
		;;
	esac
}

# write_outputs STATUS: the counts from results.json (0 without one) and result from STATUS.
write_outputs() {
	local status=$1 results=$report_dir/results.json outcomes o total=0
	local passed=0 failed=0 unsupported=0 informational=0 expected_failure=0 unexpected_pass=0 skipped=0
	if [[ -n $report_dir && -f $results ]]; then
		if outcomes=$(read_outcomes "$results"); then
			while IFS= read -r o; do
				[[ -n $o ]] || continue
				total=$((total + 1))
				case $o in
				passed) passed=$((passed + 1)) ;;
				failed) failed=$((failed + 1)) ;;
				unsupported) unsupported=$((unsupported + 1)) ;;
				informational) informational=$((informational + 1)) ;;
				expected-failure) expected_failure=$((expected_failure + 1)) ;;
				unexpected-pass) unexpected_pass=$((unexpected_pass + 1)) ;;
				skipped) skipped=$((skipped + 1)) ;;
				*) warn "results.json: unknown outcome '$o' (counted in total only)" ;;
				esac
			done <<<"$outcomes"
		else
			warn "could not read $results: the counts are 0"
		fi
	fi
	local result=success
	[[ $status == 0 ]] || result=failure
	[[ -n ${GITHUB_OUTPUT:-} ]] || log "outputs (GITHUB_OUTPUT is not set):"
	out passed "$passed"
	out failed "$failed"
	out unsupported "$unsupported"
	out informational "$informational"
	out expected-failure "$expected_failure"
	out unexpected-pass "$unexpected_pass"
	out skipped "$skipped"
	out total "$total"
	out report-dir "$report_dir"
	out result "$result"
	outputs_written=true
}

finish() {
	local status=$?
	trap - EXIT
	set +e
	$outputs_written || write_outputs "$status"
	[[ -z $work ]] || rm -rf "$work"
	exit "$status"
}
trap finish EXIT

# ---- inputs -------------------------------------------------------------------------------------

input image_endpoint INPUT_IMAGE_ENDPOINT
input runtime_endpoint INPUT_RUNTIME_ENDPOINT
input profile INPUT_PROFILE
input expectations INPUT_EXPECTATIONS
input registry_config_dir INPUT_REGISTRY_CONFIG_DIR
input focus INPUT_FOCUS
input skip INPUT_SKIP
input label_filter INPUT_LABEL_FILTER
input parallel INPUT_PARALLEL
input report_dir_input INPUT_REPORT_DIR
input version INPUT_VERSION
input build_from_source INPUT_BUILD_FROM_SOURCE
# features: one declaration per line (commas within a line work as on the command line).
features=()
while IFS= read -r line; do
	line=$(trim "${line%$'\r'}")
	[[ -z $line ]] || features+=("$line")
done <<<"${INPUT_FEATURES:-}"

# ---- validation ---------------------------------------------------------------------------------

[[ -n $image_endpoint ]] || die 2 "input image-endpoint is required (unix:///path/to.sock, tcp://host:port, or embedded)"
case ${build_from_source,,} in
"" | false) build_from_source=false ;;
true) build_from_source=true ;;
*) die 2 "input build-from-source must be true or false, not '$build_from_source'" ;;
esac
if [[ -n $parallel ]]; then
	[[ $parallel =~ ^[1-9][0-9]{0,2}$ ]] || die 2 "input parallel must be a whole number from 1 to 999, not '$parallel'"
fi
case ${CRIIMAGE_ACTION_JSON:-} in
"" | jq | python3) ;;
*) die 2 "CRIIMAGE_ACTION_JSON must be jq or python3, not '$CRIIMAGE_ACTION_JSON'" ;;
esac
if [[ -n $expectations ]]; then
	[[ -f $expectations ]] || die 2 "expectations file '$expectations' does not exist (relative paths start at $PWD: check out your repository before this step)"
	expectations=$(abspath "$expectations")
fi
[[ -z $registry_config_dir ]] || registry_config_dir=$(abspath "$registry_config_dir")
dir=$(abspath "${report_dir_input:-criimage-report}")
mkdir -p "$dir"
# A results.json left by an earlier run must not be counted as this run's (report_dir is set
# only after this: the EXIT trap counts what it finds there).
rm -f "$dir/results.json"
report_dir=$dir

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/criimage-action.XXXXXX")

# ---- the binary ---------------------------------------------------------------------------------

# release_asset: the release file name for this machine, in $asset.
release_asset() {
	local os arch
	os=$(uname -s)
	arch=$(uname -m)
	[[ $os == Linux ]] || die 1 "criimage releases for this action are Linux binaries; this runner runs $os (build-from-source: true builds criimage here instead)"
	case $arch in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) die 1 "unsupported architecture '$arch' (uname -m): criimage releases are built for x86_64 (amd64) and aarch64 (arm64); build-from-source: true builds criimage here instead" ;;
	esac
	asset=criimage-linux-$arch
}

# release_base: the releases URL (GitHub's or CRIIMAGE_RELEASE_BASE_URL) in $base, and the
# protocols curl may use in $proto: https, or http for a loopback mirror.
release_base() {
	local repo=${CRIIMAGE_ACTION_REPOSITORY:-} hostport host
	[[ -n $repo ]] || repo=$DEFAULT_REPOSITORY
	[[ $repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die 2 "'$repo' is not a GitHub repository (owner/name)"
	base=${CRIIMAGE_RELEASE_BASE_URL:-https://github.com/$repo/releases}
	base=${base%/}
	case $base in
	https://*) proto='=https' ;;
	http://*)
		hostport=${base#http://}
		hostport=${hostport%%/*}
		host=${hostport%:*}
		[[ $hostport != *@* ]] && [[ $host =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ || $host == localhost || $host == '[::1]' ]] ||
			die 2 "release URL $base: plain http is allowed only on loopback; use https"
		proto='=http'
		;;
	*) die 2 "release URL $base: want https://…" ;;
	esac
}

# fetch URL FILE
fetch() {
	curl --fail --location --silent --show-error --retry 3 --retry-delay 2 --connect-timeout 20 \
		--max-time 600 --proto "$proto" --proto-redir "$proto" --output "$2" "$1"
}

# sha256 FILE → its SHA-256 in hex.
sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

download_binary() {
	local asset base proto tag=$version effective url expected actual n
	release_asset
	release_base
	if [[ -z $tag ]]; then
		local ref=${CRIIMAGE_ACTION_REF:-}
		if [[ $ref =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$ ]]; then
			tag=$ref
			log "version $tag: the action's own ref"
		else
			tag=latest
			notice "criimage version: the latest release (the action's ref '${ref:-<none>}' is not a release tag vX.Y.Z; set the version input to pin one)"
		fi
	fi
	if [[ $tag == latest ]]; then
		# Resolve the tag first, so that the binary and SHA256SUMS come from one release.
		effective=$(curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 --max-time 60 \
			--proto "$proto" --proto-redir "$proto" --output /dev/null --write-out '%{url_effective}' "$base/latest") ||
			die 1 "could not resolve the latest release at $base/latest"
		[[ $effective == */tag/* ]] || die 1 "could not resolve the latest release: $base/latest led to $effective, not a release tag"
		tag=${effective##*/tag/}
		log "latest release: $tag"
	fi
	[[ $tag =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die 2 "version '$tag' is not a release tag"
	url=$base/download/$tag
	fetch "$url/SHA256SUMS" "$work/SHA256SUMS" || die 1 "could not download $url/SHA256SUMS (is $tag a release with a SHA256SUMS file?)"
	fetch "$url/$asset" "$work/$asset" || die 1 "could not download $url/$asset (does release $tag have a $asset binary?)"
	expected=$(awk -v name="$asset" '$2 == name || $2 == "*" name { print tolower($1) }' "$work/SHA256SUMS")
	n=$(grep -c . <<<"$expected" || true)
	[[ $n != 0 ]] || die 1 "SHA256SUMS of $tag has no line for $asset: refusing to run an unverified binary"
	[[ $n == 1 ]] || die 1 "SHA256SUMS of $tag has $n lines for $asset: refusing to run an unverified binary"
	[[ $expected =~ ^[0-9a-f]{64}$ ]] || die 1 "SHA256SUMS of $tag: '$expected' is not a SHA-256 for $asset: refusing to run an unverified binary"
	actual=$(sha256 "$work/$asset")
	[[ $actual == "$expected" ]] ||
		die 1 "checksum mismatch for $asset of $tag: SHA256SUMS says $expected, the download is $actual; refusing to run it (a corrupted download, or a tampered release or mirror)"
	mv "$work/$asset" "$work/criimage"
	chmod 0755 "$work/criimage"
	bin=$work/criimage
	log "downloaded $url/$asset: sha256 $actual matches SHA256SUMS"
}

build_binary() {
	command -v go >/dev/null 2>&1 || die 1 "build-from-source needs Go on PATH (actions/setup-go with go-version-file: the action's go.mod)"
	log "building criimage from $ACTION_ROOT ($(go version))"
	(cd "$ACTION_ROOT" && go build -o "$work/criimage" ./cmd/criimage) || die 1 "go build ./cmd/criimage failed in $ACTION_ROOT"
	bin=$work/criimage
}

bin=""
from_source=false
if [[ -n ${CRIIMAGE_BIN:-} ]]; then
	[[ -f $CRIIMAGE_BIN && -x $CRIIMAGE_BIN ]] || die 1 "CRIIMAGE_BIN=$CRIIMAGE_BIN is not an executable file"
	bin=$(abspath "$CRIIMAGE_BIN")
	log "using CRIIMAGE_BIN=$bin (no download, no build)"
	[[ $build_from_source == false ]] || warn "build-from-source is ignored: CRIIMAGE_BIN is set"
elif [[ $build_from_source == true ]]; then
	build_binary
	from_source=true
else
	download_binary
fi
if v=$("$bin" version 2>/dev/null); then
	log "criimage version: ${v%%$'\n'*}"
fi

# ---- the command line ---------------------------------------------------------------------------

help=$("$bin" test --help 2>&1 </dev/null) || true
# has_flag NAME: criimage test --help lists -NAME.
has_flag() { grep -Eq -- "^[[:space:]]*--?$1([[:space:]=]|\$)" <<<"$help"; }
has_flag image-endpoint || die 1 "$bin test --help lists no -image-endpoint: not a criimage with the test command?"

# cli: the criimage test arguments; suite: the same for the suite's test binary (ginkgo -p mode).
cli=(test)
suite=()
# flag NAME VALUE: --NAME VALUE for criimage, -NAME VALUE (-ginkgo.NAME for ginkgo's) for the suite.
flag() {
	cli+=("--$1" "$2")
	case $1 in
	focus | skip | label-filter) suite+=("-ginkgo.$1" "$2") ;;
	*) suite+=("-$1" "$2") ;;
	esac
}

if [[ $image_endpoint == embedded ]]; then
	cli+=(--embedded) # the suite's test binary starts the embedded reference when given no endpoint
else
	flag image-endpoint "$image_endpoint"
fi
if [[ -n $runtime_endpoint ]]; then
	if has_flag runtime-endpoint; then
		flag runtime-endpoint "$runtime_endpoint"
	else
		export CRIIMAGE_RUNTIME_ENDPOINT=$runtime_endpoint
		log "this criimage has no --runtime-endpoint: exported CRIIMAGE_RUNTIME_ENDPOINT"
	fi
fi
for f in "${features[@]}"; do
	flag features "$f"
done
if [[ -n $profile ]]; then
	has_flag profile || die 2 "input profile needs a criimage whose test command has --profile, and this one has none: declare the target's features instead"
	flag profile "$profile"
fi
[[ -z $expectations ]] || flag expectations "$expectations"
[[ -z $registry_config_dir ]] || flag registry-config-dir "$registry_config_dir"
[[ -z $focus ]] || flag focus "$focus"
[[ -z $skip ]] || flag skip "$skip"
[[ -z $label_filter ]] || flag label-filter "$label_filter"
flag report-dir "$report_dir"

procs=1
if [[ -n $parallel && $parallel -gt 1 ]]; then
	if has_flag parallel; then
		cli+=(--parallel "$parallel")
	elif $from_source; then
		procs=$parallel
	else
		warn "parallel: $parallel ignored: this criimage's test command has no --parallel, so the specs run in one process (build-from-source: true runs them under ginkgo -p)"
	fi
fi

# ---- the run ------------------------------------------------------------------------------------

summary_size() {
	if [[ -n ${GITHUB_STEP_SUMMARY:-} && -f $GITHUB_STEP_SUMMARY ]]; then
		wc -c <"$GITHUB_STEP_SUMMARY" | tr -d ' '
	else
		echo 0
	fi
}
summary_before=$(summary_size)

set +e
if ((procs > 1)); then
	suite_bin=$work/criimage-suite.test
	log "building the suite's test binary for ginkgo -p with $procs processes"
	(cd "$ACTION_ROOT" && go test -c -o "$suite_bin" ./suite) || die 1 "go test -c ./suite failed in $ACTION_ROOT"
	cmdline=$(printf '%q ' "$suite_bin" -- "${suite[@]}")
	log "running: ginkgo -p --procs $procs ${cmdline% }"
	(cd "$ACTION_ROOT" && go run github.com/onsi/ginkgo/v2/ginkgo -p --procs "$procs" --timeout 30m "$suite_bin" -- "${suite[@]}") </dev/null
	rc=$?
else
	cmdline=$(printf '%q ' "$bin" "${cli[@]}")
	log "running: ${cmdline% }"
	"$bin" "${cli[@]}" </dev/null
	rc=$?
fi
set -e
log "criimage test exited with status $rc"

# criimage test appends its summary to $GITHUB_STEP_SUMMARY; one that did not (an older release)
# gets summary.md appended here, within GitHub's 1 MiB.
if [[ -n ${GITHUB_STEP_SUMMARY:-} && $(summary_size) == "$summary_before" && -f $report_dir/summary.md ]]; then
	budget=$((STEP_SUMMARY_LIMIT - summary_before - 200))
	if (($(wc -c <"$report_dir/summary.md") <= budget)); then
		cat "$report_dir/summary.md" >>"$GITHUB_STEP_SUMMARY"
	elif ((budget > 0)); then
		{
			head -c "$budget" "$report_dir/summary.md" | sed '$d'
			printf '\n**Truncated** (GitHub keeps 1 MiB of step summary): summary.md in the report holds all of it.\n'
		} >>"$GITHUB_STEP_SUMMARY"
	fi
fi

write_outputs "$rc"
exit "$rc"
