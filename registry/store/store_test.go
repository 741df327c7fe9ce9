package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/store"
)

func TestBlobsAreLinkedPerRepository(t *testing.T) {
	s := store.New()
	d, err := s.PutBlob("anon/a", []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Blob("anon/b", d); ok {
		t.Fatal("blob readable from a repository it was never linked to")
	}
	if ok, err := s.Mount("anon/a", "anon/b", d); !ok || err != nil {
		t.Fatalf("mount: %v %v", ok, err)
	}
	if b, ok := s.Blob("anon/b", d); !ok || string(b) != "data" {
		t.Fatal("mounted blob missing")
	}
	if ok, _ := s.Mount("anon/nothing", "anon/c", d); ok {
		t.Fatal("mounted from a repository without the blob")
	}
	if !s.DeleteBlob("anon/a", d) || s.DeleteBlob("anon/a", d) {
		t.Fatal("delete blob")
	}
	if _, ok := s.Blob("anon/b", d); !ok {
		t.Fatal("deleting the link in anon/a removed it from anon/b")
	}
}

func TestUncheckedBlobs(t *testing.T) {
	s := store.New()
	claimed := digest.FromString("what the manifest says")
	if err := s.PutBlobUnchecked("anon/broken", claimed, []byte("other bytes")); err != nil {
		t.Fatal(err)
	}
	if b, ok := s.Blob("anon/broken", claimed); !ok || string(b) != "other bytes" {
		t.Fatalf("unchecked blob: %q %v", b, ok)
	}
	// The foreign host prefers bytes that match.
	good := []byte("what the manifest says")
	if _, err := s.PutBlob("anon/good", good); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.AnyBlob(claimed); !bytes.Equal(b, good) {
		t.Fatalf("AnyBlob = %q, want the verified bytes", b)
	}
	if err := s.PutBlobUnchecked("anon/broken", "sha256:nothex", nil); !errors.Is(err, store.ErrDigestInvalid) {
		t.Fatalf("malformed digest: %v", err)
	}
	if err := s.PutBlobUnchecked("Anon", claimed, nil); !errors.Is(err, store.ErrNameInvalid) {
		t.Fatalf("bad repo: %v", err)
	}
	// The seeding API copies: later changes to the caller's slice do not leak in.
	buf := []byte("mutable")
	d, _ := s.PutBlob("anon/copy", buf)
	buf[0] = 'X'
	if b, _ := s.Blob("anon/copy", d); string(b) != "mutable" {
		t.Fatalf("store aliases the caller's slice: %q", b)
	}
}

func TestManifestsAndTags(t *testing.T) {
	s := store.New()
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	d, err := s.PutManifest("anon/m", "", "", raw)
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromBytes(raw) {
		t.Fatalf("digest %s", d)
	}
	if m, err := s.Manifest("anon/m", d.String()); err != nil || m.MediaType != store.MediaTypeOCIManifest {
		t.Fatalf("by digest: %+v %v (media type detected from content)", m, err)
	}
	if _, err := s.Manifest("anon/m", "latest"); !errors.Is(err, store.ErrManifestUnknown) {
		t.Fatalf("untagged: %v", err)
	}
	if err := s.Tag("anon/m", "latest", d); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("anon/m", "other", digest.FromString("x")); !errors.Is(err, store.ErrManifestUnknown) {
		t.Fatalf("tag to unknown manifest: %v", err)
	}
	if err := s.Tag("anon/m", "-bad", d); !errors.Is(err, store.ErrTagInvalid) {
		t.Fatalf("bad tag: %v", err)
	}
	if err := s.Tag("anon/m", "v2", d); err != nil {
		t.Fatal(err)
	}
	if tags, _ := s.Tags("anon/m"); len(tags) != 2 || tags[0] != "latest" {
		t.Fatalf("tags %v", tags)
	}
	if err := s.DeleteTag("anon/m", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTag("anon/m", "v2"); !errors.Is(err, store.ErrManifestUnknown) {
		t.Fatalf("double delete: %v", err)
	}
	if err := s.DeleteManifest("anon/m", d); err != nil {
		t.Fatal(err)
	}
	if tags, _ := s.Tags("anon/m"); len(tags) != 0 {
		t.Fatalf("tags survive their manifest: %v", tags)
	}
	if _, err := s.PutManifestAs("anon/m", "", store.MediaTypeOCIManifest, raw, digest.SHA512.FromBytes(raw)); err != nil {
		t.Fatalf("sha512 reference: %v", err)
	}
	if _, err := s.PutManifestAs("anon/m", "", store.MediaTypeOCIManifest, raw, digest.FromString("x")); !errors.Is(err, store.ErrDigestInvalid) {
		t.Fatalf("mismatching reference: %v", err)
	}
	if _, err := s.PutManifest("anon/m", "", "", []byte("not json")); !errors.Is(err, store.ErrManifestInvalid) {
		t.Fatalf("not JSON: %v", err)
	}
}

func TestUploads(t *testing.T) {
	s := store.New()
	u, err := s.StartUpload("anon/u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("anon/u", u.ID, 0, []byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AppendUpload("anon/u", u.ID, 3, []byte("x")); !errors.Is(err, store.ErrRangeInvalid) || n != 6 {
		t.Fatalf("out of order: %d %v", n, err)
	}
	if _, err := s.UploadSize("anon/other", u.ID); !errors.Is(err, store.ErrUploadUnknown) {
		t.Fatalf("session from another repo: %v", err)
	}
	want := digest.FromString("hello world")
	if err := s.FinishUpload("anon/u", u.ID, 6, digest.FromString("nope"), []byte("world")); !errors.Is(err, store.ErrDigestInvalid) {
		t.Fatalf("wrong digest: %v", err)
	}
	if n, _ := s.UploadSize("anon/u", u.ID); n != 6 {
		t.Fatalf("failed finish changed the session: %d bytes", n)
	}
	if err := s.FinishUpload("anon/u", u.ID, 7, want, []byte("world")); !errors.Is(err, store.ErrRangeInvalid) {
		t.Fatalf("finish at the wrong offset: %v", err)
	}
	if err := s.FinishUpload("anon/u", u.ID, -1, want, []byte("world")); err != nil {
		t.Fatal(err)
	}
	if b, ok := s.Blob("anon/u", want); !ok || string(b) != "hello world" {
		t.Fatal("finished blob missing")
	}
	if _, err := s.UploadSize("anon/u", u.ID); !errors.Is(err, store.ErrUploadUnknown) {
		t.Fatal("session survives its finish")
	}
	u2, _ := s.StartUpload("anon/u")
	if err := s.CancelUpload("anon/u", u2.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelUpload("anon/u", u2.ID); !errors.Is(err, store.ErrUploadUnknown) {
		t.Fatalf("double cancel: %v", err)
	}
}

func TestSchema1Payload(t *testing.T) {
	// Two signatures over different payloads are refused.
	a := `{"formatLength":10,"formatTail":"Cn0"}`
	b := `{"formatLength":11,"formatTail":"Cn0"}`
	raw := []byte(`{"schemaVersion":1,"signatures":[{"protected":"` + b64(a) + `"},{"protected":"` + b64(b) + `"}]}`)
	if _, err := store.Schema1Payload(raw); !errors.Is(err, store.ErrManifestInvalid) {
		t.Fatalf("disagreeing signatures: %v", err)
	}
}

func TestUploadLimits(t *testing.T) {
	s := store.NewWithLimits(store.Limits{MaxUploadBytes: 10, MaxUploads: 2, MaxPendingBytes: 15})
	a, err := s.StartUpload("anon/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.StartUpload("anon/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartUpload("anon/a"); !errors.Is(err, store.ErrTooManyUploads) {
		t.Errorf("third session: %v", err)
	}
	if _, err := s.AppendUpload("anon/a", a.ID, -1, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("anon/a", a.ID, -1, make([]byte, 3)); !errors.Is(err, store.ErrUploadTooLarge) {
		t.Errorf("11 bytes in a 10-byte session: %v", err)
	}
	if _, err := s.UploadSize("anon/a", a.ID); !errors.Is(err, store.ErrUploadUnknown) {
		t.Errorf("the oversized session was kept: %v", err)
	}
	// a is gone: its 8 bytes no longer count, and a new session fits.
	c, err := s.StartUpload("anon/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("anon/a", b.ID, -1, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("anon/a", c.ID, -1, make([]byte, 7)); !errors.Is(err, store.ErrUploadTooLarge) {
		t.Errorf("16 pending bytes over a limit of 15: %v", err)
	}
	data := make([]byte, 9)
	if err := s.FinishUpload("anon/a", b.ID, -1, digest.FromBytes(data), nil); err != nil {
		t.Fatalf("finishing within the limits: %v", err)
	}
}
