package main

import (
	"context"
	"io"

	"github.com/criimage/criimage/internal/embedded"
	suiterun "github.com/criimage/criimage/suite/run"
)

// runTest implements "criimage test": the conformance suite against --image-endpoint, or against
// the embedded reference with --embedded. See suite/run for the flags.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ref := &embedded.Reference{}
	return suiterun.Main(ctx, args, stdout, stderr, suiterun.Options{Embedded: ref.Start, EmbeddedRestart: ref.Restart})
}
