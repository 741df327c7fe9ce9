package api

import (
	"errors"
	"net/http"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/store"
)

// apiError is one distribution error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
	Detail  any
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "10")
	}
	errcode.Write(w, r, e.Status, e.Code, e.Message, e.Detail)
}

// fromStore maps a store error to a distribution error.
func fromStore(err error) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	switch {
	case errors.Is(err, store.ErrNameInvalid):
		return newErr(http.StatusBadRequest, errcode.NameInvalid, msg)
	case errors.Is(err, store.ErrTagInvalid):
		return newErr(http.StatusBadRequest, errcode.TagInvalid, msg)
	case errors.Is(err, store.ErrDigestInvalid):
		return newErr(http.StatusBadRequest, errcode.DigestInvalid, msg)
	case errors.Is(err, store.ErrBlobUnknown):
		return newErr(http.StatusNotFound, errcode.BlobUnknown, msg)
	case errors.Is(err, store.ErrManifestUnknown):
		return newErr(http.StatusNotFound, errcode.ManifestUnknown, msg)
	case errors.Is(err, store.ErrManifestInvalid):
		return newErr(http.StatusBadRequest, errcode.ManifestInvalid, msg)
	case errors.Is(err, store.ErrUploadUnknown):
		return newErr(http.StatusNotFound, errcode.BlobUploadUnknown, msg)
	case errors.Is(err, store.ErrRangeInvalid):
		return newErr(http.StatusRequestedRangeNotSatisfiable, errcode.RangeInvalid, msg)
	case errors.Is(err, store.ErrUploadTooLarge):
		return newErr(http.StatusRequestEntityTooLarge, errcode.Denied, msg)
	case errors.Is(err, store.ErrTooManyUploads):
		return newErr(http.StatusTooManyRequests, errcode.TooManyRequests, msg)
	}
	return newErr(http.StatusInternalServerError, errcode.Unknown, msg)
}
