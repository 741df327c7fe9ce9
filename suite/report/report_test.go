package report

import (
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
