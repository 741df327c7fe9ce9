package registry_test

import (
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/criimage/criimage/registry"
)

func TestAcceptNegotiation(t *testing.T) {
	reg := start(t, registry.Options{})
	s2, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	s2d := seedImage(t, reg, "anon/accept", "schema2", s2)
	oci := mutate.ConfigMediaType(mutate.MediaType(s2, types.OCIManifestSchema1), types.OCIConfigJSON)
	ocid := seedImage(t, reg, "anon/accept", "oci", oci)
	arm, _ := random.Image(100, 1)
	list := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: s2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	listd := seedIndex(t, reg, "anon/accept", "list", list)
	ociIdx := mutate.IndexMediaType(list, types.OCIImageIndex)
	ociIdxd := seedIndex(t, reg, "anon/accept", "ociindex", ociIdx)

	const (
		s2t   = string(types.DockerManifestSchema2)
		listt = string(types.DockerManifestList)
		ocit  = string(types.OCIManifestSchema1)
		idxt  = string(types.OCIImageIndex)
	)
	base := "http://" + reg.PlainHost() + "/v2/anon/accept/manifests/"
	for _, tc := range []struct {
		name, ref, accept string
		status            int
		digest, ctype     string
		code              string
	}{
		{"schema2 without Accept", "schema2", "", 200, s2d.String(), s2t, ""},
		{"OCI with OCI Accept", "oci", ocit, 200, ocid.String(), ocit, ""},
		{"OCI with q value", "oci", s2t + ", " + ocit + ";q=0.5", 200, ocid.String(), ocit, ""},
		{"OCI without Accept", "oci", "", 404, "", "application/json", "MANIFEST_UNKNOWN"},
		{"OCI with schema2 Accept only", "oci", s2t, 404, "", "application/json", "MANIFEST_UNKNOWN"},
		{"OCI by digest with schema2 Accept only", ocid.String(), s2t, 404, "", "application/json", "MANIFEST_UNKNOWN"},
		{"OCI index without index Accept", "ociindex", ocit + "," + listt, 404, "", "application/json", "MANIFEST_UNKNOWN"},
		{"OCI index with Accept", "ociindex", idxt, 200, ociIdxd.String(), idxt, ""},
		{"list with list Accept", "list", listt, 200, listd.String(), listt, ""},
		{"list by tag, schema2 Accept only: amd64 child", "list", s2t, 200, s2d.String(), s2t, ""},
		{"list by digest, schema2 Accept only: the list", listd.String(), s2t, 200, listd.String(), listt, ""},
		{"list by tag without Accept", "list", "", 400, "", "application/json", "MANIFEST_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.accept != "" {
				hdr["Accept"] = tc.accept
			}
			resp, body := do(t, "GET", base+tc.ref, hdr, nil)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype ||
				resp.Header.Get("Docker-Content-Digest") != tc.digest {
				t.Fatalf("GET %s (Accept %q) = %d type=%q digest=%q; want %d %q %q", tc.ref, tc.accept, resp.StatusCode,
					resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"), tc.status, tc.ctype, tc.digest)
			}
			if code, _ := errCode(body); code != tc.code {
				t.Fatalf("error code %q, want %q (body %s)", code, tc.code, body)
			}
			// HEAD answers the same headers.
			hresp, hbody := do(t, "HEAD", base+tc.ref, hdr, nil)
			if hresp.StatusCode != tc.status || hresp.Header.Get("Docker-Content-Digest") != tc.digest || len(hbody) != 0 {
				t.Fatalf("HEAD %s = %d digest=%q body=%d bytes", tc.ref, hresp.StatusCode, hresp.Header.Get("Docker-Content-Digest"), len(hbody))
			}
		})
	}
	resp, _ := do(t, "GET", base+"schema2", map[string]string{"If-None-Match": `"` + s2d.String() + `"`}, nil)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
}
