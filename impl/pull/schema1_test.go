package pull

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"

	"github.com/criimage/criimage/fixtures/schema1"
	"github.com/criimage/criimage/impl/grpcerr"
)

// schema1Image returns a schema 1 manifest over two layers and one throwaway entry in between,
// with the layers' blobs and diff IDs (bottom first).
func schema1Image(t *testing.T) (schema1.Manifest, map[digest.Digest][]byte, []digest.Digest) {
	t.Helper()
	bottom, bottomDiff := tgz(t, map[string]string{"bin/sh": "bottom"})
	top, topDiff := tgz(t, map[string]string{"etc/motd": "top"})
	ids := []string{strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)}
	compat := func(id, parent, cmd string, throwaway bool, extra string) string {
		s := fmt.Sprintf(`{"id":%q,"created":"2015-04-08T18:52:59Z","container_config":{"Cmd":["/bin/sh","-c",%q]}`, id, cmd)
		if parent != "" {
			s += fmt.Sprintf(`,"parent":%q`, parent)
		}
		if throwaway {
			s += `,"throwaway":true`
		}
		return s + extra + "}"
	}
	empty := digest.Digest("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4")
	m := schema1.Manifest{
		SchemaVersion: 1, Name: "anon/s1", Tag: "v1", Architecture: "amd64",
		FSLayers: []schema1.FSLayer{{BlobSum: digest.FromBytes(top)}, {BlobSum: empty}, {BlobSum: digest.FromBytes(bottom)}},
		History: []schema1.History{
			{V1Compatibility: compat(ids[2], ids[1], "echo top > /etc/motd", false, `,"architecture":"amd64","os":"linux","config":{"User":"1000","Cmd":["/bin/true"]}`)},
			{V1Compatibility: compat(ids[1], ids[0], "#(nop) ENV X=1", true, "")},
			{V1Compatibility: compat(ids[0], "", "#(nop) ADD file", false, "")},
		},
	}
	blobs := map[digest.Digest][]byte{digest.FromBytes(bottom): bottom, digest.FromBytes(top): top}
	return m, blobs, []digest.Digest{bottomDiff, topDiff}
}

func TestPullSchema1(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	m, blobs, diffIDs := schema1Image(t)
	for d, b := range blobs {
		if _, err := e.reg.PutBlob("anon/s1", b); err != nil {
			t.Fatalf("PutBlob %s: %v", d, err)
		}
	}
	unsigned, err := schema1.Unsigned(m)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := schema1.Sign(m, schema1.FixtureKey(), time.Date(2015, 4, 8, 18, 52, 59, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := schema1.CanonicalDigest(signed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.PutManifest("anon/s1", "unsigned", schema1.MediaTypeManifest, unsigned); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.PutManifest("anon/s1", "signed", schema1.MediaTypeSignedManifest, signed); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tag  string
		want digest.Digest
	}{
		{"unsigned", digest.FromBytes(unsigned)},
		{"signed", canonical},
		{"@" + canonical.String(), canonical},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			ref := e.reg.PlainHost() + "/anon/s1:" + tc.tag
			if strings.HasPrefix(tc.tag, "@") {
				ref = e.reg.PlainHost() + "/anon/s1" + tc.tag
			}
			res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			defer res.Done(e.ctx)
			if res.Target.Digest != tc.want || res.Target.MediaType != schema1.MediaTypeManifest {
				t.Errorf("Target = %s %s, want %s (canonical) as %s", res.Target.MediaType, res.Target.Digest, tc.want, schema1.MediaTypeManifest)
			}
			ctx := e.b.Context(e.ctx)
			cb, err := content.ReadBlob(ctx, e.b.Content, res.Config)
			if err != nil {
				t.Fatal(err)
			}
			var cfg ocispec.Image
			if err := json.Unmarshal(cb, &cfg); err != nil {
				t.Fatal(err)
			}
			if got := cfg.RootFS.DiffIDs; len(got) != 2 || got[0] != diffIDs[0] || got[1] != diffIDs[1] {
				t.Errorf("diff IDs = %v, want %v (bottom first)", got, diffIDs)
			}
			if len(cfg.History) != 3 || !cfg.History[1].EmptyLayer || cfg.History[0].EmptyLayer || cfg.History[2].EmptyLayer ||
				cfg.History[2].CreatedBy != "/bin/sh -c echo top > /etc/motd" {
				t.Errorf("history = %+v, want 3 entries bottom first, the middle one empty", cfg.History)
			}
			if cfg.Config.User != "1000" || cfg.OS != "linux" || cfg.Architecture != "amd64" {
				t.Errorf("config = %+v, want User 1000, linux/amd64", cfg)
			}
			if identity.ChainID(cfg.RootFS.DiffIDs) == "" {
				t.Fatal("no chain ID")
			}
			e.assertUnpacked(res, "native")
			want := res.Target.Size + res.Manifest.Size + res.Config.Size + int64(len(blobs[m.FSLayers[0].BlobSum])+len(blobs[m.FSLayers[2].BlobSum]))
			if got := e.reportedSize(res); got != want {
				t.Errorf("reported size = %d, want %d", got, want)
			}
		})
	}
	// The empty-layer blob is never fetched (it is not even in the registry).
	for _, en := range e.reg.Journal().Entries() {
		if strings.Contains(en.Path, "a3ed95ca") && en.Method == "GET" {
			t.Errorf("fetched the throwaway layer: %s %s", en.Method, en.Path)
		}
	}
	e.assertClean()
}

func TestPullSchema1Invalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	m, blobs, _ := schema1Image(t)
	for _, b := range blobs {
		if _, err := e.reg.PutBlob("anon/s1bad", b); err != nil {
			t.Fatal(err)
		}
	}
	m.History = m.History[:2] // fsLayers and history disagree
	raw, _ := json.MarshalIndent(m, "", "   ")
	if _, err := e.reg.PutManifest("anon/s1bad", "v1", schema1.MediaTypeManifest, raw); err != nil {
		t.Fatal(err)
	}
	ref := e.reg.PlainHost() + "/anon/s1bad:v1"
	_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
	if grpcerr.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "schema 1") || !strings.Contains(err.Error(), ref) {
		t.Fatalf("Pull = %v, want InvalidArgument about the schema 1 manifest", err)
	}
	e.assertClean()
}
