package registry_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/route"
)

// Blob GETs in cdn/… redirect (307) to the foreign host, which serves them from the same store
// and records them under listener "foreign"; containerd follows the redirect.
func TestCDNRedirectToForeignHost(t *testing.T) {
	reg := start(t, registry.Options{})
	img, _ := random.Image(2000, 1)
	md := seedImage(t, reg, "cdn/app", "v1", img)

	ctx := t.Context()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))})
	name, desc, err := resolver.Resolve(ctx, reg.PlainHost()+"/cdn/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != md {
		t.Fatalf("resolved %s, want %s", desc.Digest, md)
	}
	f, err := resolver.Fetcher(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(fetchAll(t, ctx, f, desc), &m); err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0]
	fetchAll(t, ctx, f, layer)

	var redirect, foreign *int
	for i, e := range reg.Journal().Entries() {
		if e.Digest != layer.Digest || e.Method != "GET" {
			continue
		}
		switch e.Listener {
		case route.ListenerPlain:
			if e.Status == http.StatusTemporaryRedirect {
				redirect = &i
			}
		case route.ListenerForeign:
			if e.Status == 200 && e.Kind == route.KindForeign && e.BytesSent == layer.Size && !e.Aborted {
				foreign = &i
			}
		}
	}
	if redirect == nil || foreign == nil || *foreign < *redirect {
		t.Fatalf("want a 307 on plain then a 200 on foreign:\n%s", reg.Journal().Transcript(reg.Journal().Entries()))
	}
	if n := reg.Journal().BlobGets("", layer.Digest); n != 1 {
		t.Errorf("BlobGets(any) = %d, want 1 (the redirect is not a blob transfer)", n)
	}
	// HEAD is answered by the registry itself (pushers check existence with HEAD).
	resp, _ := do(t, "HEAD", "http://"+reg.PlainHost()+"/v2/cdn/app/blobs/"+layer.Digest.String(), nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("HEAD in cdn/: %d", resp.StatusCode)
	}
}

// The foreign host's challenge path answers 401 with a Bearer realm on the foreign host itself,
// and records what a client sends there.
func TestForeignChallengeRecordsCredentials(t *testing.T) {
	reg := start(t, registry.Options{})
	d := digest.FromString("x")
	resp, _ := do(t, "GET", reg.ForeignURL()+"/challenge/blobs/"+d.String(), map[string]string{"Authorization": "Bearer leaked-token"}, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("challenge path: %d", resp.StatusCode)
	}
	want := `Bearer realm="` + reg.ForeignURL() + `/challenge/token"`
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, want) {
		t.Errorf("WWW-Authenticate %q, want prefix %q", got, want)
	}
	if !reg.Journal().SawSecret(route.ListenerForeign, "leaked-token") {
		t.Error("foreign host did not record the bearer token")
	}
	if reg.Journal().SawSecret(route.ListenerPlain, "leaked-token") {
		t.Error("plain listener recorded a token it never saw")
	}
}
