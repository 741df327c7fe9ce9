package imagestore

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const (
	idA = "sha256:aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
	idB = "sha256:aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222aaaa2222"
	dgA = "sha256:e6693d5e5b3a2c4b3f4a9bbbf1d5e3c0c1b4c5d6e7f8091a2b3c4d5e6f708192"
)

func testStore() *Store {
	s := New()
	s.Put(Image{ID: idA, References: []string{
		"docker.io/library/busybox:latest", "docker.io/library/busybox@" + dgA, "quay.io/x/y:1", idA,
	}})
	s.Put(Image{ID: idB, References: []string{"127.0.0.1:5000/anon/b:v1", idB}})
	return s
}

// TestResolve covers the lookup rules shared by ImageStatus, RemoveImage and ListImages' filter,
// including the 13 forms of containerd's TestLocalResolve.
func TestResolve(t *testing.T) {
	s := testStore()
	for _, key := range []string{
		idA, strings.TrimPrefix(idA, "sha256:"), "aaaa1", "sha256:aaaa1", "aaaa1111aaaa",
		"busybox", "busybox:latest", "busybox@" + dgA,
		"library/busybox", "library/busybox:latest", "library/busybox@" + dgA,
		"docker.io/busybox", "docker.io/busybox:latest", "docker.io/busybox@" + dgA,
		"docker.io/library/busybox", "docker.io/library/busybox:latest", "docker.io/library/busybox@" + dgA,
		"index.docker.io/library/busybox", "busybox:whatever@" + dgA, "quay.io/x/y:1",
	} {
		img, err := s.Resolve(key)
		if err != nil || img.ID != idA {
			t.Errorf("Resolve(%q) = %q, %v; want %s", key, img.ID, err, idA)
		}
	}
	if img, err := s.Resolve("127.0.0.1:5000/anon/b:v1"); err != nil || img.ID != idB {
		t.Errorf("Resolve(b) = %q, %v", img.ID, err)
	}
	for _, key := range []string{
		"randomid", "BUSYBOX", "busybox:LATEST", "quay.io/x/y", "aaa", "sha256:aaa", "a",
		"sha256:aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1112",
		"AAAA1111", "busybox@sha256:abc", "bbbb",
	} {
		if img, err := s.Resolve(key); !errdefs.IsNotFound(err) {
			t.Errorf("Resolve(%q) = %q, %v; want NotFound", key, img.ID, err)
		}
	}
	for _, key := range []string{"", "aaaa", "sha256:aaaa", "sha256:"} {
		_, err := s.Resolve(key)
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("Resolve(%q) err = %v; want InvalidArgument", key, err)
		} else if key != "" && !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("Resolve(%q) err = %v; want it to name the input", key, err)
		}
	}
}

func TestPutMovesNamesAndDropsNamelessImages(t *testing.T) {
	s := testStore()
	// Tag b:v1 moves to image A; B keeps only its ID record, so it stays (the service decides
	// about dropping ID-only images); then B loses its ID too and is gone.
	changed := s.Put(Image{ID: idA, References: append(mustGet(t, s, idA).References, "127.0.0.1:5000/anon/b:v1")})
	if len(changed) != 1 || changed[0] != idB {
		t.Fatalf("changed = %v, want [%s]", changed, idB)
	}
	if id, _ := s.Owner("127.0.0.1:5000/anon/b:v1"); id != idA {
		t.Fatalf("owner of moved tag = %s", id)
	}
	if b := mustGet(t, s, idB); len(b.References) != 1 || b.References[0] != idB || len(b.RepoTags()) != 0 {
		t.Fatalf("B refs = %v, tags %v (the tags split at Put must follow the move)", b.References, b.RepoTags())
	}
	a := mustGet(t, s, idA)
	if got := strings.Join(a.RepoTags(), ","); got != "127.0.0.1:5000/anon/b:v1,docker.io/library/busybox:latest,quay.io/x/y:1" {
		t.Fatalf("RepoTags = %s", got)
	}
	if got := strings.Join(a.RepoDigests(), ","); got != "docker.io/library/busybox@"+dgA {
		t.Fatalf("RepoDigests = %s", got)
	}
	s.Delete(idB)
	if _, ok := s.Get(idB); ok {
		t.Fatal("B still there after Delete")
	}
	if _, err := s.Resolve("aaaa"); err != nil {
		t.Fatalf("prefix unambiguous after delete: %v", err)
	}
	// Put with fewer names drops the others from the name index.
	s.Put(Image{ID: idA, References: []string{idA}})
	if _, err := s.Resolve("busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("dropped name still resolves: %v", err)
	}
	if len(s.List()) != 1 {
		t.Fatalf("List = %v", s.List())
	}
	// The split is the caller's to keep: changing it changes nothing in the store.
	s.Put(Image{ID: idA, References: []string{idA, "docker.io/library/busybox:latest"}})
	a = mustGet(t, s, idA)
	a.RepoTags()[0] = "changed"
	if got := mustGet(t, s, idA).RepoTags(); len(got) != 1 || got[0] != "docker.io/library/busybox:latest" {
		t.Fatalf("RepoTags = %v", got)
	}
}

func mustGet(t *testing.T, s *Store, id string) Image {
	t.Helper()
	img, ok := s.Get(id)
	if !ok {
		t.Fatalf("no image %s", id)
	}
	return img
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                         "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox": "docker.io/library/busybox:latest",
		"busybox:1.36@" + dgA:             "docker.io/library/busybox@" + dgA,
		"busybox:LATEST":                  "docker.io/library/busybox:LATEST",
		"LOCALHOST:5000/foo":              "LOCALHOST:5000/foo:latest",
		"127.0.0.1:5000/anon/x":           "127.0.0.1:5000/anon/x:latest",
	} {
		n, err := Normalize(in)
		if err != nil || n.String() != want {
			t.Errorf("Normalize(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, in := range []string{"", "BusyBox", "quay.io/x/y:", "busybox@sha256:abc", strings.Repeat("a", 64), dgA} {
		_, err := Normalize(in)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `"`+in+`"`) && in != "" {
			t.Errorf("Normalize(%q) err = %v; want InvalidArgument naming it", in, err)
		}
	}
	rd, rt := RepoDigestAndTag(mustNormalize(t, "busybox"), dgA)
	if rd != "docker.io/library/busybox@"+dgA || rt != "docker.io/library/busybox:latest" {
		t.Errorf("RepoDigestAndTag = %s, %s", rd, rt)
	}
	rd, rt = RepoDigestAndTag(mustNormalize(t, "busybox:1@"+dgA), "sha256:ffff")
	if rd != "docker.io/library/busybox@"+dgA || rt != "" {
		t.Errorf("RepoDigestAndTag(tag@digest) = %s, %q", rd, rt)
	}
}

func mustNormalize(t *testing.T, s string) interface {
	Name() string
	String() string
} {
	n, err := Normalize(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
