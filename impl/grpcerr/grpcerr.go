// Package grpcerr is the one place where impl's errors become gRPC statuses. impl's packages
// return domain errors — containerd's errdefs classes (errdefs.ErrNotFound, ErrUnavailable, …)
// and the context errors — and impl/service converts them here, at its edge. Two CRI rules live
// here and nowhere else: an unreachable or failing registry (errdefs.ErrUnavailable) is reported
// as codes.Unknown with cri-api's "RegistryUnavailable" prefix leading the message, because
// kubelet's CRI client keeps only the message of Unknown errors and classifies registry errors by
// that prefix (cri-api pkg/errors.ErrRegistryUnavailable); and a status built by the service
// itself passes through unchanged.
package grpcerr

import (
	"context"
	"errors"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RegistryUnavailable is cri-api's ErrRegistryUnavailable, the prefix of registry errors.
const RegistryUnavailable = "RegistryUnavailable"

// Code is the gRPC code of err.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.Canceled), errdefs.IsCanceled(err):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded), errdefs.IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsPermissionDenied(err):
		return codes.PermissionDenied
	case errdefs.IsUnauthorized(err):
		return codes.Unauthenticated
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		return codes.FailedPrecondition
	case errdefs.IsAborted(err):
		return codes.Aborted
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsDataLoss(err):
		return codes.DataLoss
	case errdefs.IsInternal(err):
		return codes.Internal
	}
	return codes.Unknown // errdefs.ErrUnavailable included: see RegistryUnavailable
}

// Status converts err: a status passes through; otherwise Code(err) with err's message, which a
// registry error (errdefs.ErrUnavailable) gets the RegistryUnavailable prefix in front of.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := err.Error()
	if errdefs.IsUnavailable(err) {
		msg = RegistryUnavailable + ": " + msg
	}
	return status.Error(Code(err), msg)
}
