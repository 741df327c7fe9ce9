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
	var out bytes.Buffer
	err := run.Main(context.Background(), []string{"--embedded", "--features", profile.Features(),
		"--focus", "CANCEL-00[3-6]", "--report-dir", dir}, &out, &out, run.Options{Embedded: ref.Start, EmbeddedRestart: ref.Restart})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
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
