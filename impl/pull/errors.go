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
)

// Sentinel causes set by Pull itself.
var (
	errNoProgress      = errors.New("no progress")
	errAllCallersGone  = fmt.Errorf("every caller of this pull has gone: %w", context.Canceled)
	errNoPlatformMatch = errors.New("no manifest for the platform")
	errPullEnded       = errors.New("the pull ended") // cancels fetches still running when a pull returns
)

// configError marks a registry configuration (hosts.toml) that cannot be used.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// dataLossError marks content that failed verification (digest, diff ID, decompression).
type dataLossError struct{ err error }

func (e dataLossError) Error() string { return e.err.Error() }
func (e dataLossError) Unwrap() error { return e.err }

// pullError is a failed pull as callers see it: a message that names the reference (URL query
// values and userinfo redacted) and the errdefs class of the failure (errors.Is / errdefs.IsX
// work on it; impl/grpcerr turns it into a gRPC status). The class table is in the package
// comment.
type pullError struct {
	msg   string
	class error
}

func (e *pullError) Error() string { return e.msg }
func (e *pullError) Unwrap() error { return e.class }

// failed classifies err and names ref in its message.
func failed(ref string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pullError
	if errors.As(err, &pe) {
		return err
	}
	return &pullError{msg: fmt.Sprintf("pull %q: %s", ref, sanitize(err.Error())), class: classify(err)}
}

// outOfSpace reports a write the local store could not complete for want of space or quota: a
// local resource error, never a registry one (os.PathError would otherwise pass for a net.Error).
func outOfSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func classify(err error) error {
	var unexpected remoteerrors.ErrUnexpectedStatus
	var netErr net.Error
	var urlErr *url.Error
	var dl dataLossError
	var cfg configError
	switch {
	case outOfSpace(err):
		return errdefs.ErrResourceExhausted
	case errors.Is(err, errNoProgress), errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, errNoPlatformMatch):
		return errdefs.ErrNotFound
	case errors.As(err, &dl):
		return errdefs.ErrDataLoss
	case errors.Is(err, docker.ErrInvalidAuthorization):
		return errdefs.ErrUnauthenticated
	case errors.As(err, &unexpected):
		switch c := unexpected.StatusCode; {
		case c == http.StatusUnauthorized:
			return errdefs.ErrUnauthenticated
		case c == http.StatusForbidden:
			return errdefs.ErrPermissionDenied
		case c == http.StatusNotFound:
			return errdefs.ErrNotFound
		case c == http.StatusTooManyRequests || c >= 500:
			return errdefs.ErrUnavailable
		default:
			return errdefs.ErrUnknown
		}
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound
	case errdefs.IsNotImplemented(err):
		return errdefs.ErrNotImplemented
	case errdefs.IsInvalidArgument(err):
		return errdefs.ErrInvalidArgument
	case errors.As(err, &cfg):
		return errdefs.ErrFailedPrecondition
	case errdefs.IsFailedPrecondition(err):
		// content.Writer.Commit: "unexpected commit digest/size" — the registry sent other bytes.
		return errdefs.ErrDataLoss
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrUnknown
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
