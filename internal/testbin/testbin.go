// Package testbin gives tests that run criimage as a process (the Action's script, the network
// namespace test) the binary: the one an environment variable names (make targets pass
// bin/criimage), else a fresh `go build ./cmd/criimage` from the module root.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Criimage returns $envVar (absolute, or relative to the module root), else a build of
// ./cmd/criimage in a temporary directory.
func Criimage(t testing.TB, envVar string) string {
	t.Helper()
	root := ModuleRoot(t)
	if p := os.Getenv(envVar); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", envVar, err)
		}
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go on PATH to build criimage (or set %s): %v", envVar, err)
	}
	out := filepath.Join(t.TempDir(), "criimage")
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/criimage")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/criimage: %v\n%s", err, b)
	}
	return out
}

// ModuleRoot is the directory of the module's go.mod (`go env GOMOD`).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: %q %v (run from inside the module)", gomod, err)
	}
	return filepath.Dir(gomod)
}
