package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/report"
)

func spec(id, text, area, level string, state types.SpecState, msg string, entries ...types.ReportEntry) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:   types.NodeTypeIt,
		LeafNodeText:   "[" + id + "] " + text,
		LeafNodeLabels: []string{"area:" + area, level},
		State:          state,
		Failure:        types.Failure{Message: msg},
		ReportEntries:  entries,
	}
}

func writeRun(t *testing.T, dir string, specs []types.SpecReport, gate string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := types.Report{SuiteDescription: "criimage conformance", StartTime: time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC),
		RunTime: 90 * time.Second, SpecReports: specs}
	b, err := json.Marshal([]types.Report{r})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if gate != "" {
		if err := os.WriteFile(filepath.Join(dir, "gate.json"), []byte(gate), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	expected := types.ReportEntry{Name: report.EntryExpectedFailure,
		Value: types.WrapEntryValue("rpc error: code = Unknown desc = boom\nreason: parse errors are Unknown\nissue: https://example.invalid/1")}
	writeRun(t, filepath.Join(dir, "ref"), []types.SpecReport{
		spec("REF-006", "malformed references are rejected with InvalidArgument", "ref", "recommended", types.SpecStatePassed, ""),
		spec("PULL-001", "pull by tag", "pull", "conformance", types.SpecStatePassed, ""),
		spec("LIST-004", "batches", "list", "conformance", types.SpecStateSkipped, report.UnsupportedPrefix+"feature not declared"),
	}, "")
	writeRun(t, filepath.Join(dir, "cd"), []types.SpecReport{
		spec("REF-006", "malformed references are rejected with InvalidArgument", "ref", "recommended", types.SpecStateSkipped,
			report.ExpectedFailurePrefix+"parse errors are Unknown", expected),
		spec("PULL-001", "pull by tag", "pull", "conformance", types.SpecStateFailed, "PullImage failed: boom"),
		spec("LIST-004", "batches", "list", "conformance", types.SpecStateSkipped, report.UnsupportedPrefix+"feature not declared"),
	}, `{"runtime":"containerd","version":"2.4.2","binary_version":"containerd 2.4.2","pull_path":"transfer","snapshotter":"overlayfs","features":"mirror","socket_ready_seconds":0.15,"wall_seconds":95.2,"suite":"run","result":"fail"}`)

	var out bytes.Buffer
	if err := run([]string{"-target", "reference=" + filepath.Join(dir, "ref"), "-target", "containerd 2.4.2=" + filepath.Join(dir, "cd")}, &out); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, want := range []string{
		"| area | reference | containerd 2.4.2 |",
		"| pull | 1 / 0 / 0 | 0 / 1 / 0 |",
		"| ref | 1 / 0 / 0 | 0 / 1 / 0 |",
		"| list | 0 / 0 / 1 | 0 / 0 / 1 |",
		"| **total** | **2 / 0 / 1** | **0 / 2 / 1** |",
		"| containerd 2.4.2 | containerd 2.4.2 | transfer | overlayfs |",
		"95s", "0.15s",
		"### PULL-001 — pull by tag (conformance)",
		"- **containerd 2.4.2**: failed (not covered by the expectations file)",
		"PullImage failed: boom",
		"### REF-006",
		"- **containerd 2.4.2**: expected-failure",
		"reason: parse errors are Unknown",
		"- **reference**: passed",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("output lacks %q\n%s", want, md)
		}
	}
	if strings.Contains(md, "### LIST-004") {
		t.Error("an unsupported spec is listed as a deviation")
	}
	if err := run([]string{"-target", "x"}, &out); err == nil {
		t.Error("-target without = accepted")
	}
	if err := run([]string{"-target", "x=" + t.TempDir()}, &out); err == nil {
		t.Error("a directory without report.json accepted")
	}
}

func TestRenderCensus(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, filepath.Join(dir, "ref"), []types.SpecReport{
		spec("PULL-001", "pull by tag", "pull", "conformance", types.SpecStatePassed, ""),
	}, "")
	c := filepath.Join(dir, "census.json")
	if err := os.WriteFile(c, []byte(`{"name": "quiet", "commit": "abc", "targets": {
		"containerd-2.4.2": {"runs": 10, "green": 7, "wall_seconds": [100, 110], "specs": {"FAIL-002": {"expected-failure": 7, "unexpected-pass": 3}, "PULL-001": {"passed": 10}}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-target", "reference=" + filepath.Join(dir, "ref"), "-census", c}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Stability (flake census)", "### Census \"quiet\"",
		"| FAIL-002 | **7 of 10 expected-failure, 3 of 10 unexpected-pass** |", "| PULL-001 | stable: passed |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
	if err := run([]string{"-target", "reference=" + filepath.Join(dir, "ref"), "-census", filepath.Join(dir, "nope.json")}, &out); err == nil {
		t.Error("a missing census file accepted")
	}
}
