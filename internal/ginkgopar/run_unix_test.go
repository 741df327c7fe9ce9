//go:build unix

package ginkgopar_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunCancel: when ctx ends, Run interrupts the workers, kills what is left after KillAfter,
// and kills their process groups: a child that ignores SIGINT does not outlive the run.
func TestRunCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a ginkgo program")
	}
	bin := buildTinySuite(t)
	for _, tc := range []struct {
		hang      string
		killAfter time.Duration
	}{
		{"1", 30 * time.Second},              // interrupted: the workers clean up and exit
		{"stubborn", 500 * time.Millisecond}, // a worker ignores the interrupt: killed
	} {
		t.Run("cancel leaves no process behind/"+tc.hang, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for ctx.Err() == nil {
					if _, err := os.Stat(filepath.Join(dir, "hanging")); err == nil {
						cancel()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			start := time.Now()
			res, out, err := tinyRun(ctx, t, bin, dir, tc.killAfter, "TINYSUITE_HANG="+tc.hang)
			if !errors.Is(err, context.Canceled) || res.Passed {
				t.Fatalf("Run: %v, passed %v; want context.Canceled and a failure\n%s", err, res.Passed, out)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Run took %s after the cancel", d)
			}
			b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			// The child ignored SIGINT; only the kill of its worker's process group ends it
			// (then init reaps it: a zombie for a moment counts as gone).
			deadline := time.Now().Add(10 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					t.Fatalf("the worker's child %d is still running", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// alive says whether pid is a process that is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	// pid (comm) STATE …
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}
