package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
)

// blob serves GET, HEAD and DELETE of /v2/<name>/blobs/<digest> (a cdn/ repository redirects
// GETs to the foreign host).
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
