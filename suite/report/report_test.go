package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/expectations"
)

func spec(text string, state types.SpecState, msg string, labels ...string) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:   types.NodeTypeIt,
		LeafNodeText:   text,
		LeafNodeLabels: labels,
		State:          state,
		Failure:        types.Failure{Message: msg},
	}
}

func TestOutcomesAndMarkdown(t *testing.T) {
	r := types.Report{SuiteDescription: "demo", SpecReports: types.SpecReports{
		spec("[PULL-001] pulls", types.SpecStatePassed, "", "area:pull", "conformance"),
		spec("[PULL-002] fails", types.SpecStateFailed, "boom\nmore", "area:pull", "conformance"),
		spec("[FMT-010] schema1", types.SpecStateSkipped, "unsupported: feature \"schema1\" not declared", "area:fmt", "conformance"),
		spec("[REF-011] ids", types.SpecStatePassed, "", "area:ref", "informational"),
		spec("[AUTH-009] xfail", types.SpecStateSkipped, "expected failure: echoes secret", "area:auth", "conformance"),
		spec("[RM-001] filtered", types.SpecStateSkipped, "", "area:rm", "conformance"),
		spec("[FAIL-002] retry", types.SpecStateFailed, "FAIL-002 is listed as an expected failure (x) but passed", "area:fail", "conformance"),
	}}
	r.SpecReports[1].ReportEntries = types.ReportEntries{{Name: EntryTranscript, Value: types.WrapEntryValue("#1 GET /v2/x → 500")}}
	r.SpecReports[6].ReportEntries = types.ReportEntries{{Name: EntryUnexpectedPass, Value: types.WrapEntryValue("x")}}
	want := map[string]string{"PULL-001": Passed, "PULL-002": Failed, "FMT-010": Unsupported, "REF-011": Informational,
		"AUTH-009": ExpectedFailure, "FAIL-002": UnexpectedPass}
	got := Outcomes(Rows(r))
	for id, o := range want {
		if got[id] != o {
			t.Errorf("%s: outcome %q, want %q", id, got[id], o)
		}
	}
	if _, ok := got["RM-001"]; ok {
		t.Error("a filtered-out spec counts as run")
	}
	f, err := expectations.Parse([]byte("expectations: [{id: AUTH-009, reason: echoes secret}, {id: FAIL-002, reason: x}]"))
	if err != nil {
		t.Fatal(err)
	}
	md := Markdown(r, f)
	for _, s := range []string{"## pull", "| PULL-002 | fails | conformance | failed | boom |", "#1 GET /v2/x → 500",
		"| unsupported | 1 |", "| expected-failure | 1 |", "unexpected failure: PULL-002",
		"| unexpected-pass | 1 |", "now passes (remove it from the expectations file): FAIL-002"} {
		if !strings.Contains(md, s) {
			t.Errorf("summary lacks %q:\n%s", s, md)
		}
	}
	if strings.Contains(md, "RM-001") {
		t.Error("summary lists a filtered-out spec")
	}
}

// failedRun is a report with n failed specs, each with a transcript of size bytes.
func failedRun(n, size int) types.Report {
	r := types.Report{SuiteDescription: "big"}
	for i := range n {
		sr := spec(fmt.Sprintf("[PULL-%03d] fails", i+1), types.SpecStateFailed, "boom", "area:pull", "conformance")
		sr.ReportEntries = types.ReportEntries{{Name: EntryTranscript, Value: types.WrapEntryValue(strings.Repeat("#1 GET /v2/x → 500\n", size/20))}}
		r.SpecReports = append(r.SpecReports, sr)
	}
	return r
}

// TestAppendStepSummary: the summary is appended after what other steps wrote, which stays.
func TestAppendStepSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary.md")
	other := "## Build\n\nbuilt in 3 s (no final newline)"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := failedRun(2, 100)
	if err := AppendStepSummary(path, r, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := other + "\n" + Markdown(r, nil); string(got) != want {
		t.Errorf("step summary:\n%s\nwant:\n%s", got, want)
	}
	if err := AppendStepSummary(filepath.Join(t.TempDir(), "missing-dir", "x.md"), r, nil); err == nil {
		t.Error("no error for a step summary that cannot be opened")
	}
}

// TestStepSummaryLimit: what is appended fits in what GitHub's 1 MiB leaves of the file: the
// summary without transcripts when the whole one is too long, cut with a note when even that is.
func TestStepSummaryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary.md")
	other := strings.Repeat("other step's line\n", 100<<10/18) // ~100 KiB
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := failedRun(3, 600<<10) // three 600 KiB transcripts
	if err := AppendStepSummary(path, r, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), other) {
		t.Fatal("the other step's summary was not kept")
	}
	if len(got) > StepSummaryLimit {
		t.Errorf("step summary file is %d bytes, over GitHub's %d", len(got), StepSummaryLimit)
	}
	added := string(got[len(other):])
	for _, s := range []string{"| failed | 3 |", "- **PULL-002** fails: boom", "summary.md and report.html"} {
		if !strings.Contains(added, s) {
			t.Errorf("compact summary lacks %q", s)
		}
	}
	if strings.Contains(added, "GET /v2/x") {
		t.Error("the compact summary has transcripts")
	}

	cut := stepSummary(r, Rows(r), nil, 700)
	if len(cut) > 700 || !strings.Contains(cut, "**Truncated** at 700 bytes") || !strings.HasPrefix(cut, "# criimage conformance: big\n") {
		t.Errorf("summary cut at 700 bytes (%d):\n%s", len(cut), cut)
	}
}
