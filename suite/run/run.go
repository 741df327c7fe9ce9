// Package run drives the conformance spec tree programmatically, for `criimage test`: it parses
// the suite's flags plus a few ginkgo ones, builds the same tree `go test ./suite/...` runs
// (specs.Register), and runs it in-process with ginkgo's RunSpecs — or, with --parallel N, in N
// processes of the binary itself speaking ginkgo's parallel protocol (parallel.go), as `ginkgo -p`
// runs a test binary.
package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
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
	// Self is the command line that runs Main again in a new process: the binary and its
	// subcommand ([os.Executable(), "test"]). --parallel N > 1 starts it N times; nil makes
	// --parallel N > 1 an error.
	Self []string
}

// ErrFailed is returned when the run did not meet its expectations.
var ErrFailed = errors.New("conformance run failed")

// ErrUsage marks a bad command line: an unknown flag, a bad value, a profile that does not load,
// filters that select no spec. The binary exits 2 on it.
var ErrUsage = errors.New("usage")

// Main parses args and runs the suite. It returns nil when every spec passed, was unsupported,
// informational or an expected failure.
//
// Besides the suite's own flags, every ginkgo flag is accepted with its "ginkgo." prefix, as in a
// ginkgo test binary (--ginkgo.randomize-all, --ginkgo.seed, --ginkgo.flake-attempts,
// --ginkgo.fail-fast, --ginkgo.timeout, --ginkgo.trace, --ginkgo.poll-progress-after,
// --ginkgo.json-report, …), so a critest command line carries over.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, opts Options) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("criimage test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs, "")
	embedded := fs.Bool("embedded", false, "run against the embedded reference ImageService (ignores --image-endpoint)")
	profile := fs.String("profile", "", "YAML profile of one runtime: endpoints, features, expectations, certs.d dir (flags override it)")
	crictlConfig := fs.String("crictl-config", "", "crictl config file to take the endpoints from when none is given (default: $CRI_CONFIG_FILE, else "+config.DefaultCrictlConfig+", as crictl and critest)")
	focus := fs.String("focus", "", "run only specs whose text (e.g. the ID) matches this regexp")
	skip := fs.String("skip", "", "skip specs whose text matches this regexp")
	labels := fs.String("label-filter", "", "ginkgo label filter, e.g. 'area:auth && conformance'")
	dryRun := fs.Bool("dry-run", false, "list the specs without running them")
	verbose := fs.Bool("v", false, "verbose ginkgo output")
	timeout := fs.Duration("timeout", 30*time.Minute, "timeout of the whole run (--ginkgo.timeout, when given, wins)")
	parallel := fs.Int("parallel", 1, parallelUsage)
	doneFile := fs.String("done-file", os.Getenv("CRIIMAGE_DONE_FILE"), "after the reports are written, write the report directory's absolute path into this file (Sonobuoy's done file) [CRIIMAGE_DONE_FILE]")
	waitAfterRun := fs.Bool("wait-after-run", os.Getenv("CRIIMAGE_WAIT_AFTER_RUN") == "true", "after the run, wait for SIGTERM before exiting with its status (a DaemonSet pod must not exit) [CRIIMAGE_WAIT_AFTER_RUN=true]")
	suiteCfg, repCfg := ginkgo.GinkgoConfiguration()
	if err := attachGinkgoFlags(fs, &suiteCfg, &repCfg); err != nil {
		return err
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: criimage test [--embedded | --image-endpoint unix:///… | --profile FILE] [flags] [--ginkgo.FLAG …]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (flags only; a focus is --focus REGEXP)", ErrUsage, fs.Args())
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if *profile != "" {
		p, err := config.LoadProfile(*profile)
		if err != nil {
			return fmt.Errorf("%w: --profile: %w", ErrUsage, err)
		}
		if err := p.Apply(cfg, explicit); err != nil {
			return fmt.Errorf("%w: --profile: %w", ErrUsage, err)
		}
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
		if err := endpointsFromCrictl(cfg, *crictlConfig, stderr); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}

	gomega.RegisterFailHandler(ginkgo.Fail)
	if err := specs.Register(env); err != nil {
		return err
	}
	suiteCfg.FocusStrings = append(suiteCfg.FocusStrings, nonEmpty(*focus)...)
	suiteCfg.SkipStrings = append(suiteCfg.SkipStrings, nonEmpty(*skip)...)
	suiteCfg.LabelFilter = joinLabelFilters(suiteCfg.LabelFilter, *labels)
	suiteCfg.DryRun = suiteCfg.DryRun || *dryRun
	if !explicit["ginkgo.timeout"] {
		suiteCfg.Timeout = *timeout
	}
	repCfg.Verbose = repCfg.Verbose || *verbose
	if !explicit["ginkgo.no-color"] {
		repCfg.NoColor = true
	}
	// The preview runs the tree's ReportAfterSuite too (ginkgo runs reporting nodes in a dry run):
	// without a report dir it writes no report and no step summary (else every run wrote them
	// twice, and a --parallel run once per process more, all at once).
	reportDir := cfg.ReportDir
	cfg.ReportDir = ""
	n, total := selectedSpecs(suiteCfg, repCfg)
	cfg.ReportDir = reportDir
	if n == 0 {
		return fmt.Errorf("%w: no spec selected (of %d) by %s", ErrUsage, total, describeFilters(suiteCfg, explicit))
	}

	procs, err := parallelProcs(*parallel, suiteCfg, opts)
	if err != nil {
		return err
	}
	// A worker of a parallel run leaves the done file and the wait to the process that started it.
	fin := finish{reportDir: cfg.ReportDir, reportPrefix: cfg.ReportPrefix}
	if suiteCfg.ParallelTotal <= 1 {
		fin.doneFile, fin.waitAfterRun = *doneFile, *waitAfterRun
	}
	if err := fin.validate(); err != nil {
		return err
	}
	if err := fin.start(); err != nil {
		return err
	}
	t := &failRecorder{}
	var passed bool
	if procs > 1 {
		if passed, err = runParallel(ctx, procs, args, stdout, opts, suiteCfg, repCfg); err != nil {
			return err
		}
	} else {
		passed = ginkgo.RunSpecs(t, "criimage conformance", suiteCfg, repCfg)
	}
	var runErr error
	if !passed || t.failed {
		runErr = ErrFailed
	}
	return fin.end(ctx, stdout, runErr)
}

// endpointsFromCrictl fills the endpoints from crictl's config file, as critest does when no
// endpoint is given.
func endpointsFromCrictl(cfg *config.Config, path string, stderr io.Writer) error {
	image, runtime, found, err := config.CrictlEndpoints(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if !found {
		return fmt.Errorf("%w: give --image-endpoint (unix:///path or tcp://host:port), --profile FILE or --embedded (no %s either)", ErrUsage, config.DefaultCrictlConfig)
	}
	cfg.ImageEndpoint = image
	if cfg.RuntimeEndpoint == "" {
		cfg.RuntimeEndpoint = runtime
	}
	fmt.Fprintf(stderr, "criimage: image endpoint %s from the crictl config\n", image)
	return nil
}

// attachGinkgoFlags adds ginkgo's own flag set (suite, parallel and reporter flags, "ginkgo."
// prefixed: ginkgo's public types.GinkgoFlags, the same set a ginkgo test binary has) to fs,
// bound to suiteCfg and repCfg. Ginkgo's flags that exist only as deprecated aliases are left
// out: they bind to a configuration type ginkgo does not export.
func attachGinkgoFlags(fs *flag.FlagSet, suiteCfg *types.SuiteConfig, repCfg *types.ReporterConfig) error {
	var flags types.GinkgoFlags
	for _, f := range types.SuiteConfigFlags.CopyAppend(types.ParallelConfigFlags...).CopyAppend(types.ReporterConfigFlags...) {
		if f.Name != "" && !strings.HasPrefix(f.KeyPath, "D.") {
			f.DeprecatedName = ""
			flags = append(flags, f)
		}
	}
	bindings := map[string]any{"S": suiteCfg, "R": repCfg}
	if _, err := types.NewAttachedGinkgoFlagSet(fs, flags.WithPrefix("ginkgo"), bindings, types.FlagSections, types.GinkgoFlagSection{}); err != nil {
		return fmt.Errorf("ginkgo flags: %w", err)
	}
	return nil
}

// selectedSpecs previews the tree under suiteCfg's filters: how many specs would run, of how many.
func selectedSpecs(suiteCfg types.SuiteConfig, repCfg types.ReporterConfig) (selected, total int) {
	rep := ginkgo.PreviewSpecs("criimage conformance", suiteCfg, repCfg)
	for _, sr := range rep.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		total++
		if sr.State != types.SpecStateSkipped && sr.State != types.SpecStatePending {
			selected++
		}
	}
	return selected, total
}

// describeFilters names the filters of a run, for the "no spec selected" error.
func describeFilters(c types.SuiteConfig, explicit map[string]bool) string {
	var parts []string
	for _, f := range c.FocusStrings {
		parts = append(parts, fmt.Sprintf("focus %q", f))
	}
	for _, f := range c.SkipStrings {
		parts = append(parts, fmt.Sprintf("skip %q", f))
	}
	if c.LabelFilter != "" {
		parts = append(parts, fmt.Sprintf("label filter %q", c.LabelFilter))
	}
	for _, f := range c.FocusFiles {
		parts = append(parts, fmt.Sprintf("focus file %q", f))
	}
	for _, f := range c.SkipFiles {
		parts = append(parts, fmt.Sprintf("skip file %q", f))
	}
	if len(parts) == 0 {
		return "no filter (is the tree empty?)"
	}
	return strings.Join(parts, ", ")
}

// joinLabelFilters combines --ginkgo.label-filter and --label-filter: a spec must match both.
func joinLabelFilters(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") && (" + b + ")"
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
