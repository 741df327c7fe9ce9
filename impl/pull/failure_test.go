package pull

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/registry/faults"
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
		Match:  faults.Match{Method: "GET", Repo: "anon/corrupt", Digest: corrupt.layers[0]},
		Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 20},
	})

	for _, tc := range []struct{ ref, want string }{
		{host + "/anon/diffid:v1", "wrong diff id"},
		{host + "/anon/notgzip:v1", "failed to extract layer"},
		{host + "/anon/corrupt:v1", "digest"},
	} {
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(tc.ref)})
		if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), tc.ref) || !strings.Contains(err.Error(), tc.want) {
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
