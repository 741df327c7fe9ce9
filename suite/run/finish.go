package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/criimage/criimage/suite/report"
)

// What a run does once its reports are written, for the programs that wait on it: a done file
// (Sonobuoy's plugin contract: the results' path in a file it polls) and waiting for SIGTERM (a
// DaemonSet can only restart an exited container, which would run the suite again).

// finish is the end of a run that got to run its specs: the report line, the done file, the wait.
type finish struct {
	reportDir, reportPrefix string
	doneFile                string
	waitAfterRun            bool
}

// validate checks the combination before anything runs.
func (f finish) validate() error {
	if f.doneFile != "" && f.reportDir == "" {
		return fmt.Errorf("%w: --done-file needs --report-dir (the done file names the report directory)", ErrUsage)
	}
	return nil
}

// start removes a done file left by an earlier run, so that nobody reads it as this run's.
func (f finish) start() error {
	if f.doneFile == "" {
		return nil
	}
	if err := os.Remove(f.doneFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--done-file: %w", err)
	}
	return nil
}

// end reports where the reports are, writes the done file and, with --wait-after-run, waits for
// ctx to end (SIGTERM or SIGINT). runErr is the run's verdict, returned unchanged unless writing
// the done file fails.
func (f finish) end(ctx context.Context, stdout io.Writer, runErr error) error {
	if f.reportDir != "" {
		var names []string
		for _, n := range []string{"junit.xml", "report.json", "results.json", "summary.md", "report.html"} {
			names = append(names, report.FileName(f.reportPrefix, n))
		}
		fmt.Fprintf(stdout, "criimage: reports in %s (%s)\n", f.reportDir, strings.Join(names, ", "))
	}
	if f.doneFile != "" {
		if err := writeDoneFile(f.doneFile, f.reportDir); err != nil {
			return err
		}
	}
	if f.waitAfterRun {
		verdict := "passed"
		if runErr != nil {
			verdict = "failed"
		}
		fmt.Fprintf(stdout, "criimage: run finished (%s); waiting for SIGTERM (--wait-after-run)\n", verdict)
		<-ctx.Done()
	}
	return runErr
}

// writeDoneFile writes the report directory's absolute path and a newline into path, through a
// temporary file and a rename, so that a reader never sees half a path.
func writeDoneFile(path, reportDir string) error {
	abs, err := filepath.Abs(reportDir)
	if err != nil {
		return fmt.Errorf("--done-file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--done-file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".done-*")
	if err != nil {
		return fmt.Errorf("--done-file: %w", err)
	}
	_, werr := tmp.WriteString(abs + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--done-file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--done-file %s: %w", path, err)
	}
	return nil
}
