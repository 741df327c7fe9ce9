# The GitHub Action (action.yml, hack/action/run.sh; docs/action.md). Included by the top-level
# Makefile.
.PHONY: action-test

## action-test: the action's test with bin/criimage: action.yml, run.sh, docs/action.md and
## examples/ agree; the script against the embedded reference, a missing endpoint, from source
## (also under ginkgo -p), and from a release mirror on 127.0.0.1 (good and tampered binary).
## Needs jq or python3 (results.json) and curl.
action-test: build
	bash -n hack/action/run.sh
	CRIIMAGE_ACTION_TEST_BIN=$(CURDIR)/$(BIN)/criimage $(GO) test -count=1 $(GOTESTFLAGS) ./hack/action
