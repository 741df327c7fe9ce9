package api

import (
	"fmt"
	"net/http"

	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
)

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
