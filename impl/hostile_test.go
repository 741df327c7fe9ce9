package impl_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl"
)

// TestHostileInputEchoes: what a client sends is echoed in errors and log lines without the
// credentials it carries in the wrong place (userinfo in a reference or a server_address) and
// cut to a bounded length (a 1 MB reference made a 1 MB error and a 1 MB log line), and input
// that cannot be valid is InvalidArgument.
func TestHostileInputEchoes(t *testing.T) {
	logs := &safeBuffer{}
	s := start(t, t.TempDir(), impl.Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := context.Background()
	const secret = "S3cretPassw0rd"
	huge := "registry.example/" + strings.Repeat("a", 1<<20) + ":v1"
	pull := func(ref string, auth *runtime.AuthConfig) error {
		_, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: auth})
		return err
	}
	type call struct {
		name string
		do   func() error
		code codes.Code
	}
	for _, c := range []call{
		{"userinfo in the reference", func() error { return pull("user:"+secret+"@127.0.0.1:1/x:v1", nil) }, codes.InvalidArgument},
		{"userinfo in a URL reference", func() error { return pull("https://user:"+secret+"@127.0.0.1:1/x:v1", nil) }, codes.InvalidArgument},
		{"userinfo in server_address", func() error {
			return pull("127.0.0.1:1/x:v1", &runtime.AuthConfig{Username: "u", Password: "p", ServerAddress: "https://user:" + secret + "@127.0.0.1:1"})
		}, codes.InvalidArgument},
		{"user:password as server_address", func() error {
			return pull("127.0.0.1:1/x:v1", &runtime.AuthConfig{Username: "u", Password: "p", ServerAddress: "user:" + secret})
		}, codes.InvalidArgument},
		{"registry_token with CR/LF", func() error {
			return pull("127.0.0.1:1/x:v1", &runtime.AuthConfig{RegistryToken: "tok\r\nX-Injected: " + secret})
		}, codes.InvalidArgument},
		{"1 MB reference", func() error { return pull(huge, nil) }, codes.InvalidArgument},
		{"1 MB status key", func() error {
			_, err := s.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: huge}})
			return err
		}, codes.OK},
		{"1 MB remove key", func() error {
			_, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: huge}})
			return err
		}, codes.OK},
		{"1 MB runtime handler", func() error {
			_, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "127.0.0.1:1/x:v1", RuntimeHandler: huge}})
			return err
		}, codes.InvalidArgument},
	} {
		err := c.do()
		st := status.Convert(err)
		if st.Code() != c.code {
			t.Errorf("%s: %v %.300q, want %v", c.name, st.Code(), st.Message(), c.code)
		}
		if strings.Contains(st.Message(), secret) {
			t.Errorf("%s: the error carries the secret: %.300q", c.name, st.Message())
		}
		if len(st.Message()) > 1024 {
			t.Errorf("%s: a %d-byte error", c.name, len(st.Message()))
		}
	}
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("the log carries the secret")
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 2048 {
			t.Errorf("a %d-byte log line: %.200q…", len(line), line)
		}
	}
}
