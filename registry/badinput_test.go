package registry_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry"
)

// Bad input gets a distribution error (JSON, the right status and code, a message naming the
// input) and changes nothing.
func TestBadInput(t *testing.T) {
	reg := start(t, registry.Options{})
	img, _ := random.Image(100, 1)
	md := seedImage(t, reg, "anon/bad", "v1", img)
	blob := []byte("0123456789")
	bd, _ := reg.PutBlob("anon/bad", blob)
	base := "http://" + reg.PlainHost()

	// One open upload session, for the session cases.
	resp, _ := do(t, "POST", base+"/v2/anon/bad/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("POST upload: %d %q", resp.StatusCode, loc)
	}

	unknown := digest.FromString("unknown")
	missingLayer := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[]}`, unknown)
	big := bytes.Repeat([]byte(" "), 4<<20+1)

	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               []byte
		status             int
		code, mention      string
	}{
		{"uppercase repo", "GET", "/v2/Anon/Bad/manifests/v1", nil, nil, 400, "NAME_INVALID", "Anon/Bad"},
		{"repo with ..", "GET", "/v2/anon/../x/blobs/" + bd.String(), nil, nil, 400, "NAME_INVALID", "anon/../x"},
		{"bad manifest digest", "GET", "/v2/anon/bad/manifests/sha256:zz", nil, nil, 400, "DIGEST_INVALID", "sha256:zz"},
		{"bad tag", "GET", "/v2/anon/bad/manifests/-v1", nil, nil, 400, "TAG_INVALID", "-v1"},
		{"traversal digest", "GET", "/v2/anon/bad/blobs/sha256:../../etc/passwd", nil, nil, 400, "DIGEST_INVALID", "sha256:../../etc/passwd"},
		{"uppercase hex digest", "GET", "/v2/anon/bad/blobs/sha256:" + strings.ToUpper(bd.Encoded()), nil, nil, 400, "DIGEST_INVALID", strings.ToUpper(bd.Encoded())},
		{"short digest", "HEAD", "/v2/anon/bad/blobs/sha256:abc", nil, nil, 400, "", ""},
		{"unknown algorithm", "GET", "/v2/anon/bad/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID", "md5:"},
		{"unknown blob", "GET", "/v2/anon/bad/blobs/" + unknown.String(), nil, nil, 404, "BLOB_UNKNOWN", unknown.String()},
		{"blob of other repo", "GET", "/v2/anon/other/blobs/" + bd.String(), nil, nil, 404, "BLOB_UNKNOWN", "anon/other"},
		{"unknown tag", "GET", "/v2/anon/bad/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN", "nope"},
		{"unknown repo tags", "GET", "/v2/anon/nothing/tags/list", nil, nil, 404, "NAME_UNKNOWN", "anon/nothing"},
		{"negative n", "GET", "/v2/anon/bad/tags/list?n=-1", nil, nil, 400, "PAGINATION_NUMBER_INVALID", "-1"},
		{"non-numeric n", "GET", "/v2/anon/bad/tags/list?n=ten", nil, nil, 400, "PAGINATION_NUMBER_INVALID", "ten"},
		{"unknown upload GET", "GET", "/v2/anon/bad/blobs/uploads/nosuch", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN", "nosuch"},
		{"unknown upload PATCH", "PATCH", "/v2/anon/bad/blobs/uploads/nosuch", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN", "nosuch"},
		{"upload of other repo", "GET", strings.Replace(loc, "anon/bad", "anon/other", 1), nil, nil, 404, "BLOB_UPLOAD_UNKNOWN", "anon/other"},
		{"upload PUT without digest", "PUT", loc, nil, nil, 400, "DIGEST_INVALID", "digest"},
		{"upload PUT bad digest", "PUT", loc + "?digest=sha256:xyz", nil, nil, 400, "DIGEST_INVALID", "sha256:xyz"},
		{"upload PUT wrong digest", "PUT", loc + "?digest=" + unknown.String(), nil, []byte("abc"), 400, "DIGEST_INVALID", unknown.String()},
		{"PATCH bad Content-Range", "PATCH", loc, map[string]string{"Content-Range": "x-y"}, []byte("abc"), 416, "RANGE_INVALID", "x-y"},
		{"PATCH out of order", "PATCH", loc, map[string]string{"Content-Range": "5-7"}, []byte("abc"), 416, "RANGE_INVALID", "5"},
		{"PATCH length mismatch", "PATCH", loc, map[string]string{"Content-Range": "0-9"}, []byte("abc"), 416, "RANGE_INVALID", "0-9"},
		{"monolithic wrong digest", "POST", "/v2/anon/bad/blobs/uploads/?digest=" + unknown.String(), nil, []byte("abc"), 400, "DIGEST_INVALID", unknown.String()},
		{"mount bad digest", "POST", "/v2/anon/bad2/blobs/uploads/?mount=sha256:1&from=anon/bad", nil, nil, 400, "DIGEST_INVALID", "sha256:1"},
		{"mount bad source", "POST", "/v2/anon/bad2/blobs/uploads/?mount=" + bd.String() + "&from=../x", nil, nil, 400, "NAME_INVALID", "../x"},
		{"manifest not JSON", "PUT", "/v2/anon/bad/manifests/v2", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte("{nope"), 400, "MANIFEST_INVALID", "JSON"},
		{"manifest missing blob", "PUT", "/v2/anon/bad/manifests/v2", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte(missingLayer), 400, "MANIFEST_BLOB_UNKNOWN", unknown.String()},
		{"manifest digest mismatch", "PUT", "/v2/anon/bad/manifests/" + unknown.String(), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte(`{"schemaVersion":2,"config":{},"layers":[]}`), 400, "", unknown.String()},
		{"manifest media type", "PUT", "/v2/anon/bad/manifests/v2", map[string]string{"Content-Type": "text/html"}, []byte(`{"schemaVersion":2}`), 400, "MANIFEST_INVALID", "text/html"},
		{"manifest type mismatch", "PUT", "/v2/anon/bad/manifests/v2", map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`), 400, "MANIFEST_INVALID", "does not match"},
		{"manifest too large", "PUT", "/v2/anon/bad/manifests/v2", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, big, 413, "SIZE_INVALID", "manifest"},
		{"manifest bad tag param", "PUT", "/v2/anon/bad/manifests/" + md.String() + "?tag=-x", map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}, nil, 400, "", ""},
		{"delete unknown manifest", "DELETE", "/v2/anon/bad/manifests/" + unknown.String(), nil, nil, 404, "MANIFEST_UNKNOWN", unknown.String()},
		{"delete unknown blob", "DELETE", "/v2/anon/bad/blobs/" + unknown.String(), nil, nil, 404, "BLOB_UNKNOWN", unknown.String()},
		{"method on catalog", "DELETE", "/v2/_catalog", nil, nil, 405, "UNSUPPORTED", "DELETE"},
		{"GET on upload start", "GET", "/v2/anon/bad/blobs/uploads/", nil, nil, 405, "UNSUPPORTED", "GET"},
		{"PUT on tags", "PUT", "/v2/anon/bad/tags/list", nil, nil, 405, "UNSUPPORTED", "PUT"},
		{"unknown path", "GET", "/v3/whatever", nil, nil, 404, "UNSUPPORTED", "/v3/whatever"},
		{"referrers bad digest", "GET", "/v2/anon/bad/referrers/latest", nil, nil, 400, "DIGEST_INVALID", "latest"},
		{"foreign bad digest", "GET", "FOREIGN/blobs/sha256:nope", nil, nil, 400, "DIGEST_INVALID", "sha256:nope"},
		{"foreign unknown blob", "GET", "FOREIGN/blobs/" + unknown.String(), nil, nil, 404, "BLOB_UNKNOWN", unknown.String()},
		{"foreign other path", "GET", "FOREIGN/v2/anon/bad/manifests/v1", nil, nil, 404, "UNSUPPORTED", "/v2/anon/bad/manifests/v1"},
		{"foreign POST", "POST", "FOREIGN/blobs/" + bd.String(), nil, nil, 405, "UNSUPPORTED", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := base + tc.path
			if rest, ok := strings.CutPrefix(tc.path, "FOREIGN"); ok {
				url = reg.ForeignURL() + rest
			}
			resp, body := do(t, tc.method, url, tc.hdr, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s = %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.status, body)
			}
			if tc.method == "HEAD" {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			code, msg := errCode(body)
			if code == "" {
				t.Fatalf("no distribution error body: %s", body)
			}
			if tc.code != "" && code != tc.code {
				t.Errorf("code %s, want %s (%s)", code, tc.code, msg)
			}
			if tc.mention != "" && !strings.Contains(msg, tc.mention) {
				t.Errorf("message %q does not name %q", msg, tc.mention)
			}
		})
	}

	// Nothing changed: the tag, the manifest, the blob and the upload session are as seeded.
	m, err := reg.Store().Manifest("anon/bad", "v1")
	if err != nil || m.Digest != md {
		t.Errorf("anon/bad:v1 = %v %v, want %s", m.Digest, err, md)
	}
	if tags, _ := reg.Store().Tags("anon/bad"); len(tags) != 1 {
		t.Errorf("tags of anon/bad: %v", tags)
	}
	if got := reg.Store().Repositories(); len(got) != 1 || got[0] != "anon/bad" {
		t.Errorf("repositories: %v", got)
	}
	if b, ok := reg.Store().Blob("anon/bad", bd); !ok || !bytes.Equal(b, blob) {
		t.Errorf("blob changed")
	}
	if n, err := reg.Store().UploadSize("anon/bad", strings.TrimPrefix(loc, "/v2/anon/bad/blobs/uploads/")); err != nil || n != 0 {
		t.Errorf("upload session: %d bytes, %v", n, err)
	}
	for _, e := range reg.Journal().Entries() {
		if e.Status >= 500 {
			t.Errorf("journal: %s %s answered %d", e.Method, e.Path, e.Status)
		}
	}
}
