package pull

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"

	"github.com/criimage/criimage/impl/grpcerr"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

// rebuild replaces the config of ti (after edit) and re-marshals the manifest.
func rebuild(t *testing.T, ti testImage, edit func(*ocispec.Image)) testImage {
	t.Helper()
	var cfg ocispec.Image
	if err := json.Unmarshal(ti.blobs[ti.config], &cfg); err != nil {
		t.Fatal(err)
	}
	edit(&cfg)
	cb, _ := json.Marshal(cfg)
	var m ocispec.Manifest
	if err := json.Unmarshal(ti.raw, &m); err != nil {
		t.Fatal(err)
	}
	blobs := map[digest.Digest][]byte{}
	for d, b := range ti.blobs {
		if d != ti.config {
			blobs[d] = b
		}
	}
	ti.blobs = blobs
	ti.config = digest.FromBytes(cb)
	ti.blobs[ti.config] = cb
	m.Config.Digest, m.Config.Size = ti.config, int64(len(cb))
	ti.raw, _ = json.Marshal(m)
	ti.digest = digest.FromBytes(ti.raw)
	return ti
}

func TestUnpackFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	host := e.reg.PlainHost()

	good := buildImage(t, true, linuxAMD64, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	wrongDiff := rebuild(t, good, func(c *ocispec.Image) { c.RootFS.DiffIDs[1] = digest.FromString("not it") })
	e.push("anon/diffid", "v1", wrongDiff)

	garbage := buildImage(t, true, linuxAMD64, map[string]string{"c": "3"})
	bad := []byte("this is not gzip at all, but its digest is right")
	var m ocispec.Manifest
	_ = json.Unmarshal(garbage.raw, &m)
	delete(garbage.blobs, garbage.layers[0])
	m.Layers[0].Digest, m.Layers[0].Size = digest.FromBytes(bad), int64(len(bad))
	garbage.blobs[m.Layers[0].Digest] = bad
	garbage.raw, _ = json.Marshal(m)
	garbage.digest = digest.FromBytes(garbage.raw)
	e.push("anon/notgzip", "v1", garbage)

	corrupt := buildImage(t, true, linuxAMD64, map[string]string{"d": "4"})
	e.push("anon/corrupt", "v1", corrupt)
	e.reg.Faults().Arm(faults.Rule{
		Match:  route.Match{Method: "GET", Repo: "anon/corrupt", Digest: corrupt.layers[0]},
		Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 20},
	})

	for _, tc := range []struct{ ref, want string }{
		{host + "/anon/diffid:v1", "wrong diff id"},
		{host + "/anon/notgzip:v1", "failed to extract layer"},
		{host + "/anon/corrupt:v1", "digest"},
	} {
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(tc.ref)})
		if grpcerr.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), tc.ref) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Pull(%s) = %v, want DataLoss naming the reference and %q", tc.ref, err, tc.want)
		}
		e.assertClean()
	}
	// The good image (sharing the first layer with the diff-ID one) still pulls afterwards.
	e.push("anon/good", "v1", good)
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(host + "/anon/good:v1")})
	if err != nil {
		t.Fatal(err)
	}
	e.assertUnpacked(res, "native")
	_ = res.Done(e.ctx)
	e.assertClean()
}

func TestRetryAfterCorruptionRefetches(t *testing.T) {
	t.Parallel()
	t.Run("with GC after failure", func(t *testing.T) { testRetryAfterCorruption(t, false) })
	// Without the collection, the aborted ingest is what keeps a retry from resuming bad bytes.
	t.Run("ingest aborted", func(t *testing.T) { testRetryAfterCorruption(t, true) })
}

func testRetryAfterCorruption(t *testing.T, noGC bool) {
	e := newEnv(t, Options{})
	e.p.hooks.noGC = noGC
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": strings.Repeat("corrupt me ", 500)})
	e.push("anon/retry", "v1", img)
	e.push("anon/other", "v1", img)
	e.reg.Faults().Arm(faults.Rule{
		Match:  route.Match{Method: "GET", Repo: "anon/retry", Digest: img.layers[0]},
		Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 64},
		Times:  1,
	})
	ref := e.ref(e.reg.PlainHost() + "/anon/retry:v1")
	if _, err := e.p.Pull(e.ctx, Request{Ref: ref}); grpcerr.Code(err) != codes.DataLoss {
		t.Fatalf("first pull = %v, want DataLoss", err)
	}
	// Nothing of the failed pull remains, not even a partial ingest, without an explicit GC.
	if left := e.leftovers(); len(left) > 0 && !noGC {
		t.Fatalf("after the failed pull: %v", left)
	}
	if sts, _ := e.b.Content.ListStatuses(e.b.Context(e.ctx)); len(sts) > 0 {
		t.Fatalf("ingests left after the failed pull: %v", sts)
	}
	for _, r := range []string{"/anon/other:v1", "/anon/retry:v1"} {
		res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + r)})
		if err != nil {
			t.Fatalf("pull %s after the corrupted one: %v", r, err)
		}
		e.assertUnpacked(res, "native")
		_ = res.Done(e.ctx)
	}
}

func TestMalformedDigestsAreRefusedBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for i, bad := range []string{
		"sha256:../../../../../token?scope=repository:x:pull",
		"sha256:" + strings.Repeat("Z", 64),
		"sha256:abc",
		"sha256:" + strings.Repeat("0", 64) + "/../../x",
	} {
		img := buildImage(t, true, linuxAMD64, map[string]string{"bad": bad})
		var m map[string]any
		mustJSON(t, img.raw, &m)
		if i%2 == 0 {
			m["layers"].([]any)[0].(map[string]any)["digest"] = bad
		} else {
			m["config"].(map[string]any)["digest"] = bad
		}
		img.raw = mustMarshal(t, m)
		repo := fmt.Sprintf("anon/bad%d", i)
		e.push(repo, "v1", img)
		before := e.reg.Journal().Last()
		ref := e.reg.PlainHost() + "/" + repo + ":v1"
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
		if grpcerr.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "invalid digest") || !strings.Contains(err.Error(), ref) {
			t.Errorf("Pull with digest %q = %v, want InvalidArgument", bad, err)
		}
		for _, en := range e.reg.Journal().Since(before) {
			if !strings.HasPrefix(en.Path, "/v2/"+repo+"/") {
				t.Errorf("digest %q led to a request outside the repository: %s %s", bad, en.Method, en.Path)
			}
		}
	}
	e.assertClean()
}
