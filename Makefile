# criimage — see README.md. Every target works from a clean clone.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
GOTESTFLAGS ?=

.PHONY: all build test test-race lint registry conformance suite mutants bench clean

all: build

## build: bin/criimage, with the VCS state in its build info (criimage version; -buildvcs=auto
## overrides a GOFLAGS=-buildvcs=false and still builds outside a git checkout).
build:
	$(GO) build -buildvcs=auto -o $(BIN)/criimage ./cmd/criimage

## test: the default test run (unit + the conformance suite against the embedded reference).
test:
	$(GO) test $(GOTESTFLAGS) $(PKGS)

test-race:
	$(GO) test -race $(GOTESTFLAGS) $(PKGS)

GOIMPORTS ?= $(GO) run golang.org/x/tools/cmd/goimports@v0.52.0
DEADCODE  ?= $(GO) run golang.org/x/tools/cmd/deadcode@v0.52.0

## lint: gofmt, goimports grouping (standard, third-party, ours), go vet, and no unreachable code.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	@out=$$($(GOIMPORTS) -local github.com/criimage/criimage -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "goimports -local github.com/criimage/criimage:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@out=$$($(DEADCODE) -test $(PKGS)); if [ -n "$$out" ]; then echo "deadcode:"; echo "$$out"; exit 1; fi

## registry: serve the whole fixture catalog with every auth variant (Ctrl-C to stop).
registry: build
	$(BIN)/criimage registry

-include mk/*.mk

clean:
	rm -rf $(BIN)
