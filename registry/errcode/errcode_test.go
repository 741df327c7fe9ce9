package errcode

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/criimage/criimage/registry/route"
)

func TestWrite(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Docker-Content-Digest", "sha256:x")
		Write(rec, httptest.NewRequest(method, "/v2/a/blobs/x", nil), http.StatusNotFound, BlobUnknown, "blob x unknown", map[string]string{"digest": "x"})
		want := `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob x unknown","detail":{"digest":"x"}}]}`
		h := rec.Header()
		if rec.Code != 404 || h.Get("Content-Type") != "application/json" || h.Get("Docker-Distribution-Api-Version") != "registry/2.0" ||
			h.Get("Docker-Content-Digest") != "" || h.Get("Content-Length") != "87" {
			t.Errorf("%s: %d %v", method, rec.Code, h)
		}
		if body := rec.Body.String(); (method == http.MethodGet && body != want) || (method == http.MethodHead && body != "") {
			t.Errorf("%s body %q", method, body)
		}
	}
	if got := string(Body(Denied, "no", func() {})); got != `{"errors":[{"code":"DENIED","message":"no"}]}` {
		t.Errorf("unmarshalable detail: %s", got)
	}
}

func TestForStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		kind   route.Kind
		want   string
	}{
		{404, route.KindBlob, BlobUnknown}, {404, route.KindManifest, ManifestUnknown}, {404, route.KindTags, NameUnknown},
		{401, route.KindBlob, Unauthorized}, {403, "", Denied}, {429, "", TooManyRequests}, {503, "", Unavailable}, {500, "", Unknown},
	} {
		if got := ForStatus(tc.status, tc.kind); got != tc.want {
			t.Errorf("ForStatus(%d, %s) = %s, want %s", tc.status, tc.kind, got, tc.want)
		}
	}
}
