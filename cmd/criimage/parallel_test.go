package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// parallelFocus selects four parallel specs and a Serial one (RESTART-001: it restarts the
// embedded reference, which lives in process 1).
const parallelFocus = `\[(PULL-00[12]|LIST-001|STATUS-001|RESTART-001)\]`

// TestTestParallel: `criimage test --embedded --parallel 2` runs the binary twice as ginkgo's
// workers (no ginkgo CLI): process 1 starts the embedded reference and shares it, the Serial spec
// runs on process 1, and one set of reports holds every spec. A spec whose outcome is wrong in any
// process fails the run; --parallel's mistakes are usage errors.
func TestTestParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs specs")
	}
	t.Parallel()

	t.Run("merged reports", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		stepSummary := filepath.Join(t.TempDir(), "step_summary.md")
		code, stdout, stderr := criimage(t, nil, "test", "--embedded", "--parallel", "2", "--focus", parallelFocus, "--report-dir", dir, "--step-summary", stepSummary)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, tail(stdout), tail(stderr))
		}
		// One process writes the reports, once: not every process, not the previews of the
		// selection (which run ReportAfterSuite too).
		if n := strings.Count(stdout, "criimage: reports written:"); n != 1 {
			t.Errorf("reports written %d times, want once:\n%s", n, tail(stdout))
		}
		if b, err := os.ReadFile(stepSummary); err != nil || strings.Count("\n"+string(b), "\n# ") != 1 {
			t.Errorf("step summary (%v): want one summary appended:\n%s", err, b)
		}
		if !strings.Contains(stdout, "Running in parallel across 2 processes") || !strings.Contains(stdout, "Ran 5 of ") {
			t.Errorf("stdout lacks the merged run's header and summary:\n%s", tail(stdout))
		}
		b, err := os.ReadFile(filepath.Join(dir, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var results []struct{ ID, Outcome string }
		if err := json.Unmarshal(b, &results); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range results {
			got = append(got, r.ID+" "+r.Outcome)
		}
		sort.Strings(got)
		want := []string{"LIST-001 passed", "PULL-001 passed", "PULL-002 passed", "RESTART-001 passed", "STATUS-001 passed"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("results.json: %q, want %q", got, want)
		}
		// ginkgo's own report: written by process 1 from the merged report of a 2-process run.
		b, err = os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var reports []types.Report
		if err := json.Unmarshal(b, &reports); err != nil || len(reports) != 1 {
			t.Fatalf("report.json: %v, %d reports", err, len(reports))
		}
		if n := reports[0].SuiteConfig.ParallelTotal; n != 2 {
			t.Errorf("report.json: a run of %d processes, want 2", n)
		}
		for _, sr := range reports[0].SpecReports {
			if sr.LeafNodeType == types.NodeTypeIt && sr.State == types.SpecStatePassed && strings.Contains(sr.LeafNodeText, "[RESTART-001]") && sr.ParallelProcess != 1 {
				t.Errorf("the Serial spec RESTART-001 ran on process %d", sr.ParallelProcess)
			}
		}
	})

	t.Run("a failure in a worker fails the run", func(t *testing.T) {
		t.Parallel()
		// PULL-001 listed as failing: its pass is an unexpected pass, which fails the run.
		exp := filepath.Join(t.TempDir(), "exp.yaml")
		if err := os.WriteFile(exp, []byte("target: test\nexpectations:\n  - id: PULL-001\n    reason: test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := criimage(t, nil, "test", "--embedded", "--parallel", "2", "--focus", parallelFocus, "--expectations", exp)
		if code != 1 || !strings.Contains(stdout, "is listed as an expected failure") {
			t.Errorf("exit %d, want 1 and the unexpected pass in the output\n%s\n%s", code, tail(stdout), tail(stderr))
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no process", []string{"--parallel", "0"}, "--parallel 0"},
		{"dry run", []string{"--parallel", "2", "--dry-run"}, "--dry-run lists the specs in one process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := criimage(t, nil, append([]string{"test", "--embedded", "--focus", parallelFocus}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2 and %q in:\n%s", code, tc.want, tail(stderr))
			}
		})
	}
}
