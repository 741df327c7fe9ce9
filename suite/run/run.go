// Package run drives the conformance spec tree programmatically, for `criimage test`: it parses
// the suite's flags plus a few ginkgo ones, builds the same tree `go test ./suite/...` runs
// (specs.Register), and runs it in-process with ginkgo's RunSpecs. Processes cannot be forked
// from here; for ginkgo -p parallelism use the test binary (go test -c ./suite) with the ginkgo CLI.
package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/report"
	"github.com/criimage/criimage/suite/specs"
)

// Options are what the caller provides besides the command line.
type Options struct {
	// Embedded, if set, starts the reference ImageService when --embedded is given (the binary
	// wires impl here; suite/ itself never imports it).
	Embedded harness.StartFunc
	// EmbeddedRestart restarts the embedded reference (for the restart feature).
	EmbeddedRestart harness.RestartFunc
}

// ErrFailed is returned when the run did not meet its expectations.
var ErrFailed = errors.New("conformance run failed")

// Main parses args and runs the suite. It returns nil when every spec passed, was unsupported,
// informational or an expected failure.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, opts Options) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("criimage test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs, "")
	embedded := fs.Bool("embedded", false, "run against the embedded reference ImageService (ignores --image-endpoint)")
	focus := fs.String("focus", "", "run only specs whose text (e.g. the ID) matches this regexp")
	skip := fs.String("skip", "", "skip specs whose text matches this regexp")
	labels := fs.String("label-filter", "", "ginkgo label filter, e.g. 'area:auth && conformance'")
	dryRun := fs.Bool("dry-run", false, "list the specs without running them")
	verbose := fs.Bool("v", false, "verbose ginkgo output")
	timeout := fs.Duration("timeout", 30*time.Minute, "timeout of the whole run")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: criimage test [--embedded | --image-endpoint unix:///…] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	env := harness.NewEnv(cfg)
	if *embedded {
		if opts.Embedded == nil {
			return errors.New("--embedded: this binary has no embedded reference")
		}
		cfg.ImageEndpoint = ""
		if cfg.Features.String() == "" {
			if err := cfg.Features.Set(config.Reference().Features()); err != nil {
				return err
			}
		}
		env.Start, env.Restart = opts.Embedded, opts.EmbeddedRestart
	} else if cfg.ImageEndpoint == "" {
		return errors.New("give --image-endpoint (unix:///path or tcp://host:port) or --embedded")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	gomega.RegisterFailHandler(ginkgo.Fail)
	if err := specs.Register(env); err != nil {
		return err
	}
	suiteCfg, repCfg := ginkgo.GinkgoConfiguration()
	suiteCfg.FocusStrings = nonEmpty(*focus)
	suiteCfg.SkipStrings = nonEmpty(*skip)
	suiteCfg.LabelFilter = *labels
	suiteCfg.DryRun = *dryRun
	suiteCfg.Timeout = *timeout
	repCfg.Verbose = *verbose
	repCfg.NoColor = true

	t := &failRecorder{}
	passed := ginkgo.RunSpecs(t, "criimage conformance", suiteCfg, repCfg)
	if cfg.ReportDir != "" {
		fmt.Fprintf(stdout, "criimage: reports in %s (junit.xml, report.json, results.json, summary.md, report.html)\n", cfg.ReportDir)
	}
	if !passed || t.failed {
		return ErrFailed
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// failRecorder is the GinkgoTestingT of a run outside `go test`.
type failRecorder struct{ failed bool }

func (f *failRecorder) Fail() { f.failed = true }

// SpecIDs builds the spec tree (without running it or starting anything) and returns every spec
// ID in it, sorted. Like Main it uses ginkgo's global tree: call it at most once per process, and
// not together with Main.
func SpecIDs() ([]string, error) {
	if err := specs.Register(harness.NewEnv(config.Default())); err != nil {
		return nil, err
	}
	rep := ginkgo.PreviewSpecs("criimage conformance")
	var ids []string
	for _, sr := range rep.SpecReports {
		if id := report.ID(sr); id != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
