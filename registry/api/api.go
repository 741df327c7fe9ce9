// Package api serves the OCI/Docker distribution HTTP API (/v2/…) over a store.Store, and the
// foreign host's /blobs/<digest>.
//
// Behaviour follows distribution/distribution v3 where the spec leaves room: Accept negotiation
// (an OCI manifest or index requested without its type in Accept → 404 MANIFEST_UNKNOWN; a
// Docker manifest list requested by tag without list support → its linux/amd64 child), DELETE of
// a manifest removes the tags pointing at it, blob bytes served by http.ServeContent (Range,
// If-None-Match). Every error is a JSON distribution error; nothing panics on bad input.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
)

// Limits on request bodies held in memory.
const (
	MaxManifestSize = 4 << 20   // distribution's maxManifestBodySize
	MaxUploadSize   = 512 << 20 // per request; the store is in memory
)

// CDNNamespace is the namespace whose blob GETs redirect (307) to the foreign host.
const CDNNamespace = "cdn"

// Options configure the API handler.
type Options struct {
	Store *store.Store
	// ForeignURL returns the foreign host's base URL ("http://127.0.0.2:PORT"); blob GETs in the
	// cdn/ namespace redirect to ForeignURL()+"/blobs/<digest>". nil disables the redirect.
	ForeignURL func() string
	Logger     *slog.Logger // nil = discard
}

type handler struct {
	st      *store.Store
	foreign func() string
	log     *slog.Logger
}

// New returns the /v2/ handler.
func New(opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{st: opts.Store, foreign: opts.ForeignURL, log: log}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt := route.Parse(r.URL.Path)
	if err := h.serve(w, r, rt); err != nil {
		if err.Status >= 500 {
			h.log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "error", err.Message)
		}
		writeAPIError(w, r, err)
	}
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow ...string) *apiError {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return newErr(http.StatusMethodNotAllowed, errcode.Unsupported, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	if !rt.ValidName {
		return newErr(http.StatusBadRequest, errcode.NameInvalid, fmt.Sprintf("invalid repository name %q", rt.Repo))
	}
	switch rt.Kind {
	case route.KindPing:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(w, r, "GET", "HEAD")
		}
		writeJSON(w, r, http.StatusOK, "application/json", struct{}{})
		return nil
	case route.KindCatalog:
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, "GET")
		}
		return h.catalog(w, r)
	case route.KindManifest:
		return h.manifest(w, r, rt)
	case route.KindBlob:
		return h.blob(w, r, rt)
	case route.KindUpload:
		return h.upload(w, r, rt)
	case route.KindTags:
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, "GET")
		}
		return h.tags(w, r, rt)
	case route.KindReferrers:
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, "GET")
		}
		return h.referrers(w, r, rt)
	}
	return newErr(http.StatusNotFound, errcode.Unsupported, fmt.Sprintf("no distribution API at %s", r.URL.Path))
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		errcode.Write(w, r, http.StatusInternalServerError, errcode.Unknown, "encoding response: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// parseDigest validates a digest named in a path or query.
func parseDigest(s, what string) (digest.Digest, *apiError) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newErr(http.StatusBadRequest, errcode.DigestInvalid, fmt.Sprintf("invalid %s digest %q: %v", what, s, err))
	}
	return d, nil
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64, what string) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, newErr(http.StatusRequestEntityTooLarge, errcode.SizeInvalid, fmt.Sprintf("%s of %d bytes exceeds the limit of %d", what, r.ContentLength, limit))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, newErr(http.StatusBadRequest, errcode.BlobUploadInvalid, fmt.Sprintf("reading %s: %v", what, err))
	}
	if int64(len(b)) > limit {
		return nil, newErr(http.StatusRequestEntityTooLarge, errcode.SizeInvalid, fmt.Sprintf("%s exceeds the limit of %d bytes", what, limit))
	}
	return b, nil
}
