package registry_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry"
)

// Wire details clients depend on, checked without the opt-in conformance binary.
func TestBlobRangeAndHeaders(t *testing.T) {
	reg := start(t, registry.Options{})
	data := []byte("0123456789abcdef")
	d, _ := reg.PutBlob("anon/r", data)
	u := "http://" + reg.PlainHost() + "/v2/anon/r/blobs/" + d.String()

	resp, body := do(t, "GET", u, map[string]string{"Range": "bytes=4-7"}, nil)
	if resp.StatusCode != 206 || string(body) != "4567" || resp.Header.Get("Content-Range") != "bytes 4-7/16" {
		t.Errorf("range: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, body = do(t, "GET", u, map[string]string{"Range": "bytes=100-200"}, nil)
	if code, msg := errCode(body); resp.StatusCode != 416 || code != "RANGE_INVALID" || !strings.Contains(msg, "bytes=100-200") ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Content-Range") != "bytes */16" {
		t.Errorf("unsatisfiable range: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = do(t, "HEAD", u, nil, nil)
	if resp.StatusCode != 200 || resp.ContentLength != 16 || len(body) != 0 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("HEAD: %d len=%d digest=%q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Docker-Content-Digest"))
	}

	// A broken fixture: bytes that do not match the digest are served under it as they are.
	claimed := digest.FromString("the real content")
	if err := reg.PutBlobUnchecked("anon/r", claimed, []byte("corrupted")); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, "GET", "http://"+reg.PlainHost()+"/v2/anon/r/blobs/"+claimed.String(), nil, nil)
	if resp.StatusCode != 200 || string(body) != "corrupted" || resp.Header.Get("Docker-Content-Digest") != claimed.String() {
		t.Errorf("unchecked blob: %d %q %q", resp.StatusCode, body, resp.Header.Get("Docker-Content-Digest"))
	}
}

func TestTagsPagination(t *testing.T) {
	reg := start(t, registry.Options{})
	d, err := reg.PutManifest("anon/tags", "a", "application/vnd.docker.distribution.manifest.v2+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"d", "b", "c"} {
		if err := reg.Tag("anon/tags", tag, d); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + reg.PlainHost() + "/v2/anon/tags/tags/list"
	for _, tc := range []struct{ query, body, link string }{
		{"", `{"name":"anon/tags","tags":["a","b","c","d"]}`, ""},
		{"?n=2", `{"name":"anon/tags","tags":["a","b"]}`, `</v2/anon/tags/tags/list?last=b&n=2>; rel="next"`},
		{"?n=2&last=b", `{"name":"anon/tags","tags":["c","d"]}`, ""},
		{"?last=d", `{"name":"anon/tags","tags":[]}`, ""},
		{"?n=0", `{"name":"anon/tags","tags":[]}`, ""},
	} {
		resp, body := do(t, "GET", base+tc.query, nil, nil)
		if resp.StatusCode != 200 || string(body) != tc.body || resp.Header.Get("Link") != tc.link {
			t.Errorf("tags%s: %d %s Link=%q; want %s Link=%q", tc.query, resp.StatusCode, body, resp.Header.Get("Link"), tc.body, tc.link)
		}
	}
	if err := reg.DeleteTag("anon/tags", "b"); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, "GET", base, nil, nil); !strings.Contains(string(body), `["a","c","d"]`) {
		t.Errorf("after DeleteTag: %s", body)
	}
}

func TestUploadSessionLifecycle(t *testing.T) {
	reg := start(t, registry.Options{})
	base := "http://" + reg.PlainHost()
	resp, _ := do(t, "POST", base+"/v2/anon/up/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-0" || resp.Header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "PATCH", base+loc, map[string]string{"Content-Range": "0-4", "Content-Type": "application/octet-stream"}, []byte("hello"))
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-4" {
		t.Fatalf("PATCH 1: %d Range=%q", resp.StatusCode, resp.Header.Get("Range"))
	}
	resp, _ = do(t, "GET", base+loc, nil, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-4" || resp.Header.Get("Location") != loc {
		t.Fatalf("status: %d Range=%q Location=%q", resp.StatusCode, resp.Header.Get("Range"), resp.Header.Get("Location"))
	}
	resp, _ = do(t, "PATCH", base+loc, map[string]string{"Content-Range": "5-10"}, []byte(" world"))
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-10" {
		t.Fatalf("PATCH 2: %d Range=%q", resp.StatusCode, resp.Header.Get("Range"))
	}
	want := digest.FromString("hello world!")
	resp, _ = do(t, "PUT", base+loc+"?digest="+want.String(), map[string]string{"Content-Range": "11-11"}, []byte("!"))
	if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != want.String() || resp.Header.Get("Location") != "/v2/anon/up/blobs/"+want.String() {
		t.Fatalf("PUT: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ = do(t, "GET", base+loc, nil, nil); resp.StatusCode != 404 {
		t.Errorf("finished session still answers: %d", resp.StatusCode)
	}
	if _, body := do(t, "GET", base+"/v2/anon/up/blobs/"+want.String(), nil, nil); string(body) != "hello world!" {
		t.Errorf("blob: %q", body)
	}

	resp, _ = do(t, "POST", base+"/v2/anon/up/blobs/uploads/", nil, nil)
	loc = resp.Header.Get("Location")
	if resp, _ = do(t, "DELETE", base+loc, nil, nil); resp.StatusCode != 204 {
		t.Errorf("DELETE upload: %d", resp.StatusCode)
	}
	if resp, _ = do(t, "PATCH", base+loc, nil, []byte("x")); resp.StatusCode != 404 {
		t.Errorf("cancelled session accepts data: %d", resp.StatusCode)
	}
}
