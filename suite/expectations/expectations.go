// Package expectations reads the known-failures file of a target and judges a run against it: the
// run fails on an unexpected failure and on an expected failure that now passes (so the file
// shrinks as the target improves).
//
// Format (YAML):
//
//	target: containerd v2.4.2          # free text
//	expectations:
//	  - id: AUTH-012                   # spec ID
//	    reason: ParseAuth echoes the decoded auth in its error
//	    issue: https://github.com/containerd/containerd/issues/NNNN
//	    outcome: failed                # optional: failed (default), either or unsupported
//
// "either" is for a deviation whose appearance depends on the target's own timing (for example a
// background garbage collector racing the spec's retry): the spec runs, a failure is reported as
// expected-failure and a pass as passed, and neither fails the run. The reason must say what timing
// and the rate measured by a flake census ("failed 7 of 10 runs"); a spec that a census saw vary
// must be "either" (suite/census.Check, enforced for this directory's files by a test against the
// censuses in census/). A listed "failed" spec that passes is reported as unexpected-pass.
package expectations

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// File is the parsed expectations file.
type File struct {
	Target       string        `json:"target,omitempty"`
	Expectations []Expectation `json:"expectations"`
}

// Expectation is one known deviation.
type Expectation struct {
	ID      string `json:"id"`
	Reason  string `json:"reason"`
	Issue   string `json:"issue,omitempty"`
	Outcome string `json:"outcome,omitempty"` // Failed (default), Either or Unsupported
}

// Outcomes an expectation may declare.
const (
	Failed      = "failed"
	Either      = "either"
	Unsupported = "unsupported"
)

var idPattern = regexp.MustCompile(`^[A-Z]+(-[A-Z0-9]+)*-[0-9]{3}$`)

// Load reads and validates path. An empty path yields an empty File.
func Load(path string) (*File, error) {
	if path == "" {
		return &File{}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse validates the YAML form.
func Parse(raw []byte) (*File, error) {
	var f File
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("expectations: %w", err)
	}
	seen := map[string]bool{}
	for i := range f.Expectations {
		e := &f.Expectations[i]
		if !idPattern.MatchString(e.ID) {
			return nil, fmt.Errorf("expectations[%d]: id %q is not a spec ID like AUTH-012", i, e.ID)
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("expectations: %s listed twice", e.ID)
		}
		seen[e.ID] = true
		if strings.TrimSpace(e.Reason) == "" {
			return nil, fmt.Errorf("expectations: %s needs a reason", e.ID)
		}
		switch e.Outcome {
		case "":
			e.Outcome = Failed
		case Failed, Either, Unsupported:
		default:
			return nil, fmt.Errorf("expectations: %s: outcome %q (want failed, either or unsupported)", e.ID, e.Outcome)
		}
	}
	return &f, nil
}

// Lookup returns the expectation for id.
func (f *File) Lookup(id string) (Expectation, bool) {
	for _, e := range f.Expectations {
		if e.ID == id {
			return e, true
		}
	}
	return Expectation{}, false
}

// Verdict is the judgement of one run.
type Verdict struct {
	UnexpectedFailures []string      // failed, not expected
	UnexpectedPasses   []Expectation // expected to fail, passed
	ExpectedFailures   []Expectation // failed as expected
	NotRun             []Expectation // expected, but the spec did not run (filtered out or unknown ID)
}

// OK reports whether the run meets the expectations.
func (v Verdict) OK() bool { return len(v.UnexpectedFailures) == 0 && len(v.UnexpectedPasses) == 0 }

// Judge compares outcomes (spec ID → "passed", "failed", "unsupported", "informational",
// "expected-failure", "unexpected-pass", "skipped") with the file. A spec listed as failing runs
// under the suite's expectation wrapper: its failure is reported as "expected-failure", and a pass
// as "unexpected-pass" (a failed spec, so the file shrinks). "failed" is always a failure the
// file does not cover, also for a listed spec (for example one raised by a cleanup hook).
func (f *File) Judge(outcomes map[string]string) Verdict {
	var v Verdict
	ids := make([]string, 0, len(outcomes))
	for id := range outcomes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		got := outcomes[id]
		exp, expected := f.Lookup(id)
		switch {
		case got == "failed":
			v.UnexpectedFailures = append(v.UnexpectedFailures, id)
		case !expected:
			if got == "unexpected-pass" {
				v.UnexpectedFailures = append(v.UnexpectedFailures, id)
			}
		case got == "unexpected-pass":
			v.UnexpectedPasses = append(v.UnexpectedPasses, exp)
		case exp.Outcome == Either:
			if got == "expected-failure" {
				v.ExpectedFailures = append(v.ExpectedFailures, exp)
			}
		case exp.Outcome == Failed && got == "expected-failure", exp.Outcome == got:
			v.ExpectedFailures = append(v.ExpectedFailures, exp)
		case got == "passed" || got == "informational":
			v.UnexpectedPasses = append(v.UnexpectedPasses, exp)
		}
	}
	for _, e := range f.Expectations {
		if _, ran := outcomes[e.ID]; !ran {
			v.NotRun = append(v.NotRun, e)
		}
	}
	return v
}

// String explains the verdict in a few lines.
func (v Verdict) String() string {
	var b strings.Builder
	for _, id := range v.UnexpectedFailures {
		fmt.Fprintf(&b, "unexpected failure: %s\n", id)
	}
	for _, e := range v.UnexpectedPasses {
		fmt.Fprintf(&b, "expected failure now passes (remove it from the expectations file): %s (%s)\n", e.ID, e.Reason)
	}
	return b.String()
}
