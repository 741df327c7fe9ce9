# Conformance suite targets (owner: suite). Included by the top-level Makefile.
REPORT_DIR ?= $(CURDIR)/_output/conformance
PARALLEL   ?= 2
SUITE_ARGS ?=

.PHONY: conformance conformance-parallel conformance-list suite-test

## conformance: run the whole suite against the embedded reference ImageService (the main job).
conformance:
	@mkdir -p $(REPORT_DIR)
	$(GO) run ./cmd/criimage test --embedded --report-dir $(REPORT_DIR) $(SUITE_ARGS); rc=$$?; \
	echo "conformance reports: $(REPORT_DIR)/summary.md $(REPORT_DIR)/report.html $(REPORT_DIR)/junit.xml $(REPORT_DIR)/results.json $(REPORT_DIR)/report.json"; exit $$rc

## conformance-parallel: the same specs in PARALLEL (2) processes of criimage itself (criimage test
## --parallel: ginkgo's parallel protocol without the ginkgo CLI; one embedded reference, started by
## process 1; Serial specs run alone on process 1; one merged set of reports).
conformance-parallel: build
	@mkdir -p $(REPORT_DIR)
	$(BIN)/criimage test --embedded --parallel $(PARALLEL) --timeout 10m --report-dir $(REPORT_DIR) $(SUITE_ARGS); rc=$$?; \
	echo "conformance reports: $(REPORT_DIR)/summary.md $(REPORT_DIR)/report.html $(REPORT_DIR)/junit.xml $(REPORT_DIR)/results.json $(REPORT_DIR)/report.json"; exit $$rc

## conformance-list: list every spec (ID, labels) without running any.
conformance-list:
	$(GO) run ./cmd/criimage test --embedded --dry-run -v

## suite-test: the suite's own unit tests (config, expectations, report, traceability).
suite-test:
	$(GO) test ./suite/config ./suite/expectations ./suite/report ./suite/specs ./suite/internal/nulltarget
