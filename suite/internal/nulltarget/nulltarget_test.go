package nulltarget_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/internal/nulltarget"
	"github.com/criimage/criimage/suite/report"
	"github.com/criimage/criimage/suite/specs"
)

// mayPass lists the specs that legitimately pass against a target that stores nothing, and why.
// Every other spec must fail (or be unsupported/informational): otherwise it checks nothing.
var mayPass = map[string]string{
	"PRE-001":  "a connectivity probe: ImageFsInfo answers",
	"FS-001":   "checks the shape of ImageFsInfo, which the null target fills in",
	"REF-004":  "absence of never-pulled images",
	"REF-009":  "ImageStatus(\"\") returns no image",
	"RM-002":   "idempotent removal — but the pull inside must fail first (MustPull checks presence)",
	"LIST-008": "StreamImages of an empty store: the null target is one, and the spec is about that case only (LIST-003/004 fail it on a full store)",
}

type recorder struct{ failed bool }

func (r *recorder) Fail() { r.failed = true }

// TestSpecsFailAgainstNullTarget runs the whole tree against the null ImageService and fails if
// any spec outside mayPass passes.
func TestSpecsFailAgainstNullTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole suite")
	}
	sock := filepath.Join(t.TempDir(), "null.sock")
	stop, err := nulltarget.Serve(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	cfg := config.Default()
	cfg.ImageEndpoint = "unix://" + sock
	cfg.RegistryConfigDir = t.TempDir()
	cfg.RPCTimeout = time.Second // gates are never reached: fail fast
	cfg.CleanupTimeout = 200 * time.Millisecond
	if err := cfg.Features.Set(config.Reference().Features()); err != nil {
		t.Fatal(err)
	}
	env := harness.NewEnv(cfg)
	env.Restart = func(context.Context) error { return nil }
	RegisterFailHandler(Fail)
	if err := specs.Register(env); err != nil {
		t.Fatal(err)
	}
	var rep Report
	ReportAfterSuite("capture", func(r Report) { rep = r })
	sc, rc := GinkgoConfiguration()
	rc.Succinct = true
	RunSpecs(&recorder{}, "criimage vs the null target", sc, rc)

	var passed []string
	total := 0
	for _, row := range report.Rows(rep) {
		if row.ID == "SUITE" {
			t.Errorf("suite node failed: %s", row.Note)
			continue
		}
		total++
		if row.Outcome == report.Passed {
			if _, ok := mayPass[row.ID]; !ok {
				passed = append(passed, row.ID+" "+row.Text)
			}
		}
	}
	sort.Strings(passed)
	if total < 50 {
		t.Fatalf("only %d specs ran", total)
	}
	for _, p := range passed {
		t.Errorf("passes against a target that stores nothing: %s", p)
	}
}
