package mutants_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/criimage/criimage/internal/embedded"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/mutants"
)

// TestMutants is the runner's entry point (make mutants / make mutants-ci). It runs only when
// CRIIMAGE_MUTANTS says which mutants: "all", "ci" (the fast subset: CI mutants against their
// expected killer specs) or a comma-separated list of names. Other settings:
//
//	CRIIMAGE_MUTANTS_SUITE_BIN  the suite's test binary (default: built with go test -c ./suite)
//	CRIIMAGE_MUTANTS_PARALLEL   suite runs at a time (default 2)
//	CRIIMAGE_MUTANTS_DIR        where logs, reports and kill-table.md go (default: a temp dir)
//	CRIIMAGE_MUTANTS_FOCUSED    "1": run each mutant against its expected killers only
func TestMutants(t *testing.T) {
	sel := os.Getenv("CRIIMAGE_MUTANTS")
	if sel == "" {
		t.Skip("set CRIIMAGE_MUTANTS=all|ci|NAME,… (make mutants, make mutants-ci)")
	}
	var ms []mutants.Mutant
	focused := os.Getenv("CRIIMAGE_MUTANTS_FOCUSED") == "1"
	switch sel {
	case "all":
		ms = mutants.Catalog()
	case "ci":
		focused = true
		for _, m := range mutants.Catalog() {
			if m.CI {
				ms = append(ms, m)
			}
		}
	default:
		for _, name := range strings.Split(sel, ",") {
			m, err := mutants.Lookup(strings.TrimSpace(name))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
	}
	dir := os.Getenv("CRIIMAGE_MUTANTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("CRIIMAGE_MUTANTS_SUITE_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "suite.test")
		out, err := exec.Command("go", "test", "-c", "-o", bin, "github.com/criimage/criimage/suite").CombinedOutput()
		if err != nil {
			t.Fatalf("build the suite: %v\n%s", err, out)
		}
	}
	par, _ := strconv.Atoi(os.Getenv("CRIIMAGE_MUTANTS_PARALLEL"))

	out, err := mutants.Run(t.Context(), mutants.RunOptions{
		SuiteBinary: bin,
		Start:       startReference,
		Mutants:     ms,
		Focused:     focused,
		Parallel:    par,
		Features:    features(),
		WorkDir:     dir,
		SuiteArgs:   []string{"-rpc-timeout=15s", "-cleanup-timeout=10s"},
		Progress:    os.Stdout,
	})
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.Create(filepath.Join(dir, "kill-table.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	out.WriteTable(os.Stdout)
	out.WriteTable(table)
	if s := out.Survivors(); len(s) > 0 {
		t.Errorf("%d mutant(s) survived; see %s", len(s), table.Name())
	}
}

// features is what the reference declares, without restart: the runner cannot restart a target
// from a shell command, so the restart specs report "unsupported".
func features() string {
	var keep []string
	for _, f := range strings.Split(config.Reference().Features(), ",") {
		if f != config.FeatureRestart.String() && !strings.HasPrefix(f, config.FeatureRestart.String()+"=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, ",")
}

// startReference starts a fresh embedded reference (in its own temp dir).
func startReference(ctx context.Context, _, hostsDir string) (string, func() error, error) {
	srv, err := (&embedded.Reference{}).Start(context.WithoutCancel(ctx), hostsDir)
	if err != nil {
		return "", nil, err
	}
	return srv.Endpoint(), srv.Close, nil
}
