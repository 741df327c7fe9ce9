package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/internal/clienttest"
)

// seedImage pushes img's config, layers and manifest into repo through the Go API.
func seedImage(t *testing.T, reg *registry.Registry, repo, tag string, img v1.Image) digest.Digest {
	t.Helper()
	return clienttest.Seed(t, reg, repo, tag, img)
}

// seedIndex pushes every child of idx and then idx itself.
func seedIndex(t *testing.T, reg *registry.Registry, repo, tag string, idx v1.ImageIndex) digest.Digest {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Manifests {
		img, err := idx.Image(c.Digest)
		if err != nil {
			t.Fatal(err)
		}
		seedImage(t, reg, repo, "", img)
	}
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	d, err := reg.PutManifest(repo, tag, string(mt), raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type errBody struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, url string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func errCode(b []byte) (string, string) {
	var e errBody
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return "", ""
	}
	return e.Errors[0].Code, e.Errors[0].Message
}
