package main

import (
	"context"
	"io"
	"os"

	"github.com/criimage/criimage/internal/embedded"
	suiterun "github.com/criimage/criimage/suite/run"
)

// runTest implements "criimage test": the conformance suite against --image-endpoint, or against
// the embedded reference with --embedded, in-process or (--parallel N) in N processes of this
// binary. See suite/run for the flags.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ref := &embedded.Reference{}
	opts := suiterun.Options{Embedded: ref.Start, EmbeddedRestart: ref.Restart}
	// --parallel N: the workers are this binary again (without it, --parallel N > 1 says so).
	if exe, err := os.Executable(); err == nil {
		opts.Self = []string{exe, "test"}
	}
	return suiterun.Main(ctx, args, stdout, stderr, opts)
}
