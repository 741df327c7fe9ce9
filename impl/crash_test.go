package impl_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/registry/route"
)

// TestBinary builds cmd/criimage once and runs the tests that need the real process.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	t.Run("CrashDuringPull", func(t *testing.T) { testCrashDuringPull(t, bin) })
	t.Run("ServeFlagsAndSIGTERM", func(t *testing.T) { testServeFlagsAndSIGTERM(t, bin) })
}

// testCrashDuringPull runs the real binary ("criimage serve"), pulls one image, holds a second
// pull's last layer GET at the registry gate, kills the process with SIGKILL, and restarts on the
// same root: the whole image is still listed, nothing of the half pull is, and after recovery's
// GC no blob or snapshot of it is left.
func testCrashDuringPull(t *testing.T, bin string) {
	whole, half := fixtures.NameSchema2OneLayer, fixtures.NameSchema2Layers
	f := newRegistry(t, whole, half)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	sockDir, err := os.MkdirTemp("", "cic")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cmd := exec.Command(bin, "serve", "--listen", "unix://"+filepath.Join(sockDir, "s.sock"), "--root", root, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v", err)
	}
	endpoint, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if !ok {
		t.Fatalf("serve printed %q", line)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	is := runtime.NewImageServiceClient(conn)
	ctx := context.Background()
	if _, err := is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: f.ref(whole)}}); err != nil {
		t.Fatal(err)
	}
	h := f.cat.MustImage(half)
	g := f.reg.Gates().Arm(route.Match{Kind: route.KindBlob, Digest: h.Layers[len(h.Layers)-1]})
	go func() {
		_, _ = is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: f.ref(half)}})
	}()
	if err := g.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	<-g.ClientGone()
	g.Release()

	// Before recovery: the half pull's lease is there (the test is not vacuous).
	b, err := backend.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := b.Leases.List(b.Context(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var before int
	_ = b.RawContent().Walk(ctx, func(content.Info) error { before++; return nil })
	ingests, _ := os.ReadDir(filepath.Join(backend.ContentRoot(root), "ingest"))
	b.Close()
	if len(ls) == 0 {
		t.Fatal("no lease of the interrupted pull on disk")
	}
	t.Logf("after kill -9: %d leases, %d blobs, %d partial downloads on disk", len(ls), before, len(ingests))

	s := start(t, root, impl.Config{})
	list := s.list(t)
	w := f.cat.MustImage(whole)
	if len(list) != 1 || list[0].Id != w.ID {
		t.Fatalf("after restart List = %v, want only %s", list, w.ID)
	}
	if st := s.status(t, f.ref(half)); st != nil {
		t.Fatalf("half-pulled image reported: %v", st)
	}
	s.srv.Close()
	dirs, err := os.ReadDir(filepath.Join(backend.SnapshotterRoot(root, backend.Native), "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, snaps := onDisk(t, root)
	if blobs != 2+len(w.Layers) || snaps != len(w.Layers) {
		t.Fatalf("after recovery: %d blobs, %d snapshots; want %d and %d (the whole image only)", blobs, snaps, 2+len(w.Layers), len(w.Layers))
	}
	if len(dirs) != snaps {
		t.Fatalf("after recovery: %d snapshot directories for %d snapshots (orphans of the killed pull)", len(dirs), snaps)
	}
}

// buildBinary builds cmd/criimage into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "criimage")
	build := exec.Command("go", "build", "-o", bin, "github.com/criimage/criimage/cmd/criimage")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// testServeFlagsAndSIGTERM: bad flags exit 2 with a message naming the flag; SIGTERM shuts the
// server down cleanly (exit 0, socket removed, root reusable at once).
func testServeFlagsAndSIGTERM(t *testing.T, bin string) {
	root := t.TempDir()
	for _, tc := range [][]string{
		{"--snapshotter", "zfs"}, {"--runtime-handler", "novalue"}, {"--listen", "tcp://10.1.2.3:1"},
		{"--log-level", "loud"}, {"--stream-batch-size", "0"}, {"--pull-progress-timeout", "-1s"}, {"extra"},
	} {
		cmd := exec.Command(bin, append([]string{"serve", "--root", root}, tc...)...)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		// A bad --listen value is found when listening: exit 1 with the address named.
		want := 2
		if tc[0] == "--listen" {
			want = 1
		}
		if err == nil || code != want || !strings.Contains(string(out), strings.TrimPrefix(tc[len(tc)-1], "--")) {
			t.Errorf("serve %v: exit %d (want %d), output %q", tc, code, want, out)
		}
	}
	sockDir, err := os.MkdirTemp("", "cis")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s.sock")
	cmd := exec.Command(bin, "serve", "--listen", "unix://"+sock, "--root", root, "--log-level", "error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}
	s := start(t, root, impl.Config{})
	if n := len(s.list(t)); n != 0 {
		t.Fatalf("List = %d", n)
	}
}
