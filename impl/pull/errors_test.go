package pull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/impl/grpcerr"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	unexpected := func(code int) error {
		return remoteerrors.ErrUnexpectedStatus{StatusCode: code, Status: http.StatusText(code), RequestMethod: "GET",
			RequestURL: "https://cdn.example/blob?X-Amz-Signature=topsecret&ns=docker.io"}
	}
	for _, tc := range []struct {
		err    error
		code   codes.Code
		prefix string
	}{
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled, ""},
		{fmt.Errorf("%w from the registry in 1s (progress timeout): %w", errNoProgress, context.Canceled), codes.Canceled, ""},
		{errAllCallersGone, codes.Canceled, ""},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{fmt.Errorf("resolve: %w", errdefs.ErrNotFound), codes.NotFound, ""},
		{fmt.Errorf("%w linux/s390x", errNoPlatformMatch), codes.NotFound, ""},
		{fmt.Errorf("pull access denied: %w", docker.ErrInvalidAuthorization), codes.Unauthenticated, ""},
		{unexpected(401), codes.Unauthenticated, ""},
		{unexpected(403), codes.PermissionDenied, ""},
		{unexpected(404), codes.NotFound, ""},
		{unexpected(429), codes.Unknown, grpcerr.RegistryUnavailable},
		{unexpected(503), codes.Unknown, grpcerr.RegistryUnavailable},
		{unexpected(400), codes.Unknown, ""},
		{dataLossError{errors.New("wrong diff id")}, codes.DataLoss, ""},
		{fmt.Errorf("commit: %w", errdefs.ErrFailedPrecondition), codes.DataLoss, ""},
		{fmt.Errorf("x: %w", errdefs.ErrNotImplemented), codes.Unimplemented, ""},
		{errdefs.ErrInvalidArgument.WithMessage("bad"), codes.InvalidArgument, ""},
		{errors.New("something else"), codes.Unknown, ""},
	} {
		err := grpcerr.Status(failed("example.com/a:b", tc.err))
		if grpcerr.Code(err) != tc.code {
			t.Errorf("failed(%v) = %v, want %v", tc.err, grpcerr.Code(err), tc.code)
		}
		msg := status.Convert(grpcerr.Status(err)).Message()
		want := `pull "example.com/a:b": `
		if tc.prefix != "" {
			want = tc.prefix + ": " + want
		}
		if !strings.HasPrefix(msg, want) {
			t.Errorf("message %q does not start with the reference and %q", msg, tc.prefix)
		}
		if strings.Contains(msg, "topsecret") {
			t.Errorf("message %q leaks a URL signature", msg)
		}
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`GET https://cdn.example/b?sig=abc&ns=docker.io: 403`: `GET https://cdn.example/b?ns=docker.io&sig=REDACTED: 403`,
		`to "https://user:pw@reg.example/v2/"`:                `to "https://user:xxxxx@reg.example/v2/"`,
		`no url here`:                                         `no url here`,
		`(https://a.example/x?token=t1),`:                     `(https://a.example/x?token=REDACTED),`,
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
