package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
)

// Listings: /v2/<name>/tags/list, /v2/_catalog and /v2/<name>/referrers/<digest>.

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
