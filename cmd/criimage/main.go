// Command criimage is the one binary of the criimage kit: it serves the reference ImageService,
// runs the fixture registry, runs the conformance suite, and writes runtime configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	suiterun "github.com/criimage/criimage/suite/run"
)

// subcommand is one verb of the binary. Each lives in its own file (serve.go, registry.go, test.go,
// config.go, version.go, bench.go) so that its owner can change it without touching the others.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":    {"serve the reference ImageService over gRPC", runServe},
		"registry": {"run the fixture registry with the whole catalog", runRegistry},
		"test":     {"run the conformance suite against a CRI image endpoint", runTest},
		"config":   {"write runtime configuration (containerd, CRI-O) for the fixture registry", runConfig},
		"version":  {"print the version, build, spec count and fixture catalog fingerprint", runVersion},
		"bench":    {"measure a runtime's image endpoint: pulls, concurrent pulls, list (make bench's cases)", runBench},
	}
}

// errUsage marks an error caused by bad command-line input (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := subcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		return 2
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "criimage: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "criimage %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) || errors.Is(err, suiterun.ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "usage: criimage <command> [flags]")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
}
