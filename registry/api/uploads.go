package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
)

// Uploads: POST (monolithic, chunked or cross-repository mount), PATCH, PUT, GET and DELETE of
// /v2/<name>/blobs/uploads/[<session>].

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
