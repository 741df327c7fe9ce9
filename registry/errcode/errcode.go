// Package errcode owns the fixture registry's error answer: the distribution error body
// {"errors":[{"code","message","detail"}]} with its headers, and the codes (OCI distribution
// spec, "Error Codes"; distribution's registry/api/errcode for the HTTP statuses). Every part of
// the registry that refuses a request — the API, auth, injected faults, gates — answers through
// Write, so every error a client sees has the same shape. Written by hand: ggcr's pkg/registry
// error type is unexported, and containerd's errcode types are client-side.
package errcode

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/criimage/criimage/registry/route"
)

// Error codes.
const (
	BlobUnknown         = "BLOB_UNKNOWN"
	BlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	BlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	DigestInvalid       = "DIGEST_INVALID"
	ManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	ManifestInvalid     = "MANIFEST_INVALID"
	ManifestUnknown     = "MANIFEST_UNKNOWN"
	NameInvalid         = "NAME_INVALID"
	NameUnknown         = "NAME_UNKNOWN"
	SizeInvalid         = "SIZE_INVALID"
	TagInvalid          = "TAG_INVALID"
	Unauthorized        = "UNAUTHORIZED"
	Denied              = "DENIED"
	Unsupported         = "UNSUPPORTED"
	TooManyRequests     = "TOOMANYREQUESTS"
	Unavailable         = "UNAVAILABLE"
	RangeInvalid        = "RANGE_INVALID"
	PaginationInvalid   = "PAGINATION_NUMBER_INVALID"
	Unknown             = "UNKNOWN"
)

// Body returns the error body for one error (detail may be nil).
func Body(code, message string, detail any) []byte {
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	b, err := json.Marshal(struct {
		Errors []item `json:"errors"`
	}{[]item{{code, message, detail}}})
	if err != nil { // a detail that does not marshal: keep the answer well-formed anyway
		b, _ = json.Marshal(struct {
			Errors []item `json:"errors"`
		}{[]item{{code, message, nil}}})
	}
	return b
}

// Write answers status with the error body: Content-Type application/json, the distribution API
// version header, Content-Length, no Docker-Content-Digest; no body for HEAD.
func Write(w http.ResponseWriter, r *http.Request, status int, code, message string, detail any) {
	body := Body(code, message, detail)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Docker-Content-Digest")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// ForStatus picks the code an error of status on a request of kind carries, for answers that
// have only a status to go on (injected faults, gates).
func ForStatus(status int, kind route.Kind) string {
	switch status {
	case http.StatusUnauthorized:
		return Unauthorized
	case http.StatusForbidden:
		return Denied
	case http.StatusNotFound:
		switch kind {
		case route.KindBlob, route.KindForeign:
			return BlobUnknown
		case route.KindManifest:
			return ManifestUnknown
		}
		return NameUnknown
	case http.StatusMethodNotAllowed:
		return Unsupported
	case http.StatusTooManyRequests:
		return TooManyRequests
	case http.StatusServiceUnavailable:
		return Unavailable
	}
	return Unknown
}
