package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/criimage/criimage/registry/store"
)

// Distribution error codes (OCI distribution spec, "Error Codes"; distribution's
// registry/api/v2/errors.go for the HTTP statuses). containerd's core/remotes/docker carries only
// the generic codes (UNKNOWN, UNAUTHORIZED, …) and registers them in package state, so the
// distribution-specific ones are listed here.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeTagInvalid          = "TAG_INVALID"
	codeUnsupported         = "UNSUPPORTED"
	codeRangeInvalid        = "RANGE_INVALID"
	codePaginationInvalid   = "PAGINATION_NUMBER_INVALID"
	codeUnknown             = "UNKNOWN"
	codeDenied              = "DENIED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
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

// WriteError writes a distribution error body: {"errors":[{"code","message","detail"}]} with
// Content-Type application/json (no body for HEAD).
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string, detail any) {
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	body, err := json.Marshal(struct {
		Errors []item `json:"errors"`
	}{[]item{{code, message, detail}}})
	if err != nil { // detail is always JSON-marshalable here; keep the answer well-formed anyway
		body = []byte(`{"errors":[{"code":"UNKNOWN","message":"error encoding failed"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Docker-Content-Digest")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "10")
	}
	WriteError(w, r, e.Status, e.Code, e.Message, e.Detail)
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
		return newErr(http.StatusBadRequest, codeNameInvalid, msg)
	case errors.Is(err, store.ErrTagInvalid):
		return newErr(http.StatusBadRequest, codeTagInvalid, msg)
	case errors.Is(err, store.ErrDigestInvalid):
		return newErr(http.StatusBadRequest, codeDigestInvalid, msg)
	case errors.Is(err, store.ErrBlobUnknown):
		return newErr(http.StatusNotFound, codeBlobUnknown, msg)
	case errors.Is(err, store.ErrManifestUnknown):
		return newErr(http.StatusNotFound, codeManifestUnknown, msg)
	case errors.Is(err, store.ErrManifestInvalid):
		return newErr(http.StatusBadRequest, codeManifestInvalid, msg)
	case errors.Is(err, store.ErrUploadUnknown):
		return newErr(http.StatusNotFound, codeBlobUploadUnknown, msg)
	case errors.Is(err, store.ErrRangeInvalid):
		return newErr(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, msg)
	case errors.Is(err, store.ErrUploadTooLarge):
		return newErr(http.StatusRequestEntityTooLarge, codeDenied, msg)
	case errors.Is(err, store.ErrTooManyUploads):
		return newErr(http.StatusTooManyRequests, codeTooManyRequests, msg)
	}
	return newErr(http.StatusInternalServerError, codeUnknown, msg)
}
