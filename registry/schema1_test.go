package registry_test

import (
	"io"
	"math/rand"
	"net/http"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry"
)

// The signed schema 1 example of registry-wire.md §3.4: 1147 bytes served, canonical digest over
// the 504-byte signed payload.
const (
	schema1Canonical = "sha256:529b01ffc6d046226ccba3a9be0947982edee84d8c526c98ea30ac7e92955808"
	schema1RawSHA    = "sha256:bf499784cbdad1aaf1d22690b60da6457c6b2189fd6b8cab024ecaabce37474d"
)

func schema1Fixture(t *testing.T) []byte {
	raw, err := os.ReadFile("testdata/schema1-signed.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1147 || digest.FromBytes(raw).String() != schema1RawSHA {
		t.Fatalf("testdata/schema1-signed.json: %d bytes, %s: not the reference example", len(raw), digest.FromBytes(raw))
	}
	return raw
}

func TestSchema1SignedServedUnderCanonicalDigest(t *testing.T) {
	reg := start(t, registry.Options{})
	raw := schema1Fixture(t)
	layer, err := random.Layer(64, types.DockerLayer, random.WithSource(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := layer.Compressed()
	lb, _ := io.ReadAll(rc)
	ld, err := reg.PutBlob("anon/schema1", lb)
	if err != nil {
		t.Fatal(err)
	}
	if ld.String() != "sha256:f136c064452912bb66a2a611020b731fc44b139d0d70243460a8534a246ffdd3" {
		t.Fatalf("layer digest %s, not the blobSum of the example", ld)
	}
	d, err := reg.PutManifest("anon/schema1", "signed", string(types.DockerManifestSchema1Signed), raw)
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != schema1Canonical {
		t.Fatalf("PutManifest = %s, want canonical %s", d, schema1Canonical)
	}

	// Unsigned: the payload itself, digest of the raw bytes — the same digest.
	payload := append(append([]byte{}, raw[:502]...), "\n}"...)
	ud, err := reg.PutManifest("anon/schema1", "unsigned", string(types.DockerManifestSchema1), payload)
	if err != nil {
		t.Fatal(err)
	}
	if ud.String() != schema1Canonical {
		t.Fatalf("unsigned digest %s, want %s", ud, schema1Canonical)
	}
	// Re-seed the signed one: the unsigned put replaced the manifest stored under that digest.
	if _, err := reg.PutManifest("anon/schema1", "signed", string(types.DockerManifestSchema1Signed), raw); err != nil {
		t.Fatal(err)
	}

	base := "http://" + reg.PlainHost() + "/v2/anon/schema1/manifests/"
	for _, tc := range []struct {
		method, ref string
		wantType    string
		wantLen     int
	}{
		{"HEAD", "signed", string(types.DockerManifestSchema1Signed), 1147},
		{"GET", "signed", string(types.DockerManifestSchema1Signed), 1147},
		{"HEAD", schema1Canonical, string(types.DockerManifestSchema1Signed), 1147},
		{"GET", schema1Canonical, string(types.DockerManifestSchema1Signed), 1147},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.ref, nil)
		// No schema1 type in Accept: distribution serves schema 1 regardless.
		req.Header.Set("Accept", string(types.DockerManifestSchema2))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != schema1Canonical ||
			resp.Header.Get("Content-Type") != tc.wantType || resp.ContentLength != int64(tc.wantLen) {
			t.Errorf("%s %s: %d type=%q digest=%q len=%d", tc.method, tc.ref, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"), resp.ContentLength)
		}
		if tc.method == "GET" && digest.FromBytes(body).String() != schema1RawSHA {
			t.Errorf("GET %s: body is not the signed bytes", tc.ref)
		}
	}
	// The raw-bytes digest is not an address of the manifest.
	resp, err := http.Head(base + schema1RawSHA)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("HEAD by raw sha256: %d, want 404", resp.StatusCode)
	}

	// ggcr trusts Docker-Content-Digest for prettyjws and reads the layers from fsLayers.
	ref, _ := name.ParseReference(reg.PlainHost()+"/anon/schema1:signed", name.Insecure)
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != schema1Canonical {
		t.Errorf("ggcr descriptor digest %s", desc.Digest)
	}
	img, err := desc.Schema1()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("schema1 layers: %v %v", ls, err)
	}
	if got, _ := ls[0].Digest(); got.String() != ld.String() {
		t.Errorf("schema1 layer %s, want %s", got, ld)
	}
}

func TestSchema1Malformed(t *testing.T) {
	reg := start(t, registry.Options{})
	for name, raw := range map[string]string{
		"no signatures": `{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[],"history":[]}`,
		"bad protected": `{"schemaVersion":1,"signatures":[{"protected":"!!!"}]}`,
		"formatLength":  `{"schemaVersion":1,"signatures":[{"protected":"eyJmb3JtYXRMZW5ndGgiOjUwMDAsImZvcm1hdFRhaWwiOiJDbjAifQ"}]}`,
	} {
		if _, err := reg.PutManifest("anon/s1bad", "", string(types.DockerManifestSchema1Signed), []byte(raw)); err == nil {
			t.Errorf("%s: PutManifest accepted it", name)
		}
	}
}
