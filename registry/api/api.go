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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// ---- manifests ----

// accepts is the set of media types named in Accept headers (q values ignored, like distribution).
func accepts(r *http.Request) map[string]bool {
	out := map[string]bool{}
	for _, h := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil {
				out[mt] = true
			}
		}
	}
	return out
}

func (h *handler) manifest(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	ref := rt.Reference
	var dgst digest.Digest
	if strings.Contains(ref, ":") {
		d, err := parseDigest(ref, "manifest")
		if err != nil {
			return err
		}
		dgst = d
	} else if !store.ValidTag(ref) {
		return newErr(http.StatusBadRequest, errcode.TagInvalid, fmt.Sprintf("invalid tag %q", ref))
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return h.getManifest(w, r, rt.Repo, ref, dgst)
	case http.MethodPut:
		return h.putManifest(w, r, rt.Repo, ref, dgst)
	case http.MethodDelete:
		if dgst == "" {
			if err := h.st.DeleteTag(rt.Repo, ref); err != nil {
				return fromStore(err)
			}
		} else if err := h.st.DeleteManifest(rt.Repo, dgst); err != nil {
			return fromStore(err)
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return methodNotAllowed(w, r, "GET", "HEAD", "PUT", "DELETE")
}

func (h *handler) getManifest(w http.ResponseWriter, r *http.Request, repo, ref string, dgst digest.Digest) *apiError {
	m, err := h.st.Manifest(repo, ref)
	if err != nil {
		return fromStore(err)
	}
	acc := accepts(r)
	switch {
	case m.MediaType == store.MediaTypeOCIManifest && !acc[store.MediaTypeOCIManifest]:
		return newErr(http.StatusNotFound, errcode.ManifestUnknown, "OCI manifest found, but accept header does not support OCI manifests")
	case m.MediaType == store.MediaTypeOCIIndex && !acc[store.MediaTypeOCIIndex]:
		return newErr(http.StatusNotFound, errcode.ManifestUnknown, "OCI index found, but accept header does not support OCI indexes")
	case dgst == "" && m.MediaType == store.MediaTypeManifestList && !acc[store.MediaTypeManifestList]:
		// distribution: an old client asking by tag gets the linux/amd64 image.
		child, aerr := h.defaultPlatformChild(repo, m)
		if aerr != nil {
			return aerr
		}
		if child.MediaType == store.MediaTypeSchema2 && !acc[store.MediaTypeSchema2] {
			return newErr(http.StatusBadRequest, errcode.ManifestInvalid, "Schema 2 manifest not supported by client")
		}
		m = child
	}
	if etagMatch(r, m.Digest.String()) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Content-Length", strconv.Itoa(len(m.Raw)))
	hd.Set("Docker-Content-Digest", m.Digest.String())
	hd.Set("Etag", fmt.Sprintf("%q", m.Digest.String()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Raw)
	}
	return nil
}

func (h *handler) defaultPlatformChild(repo string, list store.Manifest) (store.Manifest, *apiError) {
	var idx ocispec.Index
	if err := json.Unmarshal(list.Raw, &idx); err != nil {
		return store.Manifest{}, newErr(http.StatusNotFound, errcode.ManifestUnknown, "manifest list is not valid JSON and the client does not accept lists")
	}
	for _, c := range idx.Manifests {
		if c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == "amd64" {
			m, err := h.st.Manifest(repo, c.Digest.String())
			if err != nil {
				return store.Manifest{}, fromStore(err)
			}
			return m, nil
		}
	}
	return store.Manifest{}, newErr(http.StatusNotFound, errcode.ManifestUnknown, "manifest list has no linux/amd64 image and the client does not accept lists")
}

func etagMatch(r *http.Request, etag string) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		if v == etag || v == strconv.Quote(etag) {
			return true
		}
	}
	return false
}

// putManifestTypes are the manifest media types a push may use.
var putManifestTypes = map[string]bool{
	store.MediaTypeSchema1: true, store.MediaTypeSchema1Signed: true, store.MediaTypeSchema2: true,
	store.MediaTypeManifestList: true, store.MediaTypeOCIManifest: true, store.MediaTypeOCIIndex: true,
}

func (h *handler) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string, dgst digest.Digest) *apiError {
	raw, aerr := readBody(r, MaxManifestSize, "manifest")
	if aerr != nil {
		if aerr.Code == errcode.BlobUploadInvalid {
			aerr.Code = errcode.ManifestInvalid
		}
		return aerr
	}
	mt := r.Header.Get("Content-Type")
	if mt != "" {
		parsed, _, err := mime.ParseMediaType(mt)
		if err != nil {
			return newErr(http.StatusBadRequest, errcode.ManifestInvalid, fmt.Sprintf("invalid Content-Type %q: %v", mt, err))
		}
		mt = parsed
	}
	if mt != "" && !putManifestTypes[mt] {
		return newErr(http.StatusBadRequest, errcode.ManifestInvalid, fmt.Sprintf("unsupported manifest media type %q", mt))
	}
	var p struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return newErr(http.StatusBadRequest, errcode.ManifestInvalid, fmt.Sprintf("manifest is not valid JSON: %v", err))
	}
	if mt == "" {
		detected, err := store.DetectMediaType(raw)
		if err != nil {
			return fromStore(err)
		}
		if !putManifestTypes[detected] {
			return newErr(http.StatusBadRequest, errcode.ManifestInvalid, fmt.Sprintf("unsupported manifest media type %q", detected))
		}
		mt = detected
	}
	if p.MediaType != "" && p.MediaType != mt {
		return newErr(http.StatusBadRequest, errcode.ManifestInvalid, fmt.Sprintf("manifest mediaType %q does not match Content-Type %q", p.MediaType, mt))
	}
	refs, err := store.ParseReferences(mt, raw)
	if err != nil {
		return fromStore(err)
	}
	for _, b := range refs.Blobs {
		if b.Validate() != nil {
			return newErr(http.StatusBadRequest, errcode.DigestInvalid, fmt.Sprintf("manifest references invalid digest %q", string(b)))
		}
		if _, ok := h.st.Blob(repo, b); !ok {
			return &apiError{Status: http.StatusBadRequest, Code: errcode.ManifestBlobUnknown, Message: fmt.Sprintf("blob %s unknown to %s", b, repo), Detail: map[string]string{"digest": b.String()}}
		}
	}
	for _, c := range refs.Manifests {
		if c.Validate() != nil {
			return newErr(http.StatusBadRequest, errcode.DigestInvalid, fmt.Sprintf("index references invalid digest %q", string(c)))
		}
		if _, err := h.st.Manifest(repo, c.String()); err != nil {
			return &apiError{Status: http.StatusBadRequest, Code: errcode.ManifestBlobUnknown, Message: fmt.Sprintf("manifest %s unknown to %s", c, repo), Detail: map[string]string{"digest": c.String()}}
		}
	}
	tag := ""
	if dgst == "" {
		tag = ref
	}
	// OCI distribution-spec (dev): PUT by digest may name tags in "tag" query parameters.
	extraTags := r.URL.Query()["tag"]
	for _, t := range extraTags {
		if !store.ValidTag(t) {
			return newErr(http.StatusBadRequest, errcode.TagInvalid, fmt.Sprintf("invalid tag %q in tag parameter", t))
		}
	}
	d, err := h.st.PutManifestAs(repo, tag, mt, raw, dgst)
	if err != nil {
		return fromStore(err)
	}
	for _, t := range extraTags {
		if err := h.st.Tag(repo, t, d); err != nil {
			return fromStore(err)
		}
		w.Header().Add("OCI-Tag", t)
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if refs.Subject != nil {
		hd.Set("OCI-Subject", refs.Subject.Digest.String())
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// ---- blobs ----

func (h *handler) blob(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	d, aerr := parseDigest(rt.Reference, "blob")
	if aerr != nil {
		return aerr
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		data, ok := h.st.Blob(rt.Repo, d)
		if !ok {
			return newErr(http.StatusNotFound, errcode.BlobUnknown, fmt.Sprintf("blob %s unknown to %s", d, rt.Repo))
		}
		if r.Method == http.MethodGet && rt.Namespace == CDNNamespace && h.foreign != nil {
			w.Header().Set("Location", h.foreign()+"/blobs/"+d.String())
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
		ServeBlob(w, r, d, data)
		return nil
	case http.MethodDelete:
		if !h.st.DeleteBlob(rt.Repo, d) {
			return newErr(http.StatusNotFound, errcode.BlobUnknown, fmt.Sprintf("blob %s unknown to %s", d, rt.Repo))
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return methodNotAllowed(w, r, "GET", "HEAD", "DELETE")
}

// ServeBlob writes blob bytes with Docker-Content-Digest and Etag; http.ServeContent answers
// Range (206/416), conditional requests and HEAD.
func ServeBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, data []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Etag", strconv.Quote(d.String()))
	hd.Set("Cache-Control", "max-age=31536000")
	rw := &rangeErrorWriter{ResponseWriter: w, r: r}
	if rng, ok := dropEmptySuffixRanges(r.Header.Get("Range")); ok {
		if rng == "" {
			// Only zero-length suffixes ("bytes=-0"): unsatisfiable (RFC 9110 §14.1.3), where
			// http.ServeContent would answer an empty 206 "bytes 228-227/228".
			hd.Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			rw.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		r2 := r.Clone(r.Context())
		r2.Header.Set("Range", rng)
		r = r2
	}
	http.ServeContent(rw, r, "", time.Time{}, bytes.NewReader(data))
}

// dropEmptySuffixRanges removes zero-length suffix ranges ("-0") from a "bytes=" Range header;
// ok reports whether there were any, and rng is what is left ("" when nothing).
func dropEmptySuffixRanges(header string) (rng string, ok bool) {
	specs, found := strings.CutPrefix(strings.TrimSpace(header), "bytes=")
	if !found {
		return "", false
	}
	var keep []string
	for _, sp := range strings.Split(specs, ",") {
		sp = strings.TrimSpace(sp)
		if n, isSuffix := strings.CutPrefix(sp, "-"); isSuffix && n != "" && strings.Trim(n, "0") == "" {
			ok = true
			continue
		}
		keep = append(keep, sp)
	}
	if !ok || len(keep) == 0 {
		return "", ok
	}
	return "bytes=" + strings.Join(keep, ","), true
}

// rangeErrorWriter turns http.ServeContent's plain-text 416 into a distribution JSON error that
// names the Range asked for (Content-Range "bytes */size" stays).
type rangeErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (w *rangeErrorWriter) WriteHeader(code int) {
	if code != http.StatusRequestedRangeNotSatisfiable {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.swallow = true
	w.Header().Del("X-Content-Type-Options")
	errcode.Write(w.ResponseWriter, w.r, code, errcode.RangeInvalid,
		fmt.Sprintf("range %q not satisfiable for blob of %s bytes", w.r.Header.Get("Range"), strings.TrimPrefix(w.Header().Get("Content-Range"), "bytes */")), nil)
}

func (w *rangeErrorWriter) Write(p []byte) (int, error) {
	if w.swallow {
		return len(p), nil // ServeContent's text body; the JSON error is already written
	}
	return w.ResponseWriter.Write(p)
}

// ---- uploads ----

var contentRangeRe = regexp.MustCompile(`^(?:bytes[ =])?([0-9]+)-([0-9]+)$`)

func (h *handler) uploadLocation(w http.ResponseWriter, repo, id string, size int64) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
	hd.Set("Docker-Upload-UUID", id)
	end := size - 1
	if end < 0 {
		end = 0
	}
	hd.Set("Range", fmt.Sprintf("0-%d", end))
	hd.Set("Content-Length", "0")
}

func (h *handler) blobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo+"/blobs/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *handler) upload(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	if rt.Reference == "" {
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, r, "POST")
		}
		return h.startUpload(w, r, rt.Repo)
	}
	id := rt.Reference
	if strings.Contains(id, "/") {
		return newErr(http.StatusNotFound, errcode.BlobUploadUnknown, fmt.Sprintf("blob upload %q unknown", id))
	}
	switch r.Method {
	case http.MethodGet:
		size, err := h.st.UploadSize(rt.Repo, id)
		if err != nil {
			return fromStore(err)
		}
		h.uploadLocation(w, rt.Repo, id, size)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if _, err := h.st.UploadSize(rt.Repo, id); err != nil {
			return fromStore(err)
		}
		start, chunk, aerr := readChunk(r)
		if aerr != nil {
			return aerr
		}
		size, err := h.st.AppendUpload(rt.Repo, id, start, chunk)
		if err != nil {
			if errors.Is(err, store.ErrRangeInvalid) {
				h.uploadLocation(w, rt.Repo, id, size)
			}
			return fromStore(err)
		}
		h.uploadLocation(w, rt.Repo, id, size)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case http.MethodPut:
		if _, err := h.st.UploadSize(rt.Repo, id); err != nil {
			return fromStore(err)
		}
		q := r.URL.Query().Get("digest")
		if q == "" {
			return newErr(http.StatusBadRequest, errcode.DigestInvalid, "upload completion needs a digest query parameter")
		}
		d, aerr := parseDigest(q, "upload")
		if aerr != nil {
			return aerr
		}
		start, chunk, aerr := readChunk(r)
		if aerr != nil {
			return aerr
		}
		if err := h.st.FinishUpload(rt.Repo, id, start, d, chunk); err != nil {
			return fromStore(err)
		}
		h.blobCreated(w, rt.Repo, d)
		return nil
	case http.MethodDelete:
		if err := h.st.CancelUpload(rt.Repo, id); err != nil {
			return fromStore(err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed(w, r, "GET", "PATCH", "PUT", "DELETE")
}

// readChunk reads an upload chunk (PATCH, or the final PUT): its Content-Range start (-1 when
// absent) and its body, checked against Content-Length and Content-Range.
func readChunk(r *http.Request) (int64, []byte, *apiError) {
	start, aerr := chunkStart(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	chunk, aerr := readBody(r, MaxUploadSize, "blob chunk")
	if aerr != nil {
		return 0, nil, aerr
	}
	if aerr := checkChunkLen(r, chunk); aerr != nil {
		return 0, nil, aerr
	}
	return start, chunk, nil
}

// chunkStart parses Content-Range ("a-b"); -1 when absent.
func chunkStart(r *http.Request) (int64, *apiError) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	m := contentRangeRe.FindStringSubmatch(cr)
	if m == nil {
		return 0, newErr(http.StatusRequestedRangeNotSatisfiable, errcode.RangeInvalid, fmt.Sprintf("invalid Content-Range %q (want start-end)", cr))
	}
	a, err1 := strconv.ParseInt(m[1], 10, 64)
	b, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil || b < a {
		return 0, newErr(http.StatusRequestedRangeNotSatisfiable, errcode.RangeInvalid, fmt.Sprintf("invalid Content-Range %q", cr))
	}
	return a, nil
}

// checkChunkLen checks the body length against Content-Range when both are present.
func checkChunkLen(r *http.Request, chunk []byte) *apiError {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return nil
	}
	m := contentRangeRe.FindStringSubmatch(cr)
	a, _ := strconv.ParseInt(m[1], 10, 64)
	b, _ := strconv.ParseInt(m[2], 10, 64)
	if int64(len(chunk)) != b-a+1 {
		return newErr(http.StatusRequestedRangeNotSatisfiable, errcode.RangeInvalid, fmt.Sprintf("Content-Range %q announces %d bytes, body has %d", cr, b-a+1, len(chunk)))
	}
	return nil
}

func (h *handler) startUpload(w http.ResponseWriter, r *http.Request, repo string) *apiError {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, aerr := parseDigest(mount, "mount")
		if aerr != nil {
			return aerr
		}
		if from := q.Get("from"); from != "" {
			if !route.ValidRepo(from) {
				return newErr(http.StatusBadRequest, errcode.NameInvalid, fmt.Sprintf("invalid mount source repository %q", from))
			}
			ok, err := h.st.Mount(from, repo, d)
			if err != nil {
				return fromStore(err)
			}
			if ok {
				h.blobCreated(w, repo, d)
				return nil
			}
		}
		// Not mountable (or no "from": automatic content discovery is not offered): the spec
		// says to fall back to a new upload session.
	}
	if qd := q.Get("digest"); qd != "" {
		d, aerr := parseDigest(qd, "upload")
		if aerr != nil {
			return aerr
		}
		data, aerr := readBody(r, MaxUploadSize, "blob")
		if aerr != nil {
			return aerr
		}
		if err := h.st.PutBlobVerified(repo, d, data); err != nil {
			return fromStore(err)
		}
		h.blobCreated(w, repo, d)
		return nil
	}
	u, err := h.st.StartUpload(repo)
	if err != nil {
		return fromStore(err)
	}
	h.uploadLocation(w, repo, u.ID, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ---- tags, catalog, referrers ----

// paginate applies n/last to a sorted list and sets the Link header when more remain.
func paginate(w http.ResponseWriter, r *http.Request, all []string) ([]string, *apiError) {
	q := r.URL.Query()
	last := q.Get("last")
	out := all
	if last != "" {
		i := 0
		for i < len(out) && out[i] <= last {
			i++
		}
		out = out[i:]
	}
	if ns, ok := q["n"]; ok {
		n, err := strconv.Atoi(ns[0])
		if err != nil || n < 0 {
			return nil, newErr(http.StatusBadRequest, errcode.PaginationInvalid, fmt.Sprintf("invalid page size n=%q", ns[0]))
		}
		if n < len(out) {
			out = out[:n]
			if n > 0 {
				next := url.Values{"n": {strconv.Itoa(n)}, "last": {out[n-1]}}
				w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
			}
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func (h *handler) tags(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	all, ok := h.st.Tags(rt.Repo)
	if !ok {
		return newErr(http.StatusNotFound, errcode.NameUnknown, fmt.Sprintf("repository %q not known to registry", rt.Repo))
	}
	page, aerr := paginate(w, r, all)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, r, http.StatusOK, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.Repo, page})
	return nil
}

func (h *handler) catalog(w http.ResponseWriter, r *http.Request) *apiError {
	page, aerr := paginate(w, r, h.st.Repositories())
	if aerr != nil {
		return aerr
	}
	writeJSON(w, r, http.StatusOK, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{page})
	return nil
}

func (h *handler) referrers(w http.ResponseWriter, r *http.Request, rt route.Route) *apiError {
	subject, aerr := parseDigest(rt.Reference, "subject")
	if aerr != nil {
		return aerr
	}
	filter := r.URL.Query().Get("artifactType")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, m := range h.st.Manifests(rt.Repo) {
		if store.IsSchema1(m.MediaType) {
			continue
		}
		refs, err := store.ParseReferences(m.MediaType, m.Raw)
		if err != nil || refs.Subject == nil || refs.Subject.Digest != subject {
			continue
		}
		if filter != "" && refs.ArtifactType != filter {
			continue
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Raw)),
			ArtifactType: refs.ArtifactType, Annotations: refs.Annotations,
		})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, idx)
	return nil
}

// ---- foreign host ----

// Foreign returns the foreign host's handler: GET/HEAD /blobs/<digest> from any repository of
// st (a CDN or blob store outside the registry).
func Foreign(st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route.Parse(r.URL.Path)
		if rt.Kind != route.KindForeign {
			errcode.Write(w, r, http.StatusNotFound, errcode.Unsupported, fmt.Sprintf("the foreign host serves only /blobs/<digest>, not %s", r.URL.Path), nil)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			errcode.Write(w, r, http.StatusMethodNotAllowed, errcode.Unsupported, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path), nil)
			return
		}
		d, aerr := parseDigest(rt.Reference, "blob")
		if aerr != nil {
			writeAPIError(w, r, aerr)
			return
		}
		data, ok := st.AnyBlob(d)
		if !ok {
			errcode.Write(w, r, http.StatusNotFound, errcode.BlobUnknown, fmt.Sprintf("blob %s unknown to the foreign host", d), nil)
			return
		}
		ServeBlob(w, r, d, data)
	})
}
