package pull

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// registryUnavailable prefixes errors of an unreachable or failing registry, as cri-api's
// pkg/errors.ErrRegistryUnavailable names them.
const registryUnavailable = "RegistryUnavailable"

// Sentinel causes set by Pull itself.
var (
	errNoProgress      = errors.New("no progress")
	errAllCallersGone  = fmt.Errorf("every caller of this pull has gone: %w", context.Canceled)
	errNoPlatformMatch = errors.New("no manifest for the platform")
	errPullEnded       = errors.New("the pull ended") // cancels fetches still running when a pull returns
)

// dataLossError marks content that failed verification (digest, diff ID, decompression).
type dataLossError struct{ err error }

func (e dataLossError) Error() string { return e.err.Error() }
func (e dataLossError) Unwrap() error { return e.err }

// toStatus turns any pull error into a gRPC status naming the reference, with URL query values
// redacted (signed URLs). The code table is in the package comment.
func toStatus(ref string, err error) error {
	if err == nil {
		return nil
	}
	code, prefix := classify(err)
	msg := sanitize(err.Error())
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		msg = sanitize(s.Message())
	}
	if prefix != "" {
		// kubelet's CRI client flattens Unknown errors to their message and classifies registry
		// errors by this prefix (cri-api pkg/errors), so it leads.
		return status.Errorf(code, "%s: pull %q: %s", prefix, ref, msg)
	}
	return status.Errorf(code, "pull %q: %s", ref, msg)
}

// outOfSpace reports a write the local store could not complete for want of space or quota: a
// local resource error, never a registry one (os.PathError would otherwise pass for a net.Error).
func outOfSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func classify(err error) (codes.Code, string) {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code(), ""
	}
	if outOfSpace(err) {
		return codes.ResourceExhausted, ""
	}
	var unexpected remoteerrors.ErrUnexpectedStatus
	var netErr net.Error
	var urlErr *url.Error
	var dl dataLossError
	switch {
	case errors.Is(err, errNoProgress):
		return codes.Canceled, ""
	case errors.Is(err, context.Canceled):
		return codes.Canceled, ""
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, ""
	case errors.Is(err, errNoPlatformMatch):
		return codes.NotFound, ""
	case errors.As(err, &dl):
		return codes.DataLoss, ""
	case errors.Is(err, docker.ErrInvalidAuthorization):
		return codes.Unauthenticated, ""
	case errors.As(err, &unexpected):
		switch c := unexpected.StatusCode; {
		case c == http.StatusUnauthorized:
			return codes.Unauthenticated, ""
		case c == http.StatusForbidden:
			return codes.PermissionDenied, ""
		case c == http.StatusNotFound:
			return codes.NotFound, ""
		case c == http.StatusTooManyRequests || c >= 500:
			return codes.Unknown, registryUnavailable
		default:
			return codes.Unknown, ""
		}
	case errdefs.IsNotFound(err):
		return codes.NotFound, ""
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented, ""
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument, ""
	case errdefs.IsFailedPrecondition(err):
		// content.Writer.Commit: "unexpected commit digest/size" — the registry sent other bytes.
		return codes.DataLoss, ""
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return codes.Unknown, registryUnavailable
	}
	return codes.Unknown, ""
}

var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// sanitize redacts the query values and userinfo of every URL in msg (like containerd's
// internal/cri/util.SanitizeError, which is not importable).
func sanitize(msg string) string {
	return urlPattern.ReplaceAllStringFunc(msg, func(raw string) string {
		trail := ""
		for strings.HasSuffix(raw, ",") || strings.HasSuffix(raw, ":") || strings.HasSuffix(raw, ")") {
			trail = raw[len(raw)-1:] + trail
			raw = raw[:len(raw)-1]
		}
		u, err := url.Parse(raw)
		if err != nil {
			if i := strings.IndexAny(raw, "?#"); i >= 0 {
				return raw[:i] + "?REDACTED" + trail
			}
			return raw + trail
		}
		if u.RawQuery != "" {
			q := u.Query()
			for k := range q {
				if k == "ns" {
					continue
				}
				for i := range q[k] {
					q[k][i] = "REDACTED"
				}
			}
			u.RawQuery = q.Encode()
		}
		u.Fragment = ""
		return u.Redacted() + trail
	})
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
