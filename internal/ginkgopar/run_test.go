package ginkgopar_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/internal/ginkgopar"
)

// buildTinySuite builds testdata/tinysuite, a small ginkgo program (see its doc).
func buildTinySuite(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tinysuite")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/tinysuite").CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/tinysuite: %v\n%s", err, out)
	}
	return bin
}

// tinyRun runs the tiny suite under Run with 2 processes; env adds TINYSUITE_* settings.
func tinyRun(ctx context.Context, t *testing.T, bin, dir string, killAfter time.Duration, env ...string) (ginkgopar.Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := ginkgopar.Run(ctx, ginkgopar.Config{
		Procs: 2,
		Command: func(_ int, flags []string) *exec.Cmd {
			cmd := exec.Command(bin, flags...)
			cmd.Env = append(append(os.Environ(), "TINYSUITE_DIR="+dir), env...)
			return cmd
		},
		Reporter:  reporters.NewDefaultReporter(types.ReporterConfig{NoColor: true}, &out),
		Output:    &out,
		KillAfter: killAfter,
	})
	return res, out.String(), err
}

var tinySpecs = []string{"plain 1", "plain 2", "plain 3", "plain 4", "rendezvous a", "rendezvous b", "serial", "slow"}

// specStates maps each It of a report to its state.
func specStates(r types.Report) map[string]types.SpecState {
	m := map[string]types.SpecState{}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType == types.NodeTypeIt {
			m[sr.LeafNodeText] = sr.State
		}
	}
	return m
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a ginkgo program")
	}
	bin := buildTinySuite(t)

	t.Run("passes", func(t *testing.T) {
		dir := t.TempDir()
		res, out, err := tinyRun(context.Background(), t, bin, dir, 0)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, out)
		}
		if !res.Passed || !res.Complete || len(res.Procs) != 2 {
			t.Fatalf("passed %v, complete %v, %d processes; want a complete pass of 2\n%s", res.Passed, res.Complete, len(res.Procs), out)
		}
		// The merged report (the server's) has every spec, passed; both processes ran specs; the
		// Serial one ran on process 1 (its body checked that it ran alone and last).
		states := specStates(res.Report)
		procs := map[int]bool{}
		for _, sr := range res.Report.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				continue
			}
			procs[sr.ParallelProcess] = true
			if sr.LeafNodeText == "serial" && sr.ParallelProcess != 1 {
				t.Errorf("the Serial spec ran on process %d", sr.ParallelProcess)
			}
		}
		for _, name := range tinySpecs {
			if states[name] != types.SpecStatePassed {
				t.Errorf("merged report: %q is %v, want passed", name, states[name])
			}
		}
		if len(states) != len(tinySpecs) || !procs[1] || !procs[2] {
			t.Errorf("merged report: %d specs (want %d) from processes %v (want 1 and 2)", len(states), len(tinySpecs), procs)
		}
		// Process 1's ReportAfterSuite got the merged report too: it is what writes the files.
		merged, err := os.ReadFile(filepath.Join(dir, "merged.txt"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range strings.Split(string(merged), "\n") {
			f := strings.Fields(line) // NAME… PROC STATE
			if len(f) < 3 || f[len(f)-1] != "passed" {
				t.Errorf("ReportAfterSuite on process 1: %q, want a passed spec", line)
				continue
			}
			names = append(names, strings.Join(f[:len(f)-2], " "))
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(tinySpecs, ",") {
			t.Errorf("ReportAfterSuite on process 1 saw %q, want %q", names, tinySpecs)
		}
		// SynchronizedBeforeSuite's data reached both processes.
		for _, p := range []string{"sbs-1", "sbs-2"} {
			if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != "from-1" {
				t.Errorf("%s: %q, %v; want process 1's data", p, b, err)
			}
		}
		if !strings.Contains(out, "Ran 8 of 8 Specs") || strings.Contains(out, "parallel process") {
			t.Errorf("output: want the merged summary and no worker output:\n%s", out)
		}
	})

	t.Run("a failing spec fails the run", func(t *testing.T) {
		res, out, err := tinyRun(context.Background(), t, bin, t.TempDir(), 0, "TINYSUITE_FAIL=1")
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, out)
		}
		if res.Passed || !res.Complete || res.Report.SuiteSucceeded {
			t.Fatalf("passed %v, complete %v, suite succeeded %v; want a complete failure\n%s", res.Passed, res.Complete, res.Report.SuiteSucceeded, out)
		}
		if s := specStates(res.Report)["fails"]; s != types.SpecStateFailed {
			t.Errorf("merged report: fails is %v", s)
		}
		failed := 0
		for _, p := range res.Procs {
			if !p.Passed {
				failed++
			}
		}
		if failed != 1 || !strings.Contains(out, "told to fail") || !strings.Contains(out, "; its output:") {
			t.Errorf("want one failed process, the failure and its process's output in:\n%s", out)
		}
	})

	t.Run("a worker that dies fails the run", func(t *testing.T) {
		// No TINYSUITE_DIR: the workers exit 2 before reaching ginkgo.
		var out bytes.Buffer
		res, err := ginkgopar.Run(context.Background(), ginkgopar.Config{
			Procs:   2,
			Command: func(_ int, flags []string) *exec.Cmd { return exec.Command(bin, flags...) },
			Output:  &out,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Passed || res.Complete || !strings.Contains(out.String(), "tinysuite: set TINYSUITE_DIR") {
			t.Errorf("passed %v, complete %v; want an incomplete failure with the workers' output:\n%s", res.Passed, res.Complete, out.String())
		}
	})
}
