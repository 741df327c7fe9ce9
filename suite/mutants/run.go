package mutants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/report"
)

// StartTarget starts a fresh, correct ImageService for one run (the runner puts a proxy in front
// of it). hostsDir is the registry config dir the suite writes; the target must read it.
type StartTarget func(ctx context.Context, dir, hostsDir string) (endpoint string, stop func() error, err error)

// RunOptions configure a mutation run.
type RunOptions struct {
	// SuiteBinary is the conformance suite's test binary (go test -c ./suite).
	SuiteBinary string
	Start       StartTarget
	// Mutants to run (the baseline, None, always runs first).
	Mutants []Mutant
	// Focused runs only each mutant's Killers (and, for the baseline, their union): the CI
	// subset. Otherwise every mutant meets the whole suite.
	Focused bool
	// Parallel is how many suite runs at a time (default 2).
	Parallel int
	// Features the target declares (the suite's --features).
	Features string
	// WorkDir receives one directory per run (suite.log, report.json).
	WorkDir string
	// SuiteArgs are appended to every suite invocation (e.g. -rpc-timeout=15s).
	SuiteArgs []string
	// Progress, if set, gets a line per finished run.
	Progress io.Writer
}

// Result is one mutant's run.
type Result struct {
	Mutant   Mutant
	Killed   bool
	KilledBy string   // the first spec that failed (run order), not failing in the baseline
	Failed   []string // every such spec (with fail-fast, usually one)
	Ran      int      // specs that ran
	Duration time.Duration
	Err      error // the run itself went wrong (no spec verdict)
	Dir      string
	// Flaky are specs that failed once against the mutant but not when re-run alone against it:
	// not counted as kills (the mutant was run again without them).
	Flaky []string
}

// Outcome is a whole mutation run.
type Outcome struct {
	Baseline Result   // the identity proxy
	Skipped  []string // specs failing against the identity proxy: excluded from every mutant run
	Results  []Result
	Duration time.Duration
	Focused  bool
}

// Survivors are the mutants no spec killed (or whose run failed).
func (o *Outcome) Survivors() []Result {
	var out []Result
	for _, r := range o.Results {
		if !r.Killed {
			out = append(out, r)
		}
	}
	return out
}

// Run runs the baseline (identity proxy), then every mutant, Parallel at a time.
func Run(ctx context.Context, opts RunOptions) (*Outcome, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	start := time.Now()
	out := &Outcome{Focused: opts.Focused}
	var focus []string
	if opts.Focused {
		for _, m := range opts.Mutants {
			focus = append(focus, m.Killers...)
		}
	}
	out.Baseline = runOne(ctx, opts, Mutant{Name: None, Doc: "identity proxy"}, "", focus, nil, false)
	if out.Baseline.Err != nil {
		return out, fmt.Errorf("baseline (identity proxy): %w (see %s)", out.Baseline.Err, out.Baseline.Dir)
	}
	out.Skipped = out.Baseline.Failed
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "baseline: %d specs ran, %d fail against the identity proxy and are excluded: %s (%s)\n",
			out.Baseline.Ran, len(out.Skipped), strings.Join(out.Skipped, " "), out.Baseline.Duration.Round(100*time.Millisecond))
	}

	out.Results = make([]Result, len(opts.Mutants))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, m := range opts.Mutants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := runMutant(ctx, opts, m, out.Skipped)
			out.Results[i] = r
			if opts.Progress != nil {
				mu.Lock()
				fmt.Fprintf(opts.Progress, "%-26s %s (%s)\n", m.Name, verdict(r), r.Duration.Round(100*time.Millisecond))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out.Duration = time.Since(start)
	return out, nil
}

// maxAttempts bounds how often a mutant is run again after an unconfirmed kill.
const maxAttempts = 3

// runMutant runs the suite against m (fail-fast) and confirms the kill by running the killing spec
// alone against m again. An unconfirmed kill is a flake: the spec is skipped and m runs again.
func runMutant(ctx context.Context, opts RunOptions, m Mutant, skip []string) Result {
	var focus []string
	if opts.Focused {
		focus = m.Killers
	}
	var flaky []string
	var total time.Duration
	var r Result
	for attempt := 0; attempt < maxAttempts; attempt++ {
		r = runOne(ctx, opts, m, "", focus, skip, true)
		total += r.Duration
		if r.Err != nil || !r.Killed {
			break
		}
		c := runOne(ctx, opts, m, ".confirm", []string{r.KilledBy}, nil, false)
		total += c.Duration
		if c.Err == nil && slices.Contains(c.Failed, r.KilledBy) {
			break
		}
		flaky = append(flaky, r.KilledBy)
		skip = append(slices.Clone(skip), r.KilledBy)
		r.Killed, r.KilledBy = false, ""
	}
	r.Flaky, r.Duration = flaky, total
	return r
}

func verdict(r Result) string {
	switch {
	case r.Err != nil:
		return "ERROR: " + r.Err.Error()
	case r.Killed && len(r.Flaky) > 0:
		return "killed by " + r.KilledBy + " (confirmed; flaky, not counted: " + strings.Join(r.Flaky, ", ") + ")"
	case r.Killed:
		return "killed by " + r.KilledBy + " (confirmed)"
	}
	return "SURVIVED"
}

// idsRegexp matches the spec texts "[ID] …" of ids.
func idsRegexp(ids []string) string {
	q := make([]string, 0, len(ids))
	for _, id := range ids {
		q = append(q, regexp.QuoteMeta(id))
	}
	slices.Sort(q)
	return `\[(` + strings.Join(slices.Compact(q), "|") + `)\]`
}

// runOne starts a target and a proxy for m, runs the suite binary against the proxy and reads its
// ginkgo JSON report.
func runOne(ctx context.Context, opts RunOptions, m Mutant, suffix string, focus, skip []string, failFast bool) (r Result) {
	start := time.Now()
	r = Result{Mutant: m, Dir: filepath.Join(opts.WorkDir, m.Name+suffix)}
	defer func() { r.Duration = time.Since(start) }()
	fail := func(err error) Result { r.Err = err; return r }
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fail(err)
	}
	tdir, err := os.MkdirTemp("", "criimage-mr-") // short: unix socket paths are limited
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tdir)
	hosts := filepath.Join(tdir, "hosts")
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		return fail(err)
	}
	endpoint, stop, err := opts.Start(ctx, tdir, hosts)
	if err != nil {
		return fail(fmt.Errorf("start target: %w", err))
	}
	defer stop()
	p, err := Start(ctx, endpoint, m.Name)
	if err != nil {
		return fail(err)
	}
	defer p.Close()

	reportFile := filepath.Join(r.Dir, "report.json")
	os.Remove(reportFile)
	args := []string{
		"-test.run=^TestConformance$", "-test.timeout=30m",
		"-image-endpoint=" + p.Endpoint(), "-registry-config-dir=" + hosts, "-features=" + opts.Features,
		"-ginkgo.seed=1", "-ginkgo.no-color", "-ginkgo.json-report=" + reportFile,
	}
	if failFast {
		args = append(args, "-ginkgo.fail-fast")
	}
	if len(focus) > 0 {
		args = append(args, "-ginkgo.focus="+idsRegexp(focus))
	}
	if len(skip) > 0 {
		args = append(args, "-ginkgo.skip="+idsRegexp(skip))
	}
	args = append(args, opts.SuiteArgs...)
	log, err := os.Create(filepath.Join(r.Dir, "suite.log"))
	if err != nil {
		return fail(err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, opts.SuiteBinary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = suiteEnv()
	runErr := cmd.Run()
	failed, ran, err := readReport(reportFile)
	if err != nil {
		return fail(fmt.Errorf("suite run (%v): %w", runErr, err))
	}
	r.Ran = ran
	for _, id := range failed {
		if !slices.Contains(skip, id) {
			r.Failed = append(r.Failed, id)
		}
	}
	if len(r.Failed) > 0 {
		r.Killed, r.KilledBy = true, r.Failed[0]
	} else if runErr != nil && m.Name != None {
		// The binary failed outside any spec (setup, timeout): no verdict.
		return fail(fmt.Errorf("suite exited with %v but no spec failed", runErr))
	}
	return r
}

// suiteEnv is the environment without CRIIMAGE_* settings, so only the runner's flags count.
func suiteEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CRIIMAGE_") })
}

// readReport returns the IDs of failed specs in run order and how many specs ran.
func readReport(file string) (failed []string, ran int, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, 0, err
	}
	var reps []types.Report
	if err := json.Unmarshal(b, &reps); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", file, err)
	}
	if len(reps) == 0 {
		return nil, 0, errors.New(file + ": no report")
	}
	var specs types.SpecReports
	for _, rep := range reps {
		specs = append(specs, rep.SpecReports...)
	}
	sort.SliceStable(specs, func(i, j int) bool { return specs[i].StartTime.Before(specs[j].StartTime) })
	for _, sr := range specs {
		if sr.LeafNodeType != types.NodeTypeIt {
			if sr.State.Is(types.SpecStateFailureStates) {
				return nil, 0, fmt.Errorf("suite %s failed: %s", sr.LeafNodeType, sr.Failure.Message)
			}
			continue
		}
		if sr.State != types.SpecStateSkipped && sr.State != types.SpecStatePending {
			ran++
		}
		if sr.State.Is(types.SpecStateFailureStates) {
			if id := report.ID(sr); id != "" && !slices.Contains(failed, id) {
				failed = append(failed, id)
			}
		}
	}
	return failed, ran, nil
}

// WriteTable writes the kill table (Markdown).
func (o *Outcome) WriteTable(w io.Writer) {
	mode := "whole suite per mutant, fail-fast"
	if o.Focused {
		mode = "CI subset: each mutant against its expected killer specs only"
	}
	fmt.Fprintf(w, "# Mutation testing (%s)\n\n", mode)
	fmt.Fprintf(w, "baseline (identity proxy): %d specs ran in %s", o.Baseline.Ran, o.Baseline.Duration.Round(time.Second))
	if len(o.Skipped) > 0 {
		fmt.Fprintf(w, "; failing against the identity proxy, excluded: %s", strings.Join(o.Skipped, ", "))
	}
	fmt.Fprintf(w, "\n\n| mutant | killed? | first failing spec | expected killers | time |\n|---|---|---|---|---|\n")
	for _, r := range o.Results {
		k := "yes"
		switch {
		case r.Err != nil:
			k = "ERROR"
		case !r.Killed:
			k = "**SURVIVED**"
		}
		by := r.KilledBy
		if r.Err != nil {
			by = strings.ReplaceAll(r.Err.Error(), "|", "/")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.Mutant.Name, k, by, strings.Join(r.Mutant.Killers, " "), r.Duration.Round(100*time.Millisecond))
	}
	killed := len(o.Results) - len(o.Survivors())
	fmt.Fprintf(w, "\n%d/%d mutants killed in %s.\n", killed, len(o.Results), o.Duration.Round(time.Second))
	for _, r := range o.Survivors() {
		why := "no spec failed"
		if r.Err != nil {
			why = r.Err.Error()
		}
		var base []string
		for _, k := range r.Mutant.Killers {
			if slices.Contains(o.Skipped, k) {
				base = append(base, k)
			}
		}
		if len(base) > 0 {
			why += "; its expected killers fail against the reference too: " + strings.Join(base, ", ")
		}
		fmt.Fprintf(w, "- survivor %s (%s): %s — logs: %s\n", r.Mutant.Name, r.Mutant.Doc, why, r.Dir)
	}
	for _, r := range o.Results {
		if len(r.Flaky) > 0 {
			fmt.Fprintf(w, "- flaky against %s (failed once, passed when re-run alone; not counted): %s\n", r.Mutant.Name, strings.Join(r.Flaky, ", "))
		}
	}
}
