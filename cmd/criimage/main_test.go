package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// envBeMain makes the test binary run main() instead of the tests, so that a test can run the
// real command line — its exit status included — in a fresh process (the suite's spec tree is
// ginkgo's global tree, built once per process).
const envBeMain = "CRIIMAGE_TEST_BE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envBeMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// criimage runs this binary as `criimage args…` and returns its exit status and output.
func criimage(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), envBeMain+"=1", "GITHUB_STEP_SUMMARY="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("criimage %v: %v", args, err)
	return 0, "", ""
}

// TestTestCommandLine: what a critest user types carries over, and mistakes are usage errors
// (exit 2) that name what was wrong — a typo'd focus included, which would otherwise "pass" with
// nothing run.
func TestTestCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs specs")
	}
	t.Parallel()
	crictl := filepath.Join(t.TempDir(), "crictl.yaml")
	if err := os.WriteFile(crictl, []byte("runtime-endpoint: unix:///nonexistent/criimage-test.sock\ntimeout: 2\ndebug: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badProfile := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(badProfile, []byte("name: x\nimageEndpont: unix:///x.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		exit     int
		inStderr []string
	}{
		{"focus selecting nothing", nil, []string{"test", "--embedded", "--focus", "NOPE-999"}, 2, []string{`no spec selected (of `, `focus "NOPE-999"`}},
		{"label filter selecting nothing", nil, []string{"test", "--embedded", "--ginkgo.label-filter", "area:nope"}, 2, []string{`label filter "area:nope"`}},
		{"unknown flag", nil, []string{"test", "--embedded", "--parallell=2"}, 2, []string{"flag provided but not defined: -parallell"}},
		{"stray argument", nil, []string{"test", "--embedded", "PULL-001"}, 2, []string{`unexpected arguments ["PULL-001"]`}},
		{"profile with a typo", nil, []string{"test", "--profile", badProfile}, 2, []string{"imageEndpont"}},
		{"explicit crictl config missing", nil, []string{"test", "--crictl-config", "/nonexistent/crictl.yaml"}, 2, []string{"/nonexistent/crictl.yaml"}},
		{"endpoint from crictl config", []string{"CRI_CONFIG_FILE=" + crictl, "CRIIMAGE_RPC_TIMEOUT=2s"}, []string{"test", "--focus", "PULL-001"}, 1,
			[]string{"image endpoint unix:///nonexistent/criimage-test.sock from the crictl config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := criimage(t, tc.env, tc.args...)
			if code != tc.exit {
				t.Errorf("criimage %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.exit, tail(stderr))
			}
			for _, want := range tc.inStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("criimage %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), want, tail(stderr))
				}
			}
		})
	}
}

// TestTestGinkgoFlags: ginkgo's own flags and --report-prefix pass through (critest's CI lines).
func TestTestGinkgoFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs specs")
	}
	t.Parallel()
	dir := t.TempDir()
	code, stdout, stderr := criimage(t, nil, "test", "--embedded", "--focus", "PULL-00[12]", "--ginkgo.randomize-all",
		"--ginkgo.seed=7", "--ginkgo.trace", "--ginkgo.flake-attempts=1", "--ginkgo.poll-progress-after=1m",
		"--ginkgo.timeout=5m", "--report-dir", dir, "--report-prefix", "windows")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, tail(stdout), tail(stderr))
	}
	if !strings.Contains(stdout, "Random Seed: 7") {
		t.Errorf("--ginkgo.seed=7 did not reach ginkgo:\n%s", tail(stdout))
	}
	b, err := os.ReadFile(filepath.Join(dir, "windows-results.json"))
	if err != nil {
		t.Fatalf("--report-prefix windows: %v", err)
	}
	var results []struct{ ID, Outcome string }
	if err := json.Unmarshal(b, &results); err != nil || len(results) != 2 {
		t.Errorf("windows-results.json: %v %+v, want the two focused specs", err, results)
	}
	for _, f := range []string{"windows-junit.xml", "windows-report.json", "windows-summary.md", "windows-report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report %s: %v", f, err)
		}
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// TestTestDoneFileAndWait: --done-file gets the report directory's path once the reports are
// written (a stale one is removed first), and --wait-after-run keeps the process until SIGTERM,
// then exits with the run's status — what a Sonobuoy plugin and a DaemonSet pod need.
func TestTestDoneFileAndWait(t *testing.T) {
	if testing.Short() {
		t.Skip("runs specs")
	}
	t.Parallel()
	dir := t.TempDir()
	reports, done := filepath.Join(dir, "results"), filepath.Join(dir, "sonobuoy", "done")
	if err := os.MkdirAll(filepath.Dir(done), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(done, []byte("/stale/from/an/earlier/run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "test", "--embedded", "--focus", "PULL-001", "--report-dir", reports, "--done-file", done, "--wait-after-run")
	cmd.Env = append(os.Environ(), envBeMain+"=1", "GITHUB_STEP_SUMMARY=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), "waiting for SIGTERM") {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("the run ended without waiting (%v):\n%s\n%s", err, tail(seen.String()), tail(stderr.String()))
		}
	}
	// Waiting: the done file is already there, naming the reports.
	if b, err := os.ReadFile(done); err != nil || string(b) != reports+"\n" {
		t.Errorf("done file = %q (%v), want %q", b, err, reports+"\n")
	}
	if _, err := os.Stat(filepath.Join(reports, "results.json")); err != nil {
		t.Errorf("the done file was written before the reports: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0 (the run passed)\n%s", err, tail(stderr.String()))
	}
	if code, _, stderr := criimage(t, nil, "test", "--embedded", "--done-file", done); code != 2 || !strings.Contains(stderr, "--done-file needs --report-dir") {
		t.Errorf("--done-file without --report-dir: exit %d, want 2:\n%s", code, tail(stderr))
	}
}
