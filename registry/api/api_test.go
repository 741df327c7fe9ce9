package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/criimage/criimage/registry/api"
	"github.com/criimage/criimage/registry/store"
)

// FuzzNoServerErrors: whatever the method, path, headers and body, the API answers below 500, and
// every error is a distribution JSON error.
func FuzzNoServerErrors(f *testing.F) {
	for _, seed := range []struct{ method, path, ctype, rng, body string }{
		{"GET", "/v2/anon/a/manifests/v1", "", "", ""},
		{"PUT", "/v2/anon/a/manifests/v1", "application/vnd.oci.image.manifest.v1+json", "", `{"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[{"digest":"x"}]}`},
		{"PUT", "/v2/anon/a/manifests/v1", "application/vnd.oci.image.index.v1+json", "", `{"manifests":[{"digest":"sha256:../../x"}],"subject":{"digest":"sha256:1"}}`},
		{"PUT", "/v2/anon/a/manifests/v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", "", `{"schemaVersion":1,"signatures":[{"protected":"eyJmb3JtYXRMZW5ndGgiOi0xfQ"}]}`},
		{"POST", "/v2/anon/a/blobs/uploads/?mount=sha256:0&from=b", "", "", ""},
		{"PATCH", "/v2/anon/a/blobs/uploads/x", "", "0-99999999999999999999", "abc"},
		{"PUT", "/v2/anon/a/blobs/uploads/x?digest=sha256:", "", "5-1", ""},
		{"GET", "/v2/anon/a/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "", "bytes=-0", ""},
		{"GET", "/v2/anon/a/tags/list?n=99999999999999999999&last=%ff", "", "", ""},
		{"GET", "/v2/anon/a/referrers/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?artifactType=x", "", "", ""},
		{"DELETE", "/v2//manifests/", "", "", ""},
		{"GET", "/v2/_catalog?n=-5", "", "", ""},
	} {
		f.Add(seed.method, seed.path, seed.ctype, seed.rng, []byte(seed.body))
	}
	st := store.New()
	if _, err := st.PutBlob("anon/a", nil); err != nil {
		f.Fatal(err)
	}
	h := api.New(api.Options{Store: st, ForeignURL: func() string { return "http://127.0.0.2:1" }})
	f.Fuzz(func(t *testing.T, method, path, ctype, rng string, body []byte) {
		req, err := http.NewRequest(method, "http://registry.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not an HTTP request a server could receive
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
			req.Header.Set("Content-Range", rng)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s → %d %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != "HEAD" {
			var e struct{ Errors []struct{ Code string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code == "" {
				t.Fatalf("%s %s → %d with a non-distribution body %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}
