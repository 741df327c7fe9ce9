package census

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criimage/criimage/suite/expectations"
	"github.com/criimage/criimage/suite/report"
)

// writeRun lays out one run the way hack/flake-census.sh does.
func writeRun(t *testing.T, dir, target string, n, exit int, outcomes map[string]string) {
	t.Helper()
	run := filepath.Join(dir, target, fmt.Sprintf("run-%02d", n))
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"target": %q, "exit_code": %d, "started": "2026-12-03T10:00:00Z", "wall_seconds": %d.5}`, target, exit, 10+n)
	if err := os.WriteFile(filepath.Join(run, "census-run.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	if outcomes == nil {
		return // the run stopped before its suite wrote results
	}
	var rs []report.Result
	for id, o := range outcomes {
		rs = append(rs, report.Result{ID: id, Outcome: o})
	}
	b, _ := json.Marshal(rs)
	if err := os.WriteFile(filepath.Join(run, "results.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCollectAndCheck(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 4; i++ {
		fail2 := report.ExpectedFailure
		exit := 0
		if i == 3 {
			fail2, exit = report.UnexpectedPass, 1
		}
		writeRun(t, dir, "containerd-2.4.2", i, exit, map[string]string{"PULL-001": report.Passed, "FAIL-002": fail2, "FAIL-008": fail2, "AUTH-009": report.ExpectedFailure})
		ref := report.Passed
		if i == 4 {
			ref = report.Failed
		}
		writeRun(t, dir, Reference, i, 0, map[string]string{"PULL-001": report.Passed, "RACE-001": ref})
	}
	writeRun(t, dir, "containerd-1.6.20", 1, 1, nil)
	// A background load's logs beside the targets are not a target.
	if err := os.MkdirAll(filepath.Join(dir, "load"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "load", "run-1.log"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRun(t, dir, "containerd-1.6.20", 2, 0, map[string]string{"PULL-001": report.Passed})

	c, err := Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TargetNames(); strings.Join(got, ",") != "reference,containerd-1.6.20,containerd-2.4.2" {
		t.Errorf("targets %v", got)
	}
	cd := c.Targets["containerd-2.4.2"]
	if cd.Runs != 4 || cd.Green != 3 || len(cd.WallSeconds) != 4 {
		t.Errorf("2.4.2: %+v", cd)
	}
	if got := cd.Specs["FAIL-002"].String(); got != "3 of 4 expected-failure, 1 of 4 unexpected-pass" {
		t.Errorf("FAIL-002 cell %q", got)
	}
	if got := cd.Specs["PULL-001"].String(); got != "stable: passed" {
		t.Errorf("PULL-001 cell %q", got)
	}
	if got := c.Targets["containerd-1.6.20"].Specs["PULL-001"].String(); got != "1 of 2 missing, 1 of 2 passed" {
		t.Errorf("a run without results must count as missing: %q", got)
	}
	if got := c.Varied("containerd-2.4.2"); strings.Join(got, ",") != "FAIL-002,FAIL-008" {
		t.Errorf("varied %v", got)
	}

	f, err := expectations.Parse([]byte(`
expectations:
  - {id: FAIL-002, reason: "the GC races the retry: passed 1 of 4 runs", outcome: either}
  - {id: FAIL-008, reason: same root cause}
  - {id: AUTH-009, reason: echoes the secret}
  - {id: RM-007, reason: "timing", outcome: either}
`))
	if err != nil {
		t.Fatal(err)
	}
	errs := Check(c, "containerd-2.4.2", f)
	msgs := fmt.Sprint(errs)
	if len(errs) != 2 || !strings.Contains(msgs, "FAIL-008 varied on containerd-2.4.2") || !strings.Contains(msgs, "RM-007 on containerd-2.4.2 is either but its reason names no measured rate") {
		t.Errorf("Check: %v", errs)
	}
	if errs := Check(c, Reference, nil); len(errs) != 1 || !strings.Contains(errs[0].Error(), "RACE-001 varied on reference") {
		t.Errorf("reference: %v", errs)
	}

	// Round trip and rendering.
	path := filepath.Join(dir, "census.json")
	c.Name = "quiet"
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	md := Markdown([]*Census{back}, "###")
	for _, want := range []string{
		"### Census \"quiet\"",
		"| containerd-2.4.2 | 4 | 3 | 13s (12–14s) | 2 |",
		"| FAIL-002 | not run | not run | **3 of 4 expected-failure, 1 of 4 unexpected-pass** |",
		"<details><summary>Every spec (5)</summary>",
		"| PULL-001 | stable: passed | **1 of 2 missing, 1 of 2 passed** | stable: passed |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestCollectEmpty(t *testing.T) {
	if _, err := Collect(t.TempDir()); err == nil {
		t.Error("a directory without runs gave a census")
	}
}
