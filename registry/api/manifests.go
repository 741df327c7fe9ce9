package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
)

// Manifests: GET, HEAD, PUT and DELETE of /v2/<name>/manifests/<reference>, with Accept
// negotiation and schema 1 canonical digests.

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
