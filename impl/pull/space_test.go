package pull

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/grpcerr"
	"github.com/criimage/criimage/registry"
)

// TestPullOutOfSpace: a full local store is a local resource error (ResourceExhausted naming the
// store), never a RegistryUnavailable that would make kubelet back off as if the registry were
// down. Real ENOSPC from a small tmpfs root (needs root to mount; CI runs as root).
func TestPullOutOfSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	t.Parallel()
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	b, err := backend.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := &env{t: t, ctx: ctx, reg: reg, b: b, p: New(b, Options{})}
	big := make([]byte, 4<<20)
	_, _ = rand.Read(big)
	img := buildImage(t, true, linuxAMD64, map[string]string{"big": string(big)})
	e.push("anon/big", "v1", img)
	_, err = e.p.Pull(ctx, Request{Ref: e.ref(reg.PlainHost() + "/anon/big:v1")})
	st := status.Convert(grpcerr.Status(err))
	if st.Code() != codes.ResourceExhausted || strings.Contains(st.Message(), grpcerr.RegistryUnavailable) || !strings.Contains(st.Message(), root) {
		t.Fatalf("pull onto a full store: %v %q; want ResourceExhausted naming %s, no %s", st.Code(), st.Message(), root, grpcerr.RegistryUnavailable)
	}
	e.assertClean()
}

// TestOutOfSpaceClass: the same class for an injected ENOSPC (or EDQUOT) wherever it is wrapped.
func TestOutOfSpaceClass(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		&os.PathError{Op: "write", Path: "/var/lib/criimage/content/ingest/x/data", Err: syscall.ENOSPC},
		fmt.Errorf("failed to copy: %w", &os.PathError{Op: "write", Path: "/r/snapshots/native/new-1/fs/f", Err: syscall.EDQUOT}),
		fmt.Errorf("extract: %w", errors.Join(errors.New("apply layer"), syscall.ENOSPC)),
	} {
		st := status.Convert(grpcerr.Status(failed("example.com/a:b", err)))
		if st.Code() != codes.ResourceExhausted || strings.HasPrefix(st.Message(), grpcerr.RegistryUnavailable) {
			t.Errorf("%v → %v %q", err, st.Code(), st.Message())
		}
	}
}
