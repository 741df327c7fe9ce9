package mutants

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func TestIDsRegexp(t *testing.T) {
	re := regexp.MustCompile(idsRegexp([]string{"RM-001", "AUTH-002", "RM-001"}))
	for text, want := range map[string]bool{
		"[RM-001] removing by one tag": true, "[AUTH-002] username": true,
		"[RM-0011] x": false, "[AUTH-003] x": false, "RM-001 without brackets": false,
	} {
		if re.MatchString(text) != want {
			t.Errorf("%q: match %v", text, !want)
		}
	}
}

func TestReadReport(t *testing.T) {
	t0 := time.Now()
	spec := func(text string, state types.SpecState, at int) types.SpecReport {
		return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, State: state, StartTime: t0.Add(time.Duration(at) * time.Second)}
	}
	rep := []types.Report{{SpecReports: types.SpecReports{
		spec("[PULL-002] b", types.SpecStateFailed, 2),
		spec("[PULL-001] a", types.SpecStatePassed, 1),
		spec("[LIST-003] c", types.SpecStateTimedout, 0),
		spec("[FS-001] d", types.SpecStateSkipped, 3),
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStatePassed},
	}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	failed, ran, err := readReport(file)
	if err != nil || ran != 3 || strings.Join(failed, ",") != "LIST-003,PULL-002" {
		t.Fatalf("failed %v ran %d err %v", failed, ran, err)
	}

	rep[0].SpecReports = append(rep[0].SpecReports, types.SpecReport{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite,
		State: types.SpecStateFailed, Failure: types.Failure{Message: "no endpoint"}})
	b, _ = json.Marshal(rep)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readReport(file); err == nil || !strings.Contains(err.Error(), "no endpoint") {
		t.Fatalf("a failed BeforeSuite is no verdict: %v", err)
	}
}

func TestWriteTable(t *testing.T) {
	m, _ := Lookup(SizeZero)
	o := &Outcome{Skipped: []string{"PULL-003"}, Results: []Result{
		{Mutant: m},
		{Mutant: Mutant{Name: ListEmpty}, Killed: true, KilledBy: "PULL-001", Flaky: []string{"CANCEL-002"}},
	}}
	var b strings.Builder
	o.WriteTable(&b)
	for _, want := range []string{"| size-zero | **SURVIVED** |", "| list-empty | yes | PULL-001 |", "1/2 mutants killed",
		"its expected killers fail against the reference too: PULL-003", "flaky against list-empty", "CANCEL-002"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if len(o.Survivors()) != 1 {
		t.Error("survivors")
	}
}
