# Flake census (owner: runtimes): every gate and the reference suite, RUNS times each; per spec
# the distribution of outcomes (hack/flake-census.sh, hack/census). Gates need root.
RUNS  ?= 10
GATES ?= reference containerd-2.4.2 containerd-2.4.2-local containerd-1.6.20
FOCUS ?=
LOAD  ?=

.PHONY: flake-census

## flake-census [RUNS=10] [GATES="reference containerd-2.4.2 …"] [FOCUS=regexp] [LOAD="make test-race"]:
## census JSON + table in _output/census/NAME (quiet, or loaded with LOAD); commit the JSON to
## suite/expectations/census/ so that the expectations test checks against it.
flake-census: build
	RUNS="$(RUNS)" GATES="$(GATES)" FOCUS="$(FOCUS)" LOAD="$(LOAD)" CRIIMAGE_BIN=$(abspath $(BIN))/criimage bash hack/flake-census.sh
