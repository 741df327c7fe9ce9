// Package report turns a ginkgo report into the suite's outcomes (passed, failed, unsupported,
// informational, expected-failure, unexpected-pass, skipped) and writes the run's files (Write):
// junit.xml and report.json (ginkgo's own formats), results.json (spec ID → area, level, outcome),
// summary.md (a table per area and, for each failed spec, the registry transcript) and
// report.html, the same rows as one self-contained page: inline CSS, a small inline script that
// filters by outcome (every row shows without it), a Content-Security-Policy that forbids loading
// anything. Secrets appear in transcripts only as the journal's fingerprints. AppendStepSummary
// adds the Markdown summary to a GitHub step summary, within GitHub's 1 MiB cap.
//
// The page is rendered with the standard library's html/template and nothing else: its
// contextual escaping is what keeps a failure message or transcript (text from the target and
// the registry) from becoming markup or script, and its URL filter is a second guard behind the
// http/https check on expectation issue links. A page of tables needs no other template engine,
// no CSS framework and no JavaScript library.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/expectations"
)

// Report entry names and messages shared with the specs.
const (
	EntryTranscript       = "registry transcript"
	EntryExpectedFailure  = "expected failure"
	EntryUnexpectedPass   = "unexpected pass"
	ExpectedFailurePrefix = "expected failure: "
	UnsupportedPrefix     = "unsupported: "
)

// Outcomes.
const (
	Passed          = "passed"
	Failed          = "failed"
	Unsupported     = "unsupported"
	Informational   = "informational"
	ExpectedFailure = "expected-failure"
	// UnexpectedPass is a spec listed as an expected failure (outcome failed) whose body passed:
	// the run fails so that the expectations file shrinks. Its ginkgo state is failed; the
	// suite's wrapper marks it with an EntryUnexpectedPass report entry.
	UnexpectedPass = "unexpected-pass"
	Skipped        = "skipped"
	NotRun         = "not-run" // filtered out (focus, skip, label filter)
)

var idRE = regexp.MustCompile(`^\[([A-Z]+-[0-9]{3})\]`)

// ID returns the spec ID from a spec's text ("[AUTH-003] …"), or "".
func ID(sr types.SpecReport) string {
	m := idRE.FindStringSubmatch(sr.LeafNodeText)
	if m == nil {
		return ""
	}
	return m[1]
}

// Outcome classifies one spec.
func Outcome(sr types.SpecReport) string {
	switch {
	case sr.State == types.SpecStatePassed:
		if slices.Contains(sr.Labels(), "informational") {
			return Informational
		}
		return Passed
	case sr.State == types.SpecStateSkipped:
		msg := sr.Failure.Message
		switch {
		case strings.HasPrefix(msg, UnsupportedPrefix):
			return Unsupported
		case strings.HasPrefix(msg, ExpectedFailurePrefix):
			return ExpectedFailure
		case msg == "":
			return NotRun
		}
		return Skipped
	case sr.State == types.SpecStatePending:
		return Skipped
	case sr.State.Is(types.SpecStateFailureStates):
		for _, e := range sr.ReportEntries {
			if e.Name == EntryUnexpectedPass {
				return UnexpectedPass
			}
		}
		return Failed
	}
	return Skipped
}

// Row is one spec in the summary.
type Row struct {
	ID, Text, Area, Level, Outcome, Note string
	Failure, Transcript                  string

	observed []string // "observed" report entries, first lines
}

// Rows extracts the suite's specs (nodes without an ID, like BeforeSuite, are left out unless
// they failed).
func Rows(r types.Report) []Row {
	var rows []Row
	for _, sr := range r.SpecReports {
		id := ID(sr)
		if id == "" {
			if sr.State.Is(types.SpecStateFailureStates) {
				rows = append(rows, Row{ID: "SUITE", Text: sr.LeafNodeType.String(), Area: "suite", Outcome: Failed,
					Note: firstLine(sr.Failure.Message), Failure: sr.Failure.Message})
			}
			continue
		}
		row := Row{ID: id, Text: strings.TrimSpace(strings.TrimPrefix(sr.LeafNodeText, "["+id+"]")), Outcome: Outcome(sr)}
		for _, l := range sr.Labels() {
			switch {
			case strings.HasPrefix(l, "area:"):
				row.Area = strings.TrimPrefix(l, "area:")
			case l == "conformance" || l == "recommended" || l == "informational":
				row.Level = l
			}
		}
		switch row.Outcome {
		case Failed, UnexpectedPass:
			row.Note = firstLine(sr.Failure.Message)
			row.Failure = fmt.Sprintf("%s\n%s", sr.Failure.Message, sr.Failure.Location)
		case Unsupported, Skipped:
			row.Note = strings.TrimPrefix(sr.Failure.Message, UnsupportedPrefix)
		case ExpectedFailure:
			row.Note = strings.TrimPrefix(sr.Failure.Message, ExpectedFailurePrefix)
		}
		for _, e := range sr.ReportEntries {
			switch e.Name {
			case EntryTranscript:
				row.Transcript = e.StringRepresentation()
			case "observed":
				if row.Outcome == Informational || row.Outcome == Passed {
					row.observed = append(row.observed, firstLine(e.StringRepresentation()))
				}
			}
		}
		if row.Note == "" && len(row.observed) > 0 {
			row.Note = strings.Join(row.observed, "; ")
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

// Outcomes maps spec ID → outcome (for expectations.Judge).
func Outcomes(rows []Row) map[string]string {
	m := map[string]string{}
	for _, r := range rows {
		if r.ID != "SUITE" && r.Outcome != NotRun {
			m[r.ID] = r.Outcome
		}
	}
	return m
}

// Write writes junit.xml, report.json, results.json, summary.md and report.html into dir, each
// name prefixed with "PREFIX-" when prefix is set (critest's --report-prefix: several runs, one
// directory), and returns their paths.
func Write(dir, prefix string, r types.Report, exp *expectations.File) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	rows := Rows(r)
	junit := filepath.Join(dir, FileName(prefix, "junit.xml"))
	if err := reporters.GenerateJUnitReportWithConfig(r, junit, reporters.JunitReportConfig{OmitLeafNodeType: true}); err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	jsonPath := filepath.Join(dir, FileName(prefix, "report.json"))
	if err := reporters.GenerateJSONReport(r, jsonPath); err != nil {
		return nil, fmt.Errorf("json report: %w", err)
	}
	results := filepath.Join(dir, FileName(prefix, "results.json"))
	if err := WriteResults(results, rows); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	md := filepath.Join(dir, FileName(prefix, "summary.md"))
	if err := os.WriteFile(md, []byte(markdown(r, rows, exp, true)), 0o644); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	page := filepath.Join(dir, FileName(prefix, "report.html"))
	if err := writeHTML(page, r, rows, exp); err != nil {
		return nil, fmt.Errorf("html report: %w", err)
	}
	return []string{junit, jsonPath, results, md, page}, nil
}

// FileName is a report file's name under a --report-prefix.
func FileName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "-" + name
}

// Result is one spec in results.json, the machine-readable outcome file (one object per spec ID).
type Result struct {
	ID      string `json:"id"`
	Area    string `json:"area"`
	Level   string `json:"level"`
	Outcome string `json:"outcome"`
	Note    string `json:"note,omitempty"`
}

// WriteResults writes results.json: the outcome of every spec that ran, sorted by ID.
func WriteResults(path string, rows []Row) error {
	var out []Result
	for _, r := range ran(rows) {
		out = append(out, Result{ID: r.ID, Area: r.Area, Level: r.Level, Outcome: r.Outcome, Note: r.Note})
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(buf.String()), 0o644)
}

// ranOutcomes lists the outcomes of a spec that ran, in the order the summaries show them.
func ranOutcomes() []string {
	return []string{Passed, Failed, Unsupported, Informational, ExpectedFailure, UnexpectedPass, Skipped}
}

// ran returns the rows of the specs that ran (not filtered out): the rows of results.json, and
// of report.html.
func ran(rows []Row) []Row {
	var out []Row
	for _, r := range rows {
		if r.Outcome != NotRun {
			out = append(out, r)
		}
	}
	return out
}

// Markdown renders the summary (summary.md).
func Markdown(r types.Report, exp *expectations.File) string {
	return markdown(r, Rows(r), exp, true)
}

// markdown renders the summary of rows. With details, each failure comes with its whole message
// and its registry transcript; without, with its first line only (GitHub's step summary, when the
// whole summary is too long for it).
func markdown(r types.Report, rows []Row, exp *expectations.File, details bool) string {
	var b strings.Builder
	writeHeader(&b, r, rows, exp)
	writeAreaCounts(&b, rows)
	writeAreaTables(&b, rows)
	writeFailures(&b, rows, details)
	return b.String()
}

// writeHeader renders the title, the run's time and configuration, the outcome counts and the
// expectations not met.
func writeHeader(b *strings.Builder, r types.Report, rows []Row, exp *expectations.File) {
	fmt.Fprintf(b, "# %s\n\n", Title(r))
	fmt.Fprintf(b, "Run %s, %s.\n\n", r.StartTime.UTC().Format("2006-01-02 15:04:05 UTC"), r.RunTime.Round(1e6))
	if c := configuration(r); c != "" {
		fmt.Fprintf(b, "```\n%s\n```\n\n", c)
	}
	counts := map[string]int{}
	for _, row := range rows {
		counts[row.Outcome]++
	}
	b.WriteString("| outcome | specs |\n|---|---|\n")
	for _, o := range append(ranOutcomes(), NotRun) {
		fmt.Fprintf(b, "| %s | %d |\n", o, counts[o])
	}
	if v := verdict(rows, exp); v != "" {
		b.WriteString("\n**Expectations not met:**\n\n```\n" + v + "```\n")
	}
}

// verdict is the judgement of rows against exp when the run does not meet it, else "".
func verdict(rows []Row, exp *expectations.File) string {
	if exp == nil {
		return ""
	}
	if v := exp.Judge(Outcomes(rows)); !v.OK() {
		return v.String()
	}
	return ""
}

// writeAreaTables renders one table per area: every spec that ran.
func writeAreaTables(b *strings.Builder, rows []Row) {
	areas := map[string][]Row{}
	var names []string
	for _, row := range ran(rows) {
		if _, ok := areas[row.Area]; !ok {
			names = append(names, row.Area)
		}
		areas[row.Area] = append(areas[row.Area], row)
	}
	sort.Strings(names)
	for _, a := range names {
		fmt.Fprintf(b, "\n## %s\n\n| ID | spec | level | outcome | note |\n|---|---|---|---|---|\n", a)
		for _, row := range areas[a] {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", row.ID, cell(row.Text), row.Level, row.Outcome, cell(row.Note))
		}
	}
}

// writeFailures renders every failed and unexpected-pass spec: with details its message and
// registry transcript, else one line each.
func writeFailures(b *strings.Builder, rows []Row, details bool) {
	failed := failures(rows)
	if len(failed) == 0 {
		return
	}
	b.WriteString("\n## Failures\n")
	if !details {
		b.WriteString("\nFailure messages and registry transcripts: summary.md and report.html in the report directory.\n\n")
		for _, row := range failed {
			fmt.Fprintf(b, "- **%s** %s: %s\n", row.ID, row.Text, firstLine(row.Failure))
		}
		return
	}
	for _, row := range failed {
		fmt.Fprintf(b, "\n### %s %s\n\n```\n%s\n```\n", row.ID, row.Text, strings.TrimSpace(row.Failure))
		if row.Transcript != "" {
			fmt.Fprintf(b, "\nRegistry transcript (secrets as fingerprints):\n\n```\n%s\n```\n", strings.TrimSpace(row.Transcript))
		}
	}
}

// failures returns the failed and unexpected-pass rows: the ones whose failure a report details.
func failures(rows []Row) []Row {
	var out []Row
	for _, row := range rows {
		if row.Outcome == Failed || row.Outcome == UnexpectedPass {
			out = append(out, row)
		}
	}
	return out
}

// writeAreaCounts renders one line per area: outcome counts.
func writeAreaCounts(b *strings.Builder, rows []Row) {
	per := map[string]map[string]int{}
	var names []string
	for _, r := range rows {
		if r.Outcome == NotRun {
			continue
		}
		if per[r.Area] == nil {
			per[r.Area] = map[string]int{}
			names = append(names, r.Area)
		}
		per[r.Area][r.Outcome]++
	}
	sort.Strings(names)
	b.WriteString("\n| area | passed | failed | unsupported | informational | expected-failure |\n|---|---|---|---|---|---|\n")
	for _, a := range names {
		c := per[a]
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d |\n", a, c[Passed], c[Failed], c[Unsupported], c[Informational], c[ExpectedFailure])
	}
}

// configuration returns the first "configuration" entry (every parallel process records one).
func configuration(r types.Report) string {
	for _, sr := range r.SpecReports {
		for _, e := range sr.ReportEntries {
			if e.Name == "configuration" {
				return strings.TrimSpace(e.StringRepresentation())
			}
		}
	}
	return ""
}

// Title is the report's heading: the suite's description, prefixed with "criimage
// conformance: " unless it already says criimage.
func Title(r types.Report) string {
	if strings.HasPrefix(r.SuiteDescription, "criimage") {
		return r.SuiteDescription
	}
	return "criimage conformance: " + r.SuiteDescription
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
