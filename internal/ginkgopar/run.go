package ginkgopar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// Config is one parallel run.
type Config struct {
	// Procs is the number of worker processes (at least 1).
	Procs int
	// Command returns the command of worker proc (1..Procs). parallelFlags are ginkgo's flags
	// for it (--ginkgo.parallel.process, .total, .host): put them where the worker's flag parser
	// reads them. Run sets the command's Stdout, Stderr and process group, adds
	// GINKGO_PARALLEL_PROTOCOL=HTTP to its environment (os.Environ() when Env is nil), and stops
	// it when ctx ends: build it with exec.Command, not exec.CommandContext.
	Command func(proc int, parallelFlags []string) *exec.Cmd
	// Reporter gets the merged stream of the workers' reports, as the CLI's reporter does
	// (reporters.NewDefaultReporter); nil reports nothing.
	Reporter reporters.Reporter
	// Output gets what workers forward through the server and, after the run, the stdout and
	// stderr of every worker that failed (all of them when the run did not complete); nil
	// discards them.
	Output io.Writer
	// KillAfter is how long workers get to clean up once ctx is done: they are interrupted
	// (SIGINT to each worker's process group), then killed (SIGKILL to the group) after
	// KillAfter. 0 means 30 s, ginkgo's default grace period.
	KillAfter time.Duration
}

// Result is the outcome of a parallel run.
type Result struct {
	// Passed: every worker exited passing and the merged report says the suite succeeded.
	Passed bool
	// Complete: every worker reported the end of its suite, so Report holds them all.
	Complete bool
	// Report is the merged report of the workers that reported the end of their suite (as
	// ReportAfterSuite sees it on process 1, plus process 1's own ReportAfterSuite nodes).
	Report types.Report
	// Procs are the workers, in process order.
	Procs []Proc
}

// Proc is one worker's outcome.
type Proc struct {
	Proc   int
	Passed bool   // exit status 0, or ginkgo's "passed but programmatically focused" (197)
	Exit   string // how it ended ("exit status 1", "signal: killed", …)
	Output []byte // its own stdout and stderr, interleaved
}

const defaultKillAfter = 30 * time.Second

// worker is one running process.
type worker struct {
	proc   int
	cmd    *exec.Cmd
	out    bytes.Buffer // stdout and stderr; read only after wait returned
	exited atomic.Bool
	result Proc
}

// Run runs the suite in cfg.Procs workers and returns when all have exited. The error is for a
// run that could not start or was interrupted by ctx (wrapping ctx's cause); a run whose specs
// failed returns a Result with Passed false and no error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Procs < 1 {
		return Result{}, fmt.Errorf("parallel run: %d processes (want at least 1)", cfg.Procs)
	}
	if cfg.Command == nil {
		return Result{}, errors.New("parallel run: no worker command")
	}
	reporter := cfg.Reporter
	if reporter == nil {
		reporter = reporters.NoopReporter{}
	}
	output := cfg.Output
	if output == nil {
		output = io.Discard
	}
	killAfter := cfg.KillAfter
	if killAfter <= 0 {
		killAfter = defaultKillAfter
	}

	srv, err := newServer(cfg.Procs, reporter, output)
	if err != nil {
		return Result{}, err
	}
	srv.Start()
	serving := true
	defer func() {
		if serving {
			_ = srv.Close()
		}
	}()

	exits := make(chan *worker, cfg.Procs)
	workers := make([]*worker, 0, cfg.Procs)
	for proc := 1; proc <= cfg.Procs; proc++ {
		w, err := startWorker(cfg, proc, srv.Address())
		if err != nil {
			for _, started := range workers {
				_ = killGroup(started.cmd.Process)
			}
			for range workers {
				<-exits
			}
			return Result{}, err
		}
		srv.RegisterAlive(proc, func() bool { return !w.exited.Load() })
		workers = append(workers, w)
		go func() {
			w.wait()
			exits <- w
		}()
	}

	interrupted := false
	done := ctx.Done()
	var kill <-chan time.Time
	for running := len(workers); running > 0; {
		select {
		case <-exits:
			running--
		case <-done:
			// Ginkgo's interrupt, once: a second one (say, the server's abort on top) would
			// skip the clean-up that stops the target.
			done, interrupted = nil, true
			for _, w := range workers {
				if !w.exited.Load() {
					_ = interruptGroup(w.cmd.Process)
				}
			}
			timer := time.NewTimer(killAfter)
			defer timer.Stop()
			kill = timer.C
		case <-kill:
			kill = nil
			for _, w := range workers {
				_ = killGroup(w.cmd.Process)
			}
		}
	}
	if interrupted {
		// What the workers started and left behind (their process groups outlive them).
		for _, w := range workers {
			_ = killGroup(w.cmd.Process)
		}
	}

	// Every worker has exited; its last report is in, or it never will be (the CLI waits one
	// second too).
	select {
	case <-srv.SuiteDone():
	case <-time.After(time.Second):
	}
	serving = false
	closeErr := srv.Close()
	report, complete := srv.handler.result()

	res := Result{Complete: complete, Report: report, Passed: complete && report.SuiteSucceeded && !interrupted}
	for _, w := range workers {
		res.Procs = append(res.Procs, w.result)
		res.Passed = res.Passed && w.result.Passed
	}
	writeOutputs(output, res, interrupted)

	if interrupted {
		return res, errors.Join(fmt.Errorf("parallel run interrupted: %w", context.Cause(ctx)), closeErr)
	}
	return res, closeErr
}

// startWorker starts worker proc of cfg against the server at host.
func startWorker(cfg Config, proc int, host string) (*worker, error) {
	flags := []string{
		fmt.Sprintf("--ginkgo.parallel.process=%d", proc),
		fmt.Sprintf("--ginkgo.parallel.total=%d", cfg.Procs),
		"--ginkgo.parallel.host=" + host,
	}
	cmd := cfg.Command(proc, flags)
	if cmd == nil {
		return nil, fmt.Errorf("parallel process %d: no command", proc)
	}
	w := &worker{proc: proc, cmd: cmd}
	cmd.Stdout, cmd.Stderr = &w.out, &w.out
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	// The server is the HTTP one (ginkgo's default, RPC, is not copied); later entries win.
	cmd.Env = append(cmd.Env, "GINKGO_PARALLEL_PROTOCOL=HTTP")
	if cmd.WaitDelay == 0 {
		// A grandchild holding the worker's output open must not hold the run.
		cmd.WaitDelay = 10 * time.Second
	}
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("parallel process %d: start %s: %w", proc, cmd.Path, err)
	}
	return w, nil
}

// wait waits for the worker and records how it ended.
func (w *worker) wait() {
	err := w.cmd.Wait()
	w.exited.Store(true)
	w.result = Proc{Proc: w.proc, Output: w.out.Bytes()}
	var exit *exec.ExitError
	switch {
	case w.cmd.ProcessState == nil:
		w.result.Exit = err.Error()
	case err == nil || errors.As(err, &exit) || errors.Is(err, exec.ErrWaitDelay):
		code := w.cmd.ProcessState.ExitCode()
		w.result.Exit = w.cmd.ProcessState.String()
		w.result.Passed = code == 0 || code == types.GINKGO_FOCUS_EXIT_CODE
	default:
		w.result.Exit = fmt.Sprintf("%s (%v)", w.cmd.ProcessState, err)
	}
}

// writeOutputs shows the workers' own output where the CLI would: a failed worker's (its error
// may never have reached a report), every worker's when the run did not complete, and any that
// warns of deprecated ginkgo functionality.
func writeOutputs(w io.Writer, res Result, interrupted bool) {
	if !res.Complete && !interrupted {
		fmt.Fprintf(w, "\nparallel run: not every process reported back (%d processes); each process's own output follows.\n", len(res.Procs))
	}
	for _, p := range res.Procs {
		if res.Complete && p.Passed && !bytes.Contains(p.Output, []byte("deprecated Ginkgo functionality")) {
			continue
		}
		fmt.Fprintf(w, "\nparallel process %d of %d: %s; its output:\n", p.Proc, len(res.Procs), p.Exit)
		text := strings.TrimRight(string(p.Output), "\n")
		if text == "" {
			fmt.Fprintln(w, "  (none)")
			continue
		}
		for _, line := range strings.Split(text, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}
