# Real runtimes as peers: containerd 2.4.2, 2.3.7, 2.2.9 and 1.6.20 gates (hack/containerd-gate.sh).
# Owner: runtimes. Needs root; `make install-peers` first (CI: .ci/install-peers.sh).

CONTAINERD_VERSIONS ?= 2.4.2 2.3.7 2.2.9 1.6.20

.PHONY: install-peers conformance-containerd conformance-containerd-all containerd-smoke lint-scripts results reference-report

## install-peers: containerd 1.6.20 + runc (apt), containerd v2.4.2, v2.3.7, v2.2.9 and crictl v1.37.0 (go install).
install-peers:
	bash .ci/install-peers.sh

## conformance-containerd VERSION=2.4.2|2.3.7|2.2.9|1.6.20 [PULL_PATH=local (2.4.2)]: the suite against a real containerd.
conformance-containerd: build
	@test -n "$(VERSION)" || { echo "usage: make conformance-containerd VERSION=2.4.2|2.3.7|2.2.9|1.6.20"; exit 2; }
	CRIIMAGE_BIN=$(abspath $(BIN))/criimage bash hack/containerd-gate.sh $(VERSION)

## conformance-containerd-all: every gate, each in turn.
conformance-containerd-all: build
	@set -e; for v in $(CONTAINERD_VERSIONS); do CRIIMAGE_BIN=$(abspath $(BIN))/criimage bash hack/containerd-gate.sh $$v; done

## containerd-smoke VERSION=…: only the runtimeconfig smoke check against a real containerd.
containerd-smoke: build
	@test -n "$(VERSION)" || { echo "usage: make containerd-smoke VERSION=2.4.2|2.3.7|2.2.9|1.6.20"; exit 2; }
	GATE_MODE=smoke CRIIMAGE_BIN=$(abspath $(BIN))/criimage bash hack/containerd-gate.sh $(VERSION)

## lint-scripts: shellcheck every script (skipped with a note when shellcheck is missing).
lint-scripts:
	@if command -v shellcheck >/dev/null; then shellcheck hack/*.sh .ci/install-peers.sh; else echo "lint-scripts: shellcheck not installed (apt-get install shellcheck)"; fi

GATES_DIR ?= _output/gates
# The committed censuses, in the order docs/results.md shows them.
CENSUSES  ?= $(addprefix suite/expectations/census/,quiet.json loaded.json focus-fail.json focus-fail-transfer.json parallel.json matrix.json)

## reference-report: the suite against the embedded reference, reports in _output/reference (no root).
reference-report: build
	$(BIN)/criimage test --embedded --report-dir _output/reference

## results: regenerate docs/results.md from the reports of reference-report and the gates
## (run those first; a missing report is an error).
results:
	$(GO) run ./hack/results -o docs/results.md \
		-target "reference=_output/reference" \
		-target "containerd 2.4.2=$(GATES_DIR)/containerd-2.4.2" \
		-target "containerd 2.4.2 (local pull)=$(GATES_DIR)/containerd-2.4.2-local" \
		-target "containerd 2.3.7=$(GATES_DIR)/containerd-2.3.7" \
		-target "containerd 2.2.9=$(GATES_DIR)/containerd-2.2.9" \
		-target "containerd 1.6.20=$(GATES_DIR)/containerd-1.6.20" \
		$(foreach c,$(wildcard $(CENSUSES)),-census $(c))
