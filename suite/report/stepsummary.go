package report

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/expectations"
)

// StepSummaryLimit is GitHub's cap on one step's summary (the $GITHUB_STEP_SUMMARY file): 1 MiB.
// GitHub drops a summary over it.
const StepSummaryLimit = 1 << 20

// minStepSummary is what AppendStepSummary appends at most when the file is already near
// StepSummaryLimit: room for the counts and the truncation line.
const minStepSummary = 4 << 10

// AppendStepSummary appends the run's Markdown summary to path, GitHub's step summary file
// ($GITHUB_STEP_SUMMARY), which other steps write too: it is opened for appending and never
// truncated. The summary is summary.md's when that fits in what StepSummaryLimit leaves of the
// file, else the same without failure messages and transcripts (one line per failure), cut at a
// line with a note saying so if even that does not fit.
func AppendStepSummary(path string, r types.Report, exp *expectations.File) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("step summary: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("step summary: %w", cerr))
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("step summary: %w", err)
	}
	sep := ""
	if st.Size() > 0 {
		sep = "\n" // the file's last line may be another step's, unterminated
	}
	budget := max(StepSummaryLimit-int(st.Size())-len(sep), minStepSummary)
	if _, err := f.WriteString(sep + stepSummary(r, Rows(r), exp, budget)); err != nil {
		return fmt.Errorf("step summary %s: %w", path, err)
	}
	return nil
}

// stepSummary renders the summary of rows in at most budget bytes.
func stepSummary(r types.Report, rows []Row, exp *expectations.File, budget int) string {
	if s := markdown(r, rows, exp, true); len(s) <= budget {
		return s
	}
	s := markdown(r, rows, exp, false)
	if len(s) <= budget {
		return s
	}
	note := fmt.Sprintf("\n**Truncated** at %d bytes (GitHub's step summary holds 1 MiB): summary.md and report.html in the report directory hold all of it.\n", budget)
	cut := strings.LastIndexByte(s[:max(budget-len(note), 0)], '\n')
	return s[:cut+1] + note
}
