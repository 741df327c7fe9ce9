# Benchmarks: the reference against containerd, side by side (owner: bench). Included by the
# top-level Makefile. Needs root and the peers (`make install-peers`). See bench/doc.go.
BENCH_ARGS     ?=
BENCH_GO       ?= .
BENCH_GOFLAGS  ?= -benchtime 3x
BENCH_PROFILES ?= $(CURDIR)/_output/bench

.PHONY: bench bench-quick bench-go bench-profile bench-bin

bench-bin: build
	$(GO) build -o $(BIN)/criimage-bench ./bench/cmd/criimage-bench

## bench: every case, 5 runs per runtime in alternation (~10 min); rewrites the table in docs/bench.md.
bench: bench-bin
	$(BIN)/criimage-bench -bin $(BIN)/criimage -update docs/bench.md -cmd "make bench" $(BENCH_ARGS)

## bench-quick: smaller cases, 3 runs (~1 min); prints the table only.
bench-quick: bench-bin
	$(BIN)/criimage-bench -bin $(BIN)/criimage -quick $(BENCH_ARGS)

## bench-go: the in-process Go benchmarks of the reference (no containerd, no root).
bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH_GO)' $(BENCH_GOFLAGS) ./bench/

## bench-profile: CPU and allocation profiles of the reference's 256 MiB pull → $(BENCH_PROFILES).
bench-profile:
	@mkdir -p $(BENCH_PROFILES)
	$(GO) test -run '^$$' -bench 'Pull256MiB' $(BENCH_GOFLAGS) -cpuprofile $(BENCH_PROFILES)/cpu.prof \
		-memprofile $(BENCH_PROFILES)/mem.prof -o $(BENCH_PROFILES)/bench.test ./bench/
	$(GO) tool pprof -top -nodecount 30 $(BENCH_PROFILES)/bench.test $(BENCH_PROFILES)/cpu.prof | head -45
	$(GO) tool pprof -top -sample_index alloc_space -nodecount 20 $(BENCH_PROFILES)/bench.test $(BENCH_PROFILES)/mem.prof | head -30
