package harness

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// leaky echoes the AuthConfig in its PullImage error, as containerd's ParseAuth does for a
// malformed auth field.
type leaky struct {
	runtime.UnimplementedImageServiceServer
}

func (leaky) PullImage(_ context.Context, r *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	a := r.GetAuth()
	return nil, status.Errorf(codes.Unknown, "invalid decoded auth: %q / %q", a.GetPassword(), a.GetAuth())
}

func TestSecretScannerSeesEveryError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "leaky.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtime.RegisterImageServiceServer(srv, leaky{})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	sc := NewSecretScanner()
	conn, err := Dial("unix://"+sock, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := runtime.NewImageServiceClient(conn)
	ctx := context.Background()

	if _, err := c.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "x"}}); err == nil {
		t.Fatal("leaky target pulled")
	}
	if l := sc.TakeLeaks(); len(l) != 0 {
		t.Errorf("leaks reported for an error without secrets: %v", l)
	}
	_, _ = c.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "x"},
		Auth: &runtime.AuthConfig{Username: FixtureUser, Password: FixturePassword}})
	if l := sc.TakeLeaks(); len(l) != 1 {
		t.Errorf("the fixture password in an error: leaks %v", l)
	}
	sc.Add("identity token", "criimage-identity-token-123")
	_, _ = c.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "x"},
		Auth: &runtime.AuthConfig{Auth: "criimage-identity-token-123"}})
	if l := sc.TakeLeaks(); len(l) != 1 {
		t.Errorf("a registered token in an error: leaks %v", l)
	}
}
