package registry_test

import (
	"net/url"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/criimage/criimage/registry"
)

// ggcr pushes (POST, streamed PATCH, PUT; manifest PUT), mounts across repositories and pulls back.
func TestPushMountPullWithGGCR(t *testing.T) {
	reg := start(t, registry.Options{})
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := name.ParseReference(reg.PlainHost()+"/anon/push/src:v1", name.Insecure)
	if err := remote.Write(src, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if m, err := reg.Store().Manifest("anon/push/src", "v1"); err != nil || m.Digest.String() != want.String() {
		t.Fatalf("pushed manifest: %v %v", m.Digest, err)
	}

	// Copy to another repository: ggcr mounts the layers from src.
	pulled, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := name.ParseReference(reg.PlainHost()+"/anon/push/dst:v1", name.Insecure)
	since := reg.Journal().Last()
	if err := remote.Write(dst, pulled); err != nil {
		t.Fatal(err)
	}
	mounts := 0
	for _, e := range reg.Journal().Since(since) {
		q, _ := url.ParseQuery(e.RawQuery)
		if e.Method == "POST" && q.Get("mount") != "" && q.Get("from") == "anon/push/src" && e.Status == 201 {
			mounts++
		}
	}
	if mounts == 0 {
		t.Errorf("no cross-repo mount answered 201:\n%s", reg.Journal().Transcript(reg.Journal().Since(since)))
	}
	got, err := remote.Image(dst)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := remote.List(dst.Context())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("tags of dst: %v %v", tags, err)
	}
}
