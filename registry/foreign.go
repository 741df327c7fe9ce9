package registry

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/criimage/criimage/registry/api"
	"github.com/criimage/criimage/registry/errcode"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/store"
)

// newForeignHandler serves the foreign host: /blobs/<digest> from the store (any repository), and
// under faults.ChallengePath a server that answers every request with a 401 Bearer challenge whose
// realm is on the foreign host itself, so the journal can show which credentials a client hands to
// a host it was redirected to.
func newForeignHandler(st *store.Store) http.Handler {
	blobs := api.Foreign(st)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, faults.ChallengePath) {
			blobs.ServeHTTP(w, r)
			return
		}
		realm := "http://" + r.Host + faults.ChallengePath + "token"
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q,service=%q", realm, "foreign.criimage.test"))
		errcode.Write(w, r, http.StatusUnauthorized, errcode.Unauthorized, "authentication required by the foreign host", nil)
	})
}
