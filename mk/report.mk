# report.html in a real browser (owner: suite/report). Included by the top-level Makefile.
REPORT_CHECK_DIR   ?= $(CURDIR)/_output/report-check
# Passed, unsupported (schema1 and the rest left undeclared) and informational specs.
REPORT_CHECK_FOCUS ?= PULL-00[1-4]|AUTH-00[1-3]|LIST-00[1-3]|REF-011|FMT-010

.PHONY: report-browser-check

## report-browser-check: a real run's report.html and a synthetic one (every outcome) in headless
## Chromium, with and without its script; fails when chromium is missing (docs/reports.md).
report-browser-check: build
	rm -f $(REPORT_CHECK_DIR)/*
	$(BIN)/criimage test --embedded --focus '$(REPORT_CHECK_FOCUS)' \
		--report-dir $(REPORT_CHECK_DIR) --step-summary $(REPORT_CHECK_DIR)/step-summary.md
	CRIIMAGE_REQUIRE_BROWSER=1 CRIIMAGE_CHECK_REPORT_DIR=$(REPORT_CHECK_DIR) \
		$(GO) test -count=1 -run 'TestReportHTML|TestReportInChromium' -v ./suite/report
