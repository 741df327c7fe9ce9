# Reliability soak (owner: impl): a storm of mixed CRI calls against `criimage serve`, a
# consistency check and a kill -9 crash loop (package soak). Loopback only; stops by itself.
SOAK_DURATION ?= 5m
SOAK_WORKERS  ?= 32
SOAK_CRASHES  ?= 20
SOAK_OUT      ?= $(CURDIR)/_output/soak

.PHONY: soak soak-ci

## soak: the full run (5 min storm, 20 crash rounds; ~8 min); figures in _output/soak/report.md.
soak: build
	$(GO) run ./soak/cmd/criimage-soak -bin $(BIN)/criimage -duration $(SOAK_DURATION) \
		-workers $(SOAK_WORKERS) -crashes $(SOAK_CRASHES) -out $(SOAK_OUT)

## soak-ci: the short run .ci/run makes (~1 min).
soak-ci: build
	$(GO) run ./soak/cmd/criimage-soak -bin $(BIN)/criimage -duration 30s -workers 32 -crashes 5 -out $(SOAK_OUT)
