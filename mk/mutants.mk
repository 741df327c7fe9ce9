# Mutation testing of the conformance suite (owner: suite/mutants). Included by the top-level Makefile.
# Each mutant is a gRPC proxy in front of a fresh embedded reference that injects one fault; the
# suite must fail against every one of them. Logs, ginkgo reports and kill-table.md go to MUTANTS_DIR.
MUTANTS_DIR      ?= $(CURDIR)/_output/mutants
MUTANTS_PARALLEL ?= 2
MUTANTS          ?= all

.PHONY: mutants mutants-ci mutants-proxy-test

# The suite's test binary, built once per invocation.
$(BIN)/criimage-suite.test: FORCE_SUITE_BIN
	@mkdir -p $(BIN)
	$(GO) test -c -o $@ ./suite
.PHONY: FORCE_SUITE_BIN

## mutants: the whole suite (fail-fast) against every mutant; prints the kill table, fails if one survives.
mutants: $(BIN)/criimage-suite.test
	@mkdir -p $(MUTANTS_DIR)
	CRIIMAGE_MUTANTS=$(MUTANTS) CRIIMAGE_MUTANTS_SUITE_BIN=$(abspath $(BIN)/criimage-suite.test) \
	CRIIMAGE_MUTANTS_DIR=$(MUTANTS_DIR) CRIIMAGE_MUTANTS_PARALLEL=$(MUTANTS_PARALLEL) \
	$(GO) test -v -count=1 -run '^TestMutants$$' -timeout 90m ./suite/mutants

## mutants-ci: the fast subset (CI-marked mutants, each against its expected killer specs only).
mutants-ci: $(BIN)/criimage-suite.test
	@mkdir -p $(MUTANTS_DIR)
	CRIIMAGE_MUTANTS=ci CRIIMAGE_MUTANTS_SUITE_BIN=$(abspath $(BIN)/criimage-suite.test) \
	CRIIMAGE_MUTANTS_DIR=$(MUTANTS_DIR)-ci CRIIMAGE_MUTANTS_PARALLEL=$(MUTANTS_PARALLEL) \
	$(GO) test -v -count=1 -run '^TestMutants$$' -timeout 10m ./suite/mutants

## mutants-proxy-test: each mutant's proxy test against the real reference (fast, no suite run).
mutants-proxy-test:
	$(GO) test -race -count=1 -run '^Test(Proxy|IdentityForwards|Catalog)$$' ./suite/mutants
