// Package framework is the conformance suite's spec framework: the conventions every spec is
// declared with (Meta, Level, Spec), the suite-wide nodes (target start and stop, the LEAK-001
// scan, transcripts, reports) and the judgement against a target's expectations. suite/specs holds
// spec bodies and the api.proto statements only, and declares specs through Tree.Spec.
package framework

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/expectations"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/report"
)

// Level is how binding a spec is.
type Level string

// Levels. Informational specs record behaviour with report entries and never fail on it.
const (
	Conformance   Level = "conformance"   // MUST
	Recommended   Level = "recommended"   // SHOULD
	Informational Level = "informational" // implementation-defined: recorded, not judged
)

// Meta describes a spec beyond its ID and text.
type Meta struct {
	Level  Level
	Refs   []string         // api.proto statements (IS-xx) and conventions (CV-xx)
	Needs  []config.Feature // features the target must declare, else the spec is unsupported
	Serial bool             // needs the target to itself (ImageFsInfo baselines, restarts)
	Labels []string         // extra labels (feature:…, transport, …)
}

// Body is a spec body.
type Body func(ctx context.Context, s *harness.Spec)

// Tree builds the spec tree around one Env: it owns the Env and the expectations, nothing global.
// Spec declares a spec with the suite's conventions; the specs package uses nothing else.
type Tree struct {
	env *harness.Env
	exp *expectations.File
}

var idRE = regexp.MustCompile(`^([A-Z]+)-[0-9]{3}$`)

// Spec declares one It with the suite's conventions: labels (area, level, statements, features),
// a 5 minute timeout, Serial when asked, "unsupported" when a needed feature is not declared, the
// LEAK-001 check of every error the target returned, and the target's expectations — a listed
// failure becomes "expected failure", a listed failure that passes fails the run ("either"
// excepted).
func (su *Tree) Spec(id, text string, m Meta, body Body) {
	match := idRE.FindStringSubmatch(id)
	if match == nil {
		panic("specs: bad spec ID " + id)
	}
	if m.Level == "" {
		m.Level = Conformance
	}
	labels := Label(append([]string{"area:" + strings.ToLower(match[1]), string(m.Level)}, m.Labels...)...)
	for _, r := range m.Refs {
		labels = append(labels, r)
	}
	for _, f := range m.Needs {
		labels = append(labels, "feature:"+f.String())
	}
	args := []any{labels, SpecTimeout(5 * time.Minute)}
	if m.Serial {
		args = append(args, Serial)
	}
	args = append(args, func(ctx SpecContext) {
		for _, f := range m.Needs {
			if !su.env.Cfg.Features.Has(f) {
				Unsupported("feature %q not declared by the target (--features %s)", f, f.Usage())
			}
		}
		s := su.env.Begin(id)
		// The body, then the one-image invariant for every image the body pulled, then LEAK-001
		// for every error the body saw: inside the body's run so that a known deviation is covered
		// by the expectations like any other failure. (Errors returned during
		// cleanup are scanned by the suite-wide hook in Register.)
		run := func() {
			body(ctx, s)
			s.ExpectPulledDescribedOnce(ctx)
			Expect(su.env.Secrets.TakeLeaks()).To(BeEmpty(), "the target returned a secret in an error message (LEAK-001)")
		}
		exp, expected := su.exp.Lookup(id)
		if !expected || (exp.Outcome != expectations.Failed && exp.Outcome != expectations.Either) {
			run()
			return
		}
		// A known failure: run the body, and turn its first failure into an "expected failure";
		// a pass is itself a failure (the expectations file must shrink) unless the file says the
		// target's behaviour here depends on its own timing ("either").
		err := InterceptGomegaFailure(run)
		if err == nil {
			if exp.Outcome == expectations.Either {
				AddReportEntry(report.EntryExpectedFailure, fmt.Sprintf("passed this time (listed as either: %s)", exp.Reason))
				return
			}
			AddReportEntry(report.EntryUnexpectedPass, exp.Reason)
			Fail(fmt.Sprintf("%s is listed as an expected failure (%s) but passed: remove it from %s", id, exp.Reason, su.env.Cfg.ExpectationsFile))
		}
		// Leaks seen before the failure belong to this expected failure, not to the cleanup hook.
		if leaks := su.env.Secrets.TakeLeaks(); len(leaks) > 0 {
			err = fmt.Errorf("%w\n(and the target returned a fixture secret in an error message)", err)
		}
		AddReportEntry(report.EntryExpectedFailure, fmt.Sprintf("%s\nreason: %s\nissue: %s", err, exp.Reason, exp.Issue))
		Skip(report.ExpectedFailurePrefix + exp.Reason)
	})
	It(fmt.Sprintf("[%s] %s", id, text), args...)
}

// New loads env's expectations and registers the suite-wide nodes: the target's start and stop
// (SynchronizedBeforeSuite / AfterSuite), the LEAK-001 scan and registry transcript of every spec,
// and the reports. Call it once, before declaring specs and RunSpecs.
func New(env *harness.Env) (*Tree, error) {
	exp, err := expectations.Load(env.Cfg.ExpectationsFile)
	if err != nil {
		return nil, err
	}
	su := &Tree{env: env, exp: exp}

	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		shared, err := env.StartTarget(context.WithoutCancel(ctx))
		Expect(err).NotTo(HaveOccurred())
		return shared
	}, func(ctx SpecContext, shared []byte) {
		Expect(env.Setup(context.WithoutCancel(ctx), shared, GinkgoParallelProcess())).To(Succeed())
		AddReportEntry("configuration", harness.DescribeBuild()+env.Cfg.Describe())
	})
	SynchronizedAfterSuite(func() {
		Expect(env.Teardown()).To(Succeed())
	}, func() {
		Expect(env.StopTarget()).To(Succeed())
	})

	// Every spec: no fixture secret in any error the target returned (LEAK-001 holds suite-wide),
	// and a failed spec carries its registry transcript. Registered from BeforeEach so that it runs
	// after the spec's own cleanups (whose errors are scanned too).
	BeforeEach(func() {
		env.Secrets.TakeLeaks() // anything older belongs to no spec
		DeferCleanup(func() {
			if env.Reg == nil {
				return
			}
			leaks := env.Secrets.TakeLeaks()
			if CurrentSpecReport().Failed() || len(leaks) > 0 {
				since := CurrentSpecReport().StartTime
				AddReportEntry(report.EntryTranscript, env.Reg.Journal().Transcript(entriesSince(env, since)), ReportEntryVisibilityFailureOrVerbose)
			}
			Expect(leaks).To(BeEmpty(), "the target returned a secret in an error message (LEAK-001)")
		})
	})

	// The reports, and GitHub's step summary: ReportAfterSuite runs once, on process 1 with the
	// merged report under ginkgo -p, for `criimage test` and `go test ./suite` alike. The step
	// summary goes with --report-dir (whose files it points to), so that the suite's own test runs
	// (the null target, mutants, go test ./...) under GitHub Actions do not add theirs.
	ReportAfterSuite("criimage reports", func(r Report) {
		if env.Cfg.ReportDir == "" {
			return
		}
		paths, err := report.Write(env.Cfg.ReportDir, env.Cfg.ReportPrefix, r, exp)
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(os.Stdout, "criimage: reports written: %s\n", strings.Join(paths, ", "))
		if env.Cfg.StepSummary != "" {
			Expect(report.AppendStepSummary(env.Cfg.StepSummary, r, exp)).To(Succeed())
			fmt.Fprintf(os.Stdout, "criimage: summary appended to %s\n", env.Cfg.StepSummary)
		}
	})
	return su, nil
}

// entriesSince filters the journal for the current spec's time window. Specs in one process run
// one at a time, so the window is the spec's own traffic.
func entriesSince(env *harness.Env, since time.Time) []journal.Entry {
	var out []journal.Entry
	for _, e := range env.Reg.Journal().Entries() {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// Unsupported ends the running spec as "unsupported": the target cannot be judged on it (a
// feature it does not have, a configuration the spec cannot use), which is neither a pass nor a
// failure.
func Unsupported(format string, args ...any) {
	Skip(report.UnsupportedPrefix + fmt.Sprintf(format, args...))
}
