// Command results writes docs/results.md from the JSON reports of conformance runs: a matrix of
// spec areas × targets (reference, containerd 2.4.2, containerd 1.6.20, …) with pass / fail /
// unsupported counts, and an evidence section for every spec that failed on some target.
//
//	go run ./hack/results -o docs/results.md \
//	    -target reference=_output/reference \
//	    -target "containerd 2.4.2=_output/gates/containerd-2.4.2" …
//
// Each target directory holds the suite's report.json (ginkgo's JSON report) and, for gates,
// gate.json (hack/containerd-gate.sh: version, features, wall time).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/census"
	"github.com/criimage/criimage/suite/report"
)

// target is one run.
type target struct {
	Name string
	Dir  string
	Gate *gateInfo
	Rows []report.Row
	// Expected holds, per spec ID, the "expected failure" entry (observed error, reason, issue).
	Expected map[string]string
	Start    string
	RunTime  string
}

// gateInfo is hack/containerd-gate.sh's gate.json.
type gateInfo struct {
	Runtime            string  `json:"runtime"`
	Version            string  `json:"version"`
	BinaryVersion      string  `json:"binary_version"`
	Snapshotter        string  `json:"snapshotter"`
	PullPath           string  `json:"pull_path"`
	Features           string  `json:"features"`
	Started            string  `json:"started"`
	SocketReadySeconds float64 `json:"socket_ready_seconds"`
	WallSeconds        float64 `json:"wall_seconds"`
	Suite              string  `json:"suite"`
	Result             string  `json:"result"`
}

type targetFlags []string

func (t *targetFlags) String() string     { return strings.Join(*t, ", ") }
func (t *targetFlags) Set(s string) error { *t = append(*t, s); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "results:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	var (
		out     string
		targets targetFlags
		command string
	)
	fs.StringVar(&out, "o", "", "output file (default stdout)")
	fs.Var(&targets, "target", "NAME=DIR of a run's reports (repeatable, in column order)")
	fs.StringVar(&command, "command", "make results", "the command to name in the generated file's header")
	var censusFiles targetFlags
	fs.Var(&censusFiles, "census", "a flake census JSON (hack/flake-census.sh) to render as the stability table (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no -target given")
	}
	var ts []*target
	for _, spec := range targets {
		name, dir, ok := strings.Cut(spec, "=")
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("-target %q: want NAME=DIR", spec)
		}
		t, err := load(name, dir)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	md := render(ts, command)
	if len(censusFiles) > 0 {
		var cs []*census.Census
		for _, p := range censusFiles {
			c, err := census.Load(p)
			if err != nil {
				return err
			}
			cs = append(cs, c)
		}
		md += "\n## Stability (flake census)\n\n" +
			"Each target run over and over under the same conditions (`make flake-census`, hack/flake-census.sh); per spec, " +
			"\"stable: OUTCOME\" when every run agreed, else \"k of N OUTCOME\" for each outcome seen. A spec that varies on a runtime " +
			"is listed as `either` in its expectations file with the measured rate and the mechanism; on the reference nothing may vary. " +
			"suite/expectations' TestExpectationsFollowCensus checks the expectations files against the censuses committed in " +
			"suite/expectations/census/.\n\n" + census.Markdown(cs, "###")
	}
	if out == "" {
		_, err := io.WriteString(stdout, md)
		return err
	}
	return os.WriteFile(out, []byte(md), 0o644)
}

func load(name, dir string) (*target, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	var reps []types.Report
	if err := json.Unmarshal(raw, &reps); err != nil {
		return nil, fmt.Errorf("target %s: report.json: %w", name, err)
	}
	if len(reps) != 1 {
		return nil, fmt.Errorf("target %s: report.json holds %d reports, want 1", name, len(reps))
	}
	r := reps[0]
	t := &target{Name: name, Dir: dir, Rows: report.Rows(r), Expected: map[string]string{},
		Start: r.StartTime.UTC().Format("2006-01-02 15:04 UTC"), RunTime: r.RunTime.Round(1e9).String()}
	for _, sr := range r.SpecReports {
		for _, e := range sr.ReportEntries {
			if e.Name == report.EntryExpectedFailure {
				t.Expected[report.ID(sr)] = e.StringRepresentation()
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "gate.json")); err == nil {
		var g gateInfo
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, fmt.Errorf("target %s: gate.json: %w", name, err)
		}
		t.Gate = &g
	}
	return t, nil
}

// counts is pass / fail / unsupported for a set of rows. Informational specs count as passed
// (they only record); expected failures count as failed (they are deviations, with a reason).
type counts struct{ pass, fail, unsupported int }

func (c *counts) add(outcome string) {
	switch outcome {
	case report.Passed, report.Informational:
		c.pass++
	case report.Failed, report.ExpectedFailure, report.UnexpectedPass:
		c.fail++
	case report.Unsupported, report.Skipped:
		c.unsupported++
	}
}

func (c counts) String() string { return fmt.Sprintf("%d / %d / %d", c.pass, c.fail, c.unsupported) }

func render(ts []*target, command string) string {
	var b strings.Builder
	b.WriteString("# Conformance results\n\n")
	fmt.Fprintf(&b, "Generated by `%s` (hack/results) from each run's `report.json` and `gate.json`; do not edit by hand.\n\n", command)
	b.WriteString("Reproduce (root, loopback only): `bash .ci/install-peers.sh`, then `make conformance-containerd VERSION=2.4.2`, " +
		"`PULL_PATH=local make conformance-containerd VERSION=2.4.2`, the same for VERSION=2.3.7, 2.2.9 and 1.6.20, " +
		"`make reference-report`, `make results`. Each gate writes its reports to `_output/gates/containerd-VERSION[-local]`; " +
		"known deviations are listed, with reasons and upstream issues, in `suite/expectations/containerd-VERSION[-local].yaml`.\n\n")

	b.WriteString("## Runs\n\n| target | runtime | pull path | snapshotter | started | suite time | gate wall time | CRI ready | features |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range ts {
		rt, pp, snap, wall, ready, feats := "embedded reference (impl)", "", "", "", "", ""
		if g := t.Gate; g != nil {
			rt = g.BinaryVersion
			pp, snap, feats = g.PullPath, g.Snapshotter, g.Features
			wall = fmt.Sprintf("%.0fs", g.WallSeconds)
			ready = fmt.Sprintf("%.2fs", g.SocketReadySeconds)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t.Name, cell(rt), pp, snap, t.Start, t.RunTime, wall, ready, cell(feats))
	}

	areas := map[string]bool{}
	for _, t := range ts {
		for _, r := range t.Rows {
			if r.Outcome != report.NotRun {
				areas[r.Area] = true
			}
		}
	}
	names := make([]string, 0, len(areas))
	for a := range areas {
		names = append(names, a)
	}
	sort.Strings(names)
	b.WriteString("\n## Matrix\n\nEach cell: passed / failed / unsupported specs. Informational specs count as passed, known deviations (expected failures) as failed.\n\n| area |")
	for _, t := range ts {
		fmt.Fprintf(&b, " %s |", t.Name)
	}
	b.WriteString("\n|---|")
	for range ts {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	totals := make([]counts, len(ts))
	for _, a := range names {
		fmt.Fprintf(&b, "| %s |", a)
		for i, t := range ts {
			var c counts
			for _, r := range t.Rows {
				if r.Area == a {
					c.add(r.Outcome)
					totals[i].add(r.Outcome)
				}
			}
			fmt.Fprintf(&b, " %s |", c)
		}
		b.WriteString("\n")
	}
	b.WriteString("| **total** |")
	for _, c := range totals {
		fmt.Fprintf(&b, " **%s** |", c)
	}
	b.WriteString("\n")

	// Deviations: every spec failed (or expected to fail) on some target.
	type dev struct {
		id, text, level string
	}
	var devs []dev
	seen := map[string]bool{}
	for _, t := range ts {
		for _, r := range t.Rows {
			if (r.Outcome == report.Failed || r.Outcome == report.ExpectedFailure || r.Outcome == report.UnexpectedPass) && !seen[r.ID] {
				seen[r.ID] = true
				devs = append(devs, dev{r.ID, r.Text, r.Level})
			}
		}
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].id < devs[j].id })
	b.WriteString("\n## Deviations and evidence\n\n")
	if len(devs) == 0 {
		b.WriteString("No spec failed on any target.\n")
	}
	for _, d := range devs {
		fmt.Fprintf(&b, "### %s — %s (%s)\n\n", d.id, d.text, d.level)
		for _, t := range ts {
			r, ok := find(t.Rows, d.id)
			if !ok {
				fmt.Fprintf(&b, "- **%s**: not run\n", t.Name)
				continue
			}
			fmt.Fprintf(&b, "- **%s**: %s", t.Name, r.Outcome)
			switch r.Outcome {
			case report.ExpectedFailure:
				b.WriteString("\n\n" + indentBlock(t.Expected[d.id]))
			case report.UnexpectedPass:
				b.WriteString(" (listed as a known deviation, but passed this run)\n\n" + indentBlock(r.Failure))
			case report.Failed:
				b.WriteString(" (not covered by the expectations file)\n\n" + indentBlock(r.Failure))
			case report.Unsupported, report.Skipped:
				if r.Note != "" {
					fmt.Fprintf(&b, " — %s", cell(r.Note))
				}
				b.WriteString("\n")
			default:
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func find(rows []report.Row, id string) (report.Row, bool) {
	for _, r := range rows {
		if r.ID == id {
			return r, true
		}
	}
	return report.Row{}, false
}

// indentBlock renders text as an indented code block inside a list item, trimmed to 12 lines.
func indentBlock(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 12 {
		lines = append(lines[:12], "…")
	}
	var b strings.Builder
	b.WriteString("  ```\n")
	for _, l := range lines {
		if len(l) > 400 {
			l = l[:400] + "…"
		}
		b.WriteString("  " + strings.ReplaceAll(l, "```", "'''") + "\n")
	}
	b.WriteString("  ```\n")
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
