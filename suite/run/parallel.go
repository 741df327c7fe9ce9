package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/internal/ginkgopar"
)

// --parallel N runs the tree in N processes of this binary, with ginkgo's own parallel protocol
// (internal/ginkgopar): the process Main runs in starts no target and runs no spec; it re-executes
// opts.Self N times as ginkgo's workers, with the same arguments and ginkgo's parallel flags, and
// reports what they report. As under `ginkgo -p`: process 1's SynchronizedBeforeSuite starts the
// target (the embedded reference with --embedded) and hands its endpoint to the others, Serial
// specs run on process 1 once the others are done, and process 1's ReportAfterSuite writes the
// reports from the merged report.

const parallelUsage = "run the specs in `N` processes of this binary (ginkgo's parallel mode, as ginkgo -p: " +
	"process 1 starts the target and runs the Serial specs alone; one set of reports); 1 runs in-process. " +
	"Ignored by a worker of a parallel run (--ginkgo.parallel.total > 1)"

// parallelProcs is the number of worker processes to start for --parallel n: 0 runs the specs
// in this process — n is 1, or this process is itself one of a parallel run's workers (its
// --ginkgo.parallel.* flags say so, whoever set them: Main's parent or the ginkgo CLI).
func parallelProcs(n int, suiteCfg types.SuiteConfig, opts Options) (int, error) {
	switch {
	case n < 1:
		return 0, fmt.Errorf("%w: --parallel %d: want 1 (in-process) or more processes", ErrUsage, n)
	case n == 1 || suiteCfg.ParallelTotal > 1:
		return 0, nil
	case suiteCfg.DryRun:
		return 0, fmt.Errorf("%w: --dry-run lists the specs in one process: drop --parallel %d", ErrUsage, n)
	case len(opts.Self) == 0:
		return 0, fmt.Errorf("--parallel %d: this program cannot start itself as workers", n)
	}
	return n, nil
}

// runParallel runs the suite in procs workers, each `opts.Self… PARALLEL-FLAGS… args…`, and says
// whether the run passed: every worker passed and the merged report says the suite succeeded.
// The workers' reports reach stdout merged, through ginkgo's default reporter as under the CLI.
func runParallel(ctx context.Context, procs int, args []string, stdout io.Writer, opts Options, suiteCfg types.SuiteConfig, repCfg types.ReporterConfig) (bool, error) {
	res, err := ginkgopar.Run(ctx, ginkgopar.Config{
		Procs: procs,
		Command: func(_ int, parallelFlags []string) *exec.Cmd {
			// The parallel flags first: after the arguments, a "--" among them would end the flags.
			argv := append(append(append([]string{}, opts.Self[1:]...), parallelFlags...), args...)
			return exec.Command(opts.Self[0], argv...)
		},
		Reporter:  reporters.NewDefaultReporter(repCfg, stdout),
		Output:    stdout,
		KillAfter: suiteCfg.GracePeriod,
	})
	if err != nil {
		return false, fmt.Errorf("--parallel %d: %w", procs, err)
	}
	if !res.Complete {
		return false, errors.New("--parallel: not every process reported the end of its run (its output is above)")
	}
	return res.Passed, nil
}
