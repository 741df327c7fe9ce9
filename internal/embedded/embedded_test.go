package embedded_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/criimage/criimage/internal/embedded"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/run"
)

// TestNoProgressTimeout runs the cancellation specs against the reference configured without a
// progress timeout (0, containerd's "0s"): CANCEL-006 runs and passes, and the specs that need a
// timeout say unsupported instead of failing on a zero bound.
func TestNoProgressTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs part of the suite")
	}
	profile := config.Reference()
	profile.ProgressTimeout = 0
	ref := &embedded.Reference{Profile: &profile}
	dir := t.TempDir()
	// An explicit step summary: the run's own goes there (checked below), never into the
	// GITHUB_STEP_SUMMARY of a CI job running this test.
	stepSummary := filepath.Join(t.TempDir(), "step_summary.md")
	if err := os.WriteFile(stepSummary, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run.Main(context.Background(), []string{"--embedded", "--features", profile.Features(),
		"--focus", "CANCEL-00[3-6]", "--report-dir", dir, "--step-summary", stepSummary}, &out, &out, run.Options{Embedded: ref.Start, EmbeddedRestart: ref.Restart})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s, err := os.ReadFile(stepSummary); err != nil || !bytes.HasPrefix(s, []byte("earlier step\n\n# criimage conformance")) || !bytes.Contains(s, []byte("| cancel | 1 | 0 | 3 |")) {
		t.Errorf("step summary (%v):\n%s", err, s)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results []struct {
		ID      string `json:"id"`
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CANCEL-003": "unsupported", "CANCEL-004": "unsupported", "CANCEL-005": "unsupported", "CANCEL-006": "passed"}
	got := map[string]string{}
	for _, s := range results {
		got[s.ID] = s.Outcome
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q (all: %v)", id, got[id], w, got)
		}
	}
}
