package soak_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/criimage/criimage/soak"
)

// TestShortSoak runs every phase briefly against the real binary: nothing found wrong, and the
// figures count what happened.
func TestShortSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it for ~10s")
	}
	bin := filepath.Join(t.TempDir(), "criimage")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/criimage/criimage/cmd/criimage").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fig, err := soak.Run(ctx, soak.Options{Binary: bin, Dir: t.TempDir(), Duration: 3 * time.Second, Workers: 4, Crashes: 1, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + fig.Text())
	if !fig.OK() {
		t.Fatal("the soak found problems")
	}
	if fig.Ops["pull-healthy"] == 0 || fig.Ops["fsinfo"] == 0 || fig.Errors["pull-faulted"] == nil || fig.CrashRounds != 1 {
		t.Errorf("the storm did not do what it should: ops %v, errors %v, crash rounds %d", fig.Ops, fig.Errors, fig.CrashRounds)
	}
}
