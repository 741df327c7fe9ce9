package registry_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/criimage/criimage/registry"
)

func start(t *testing.T, opts registry.Options) *registry.Registry {
	t.Helper()
	reg, err := registry.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	return reg
}

// tlsTransport trusts only the registry's CA and dials the TLS listener under its host name.
func tlsTransport(t *testing.T, reg *registry.Registry) *http.Transport {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(reg.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: registry.DefaultTLSHostName}
	return tr
}

// nameTransport trusts only the registry's CA and resolves its TLS host name to the listener.
func nameTransport(t *testing.T, reg *registry.Registry) *http.Transport {
	tr := tlsTransport(t, reg)
	tr.TLSClientConfig.ServerName = ""
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != reg.TLSHost() {
			return nil, fmt.Errorf("test dialer: unexpected address %s", addr)
		}
		return d.DialContext(ctx, network, reg.TLSAddr())
	}
	return tr
}

func TestSeedAndPullWithGGCR(t *testing.T) {
	reg := start(t, registry.Options{})
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Seed through the Go API.
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	cfg, _ := img.RawConfigFile()
	if _, err := reg.PutBlob("anon/seeded", cfg); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		if _, err := reg.PutBlob("anon/seeded", b); err != nil {
			t.Fatal(err)
		}
	}
	d, err := reg.PutManifest("anon/seeded", "v1", string(mt), raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d.String() != want.String() {
		t.Fatalf("PutManifest digest %s, want %s", d, want)
	}
	for _, tc := range []struct {
		name string
		ref  string
		opts []remote.Option
	}{
		{"plain", reg.PlainHost() + "/anon/seeded:v1", nil},
		{"tls", reg.TLSAddr() + "/anon/seeded:v1", []remote.Option{remote.WithTransport(tlsTransport(t, reg))}},
		// Under its DNS name the registry is not loopback to ggcr: HTTPS only, certificate
		// verified for the name (the dialer plays /etc/hosts).
		{"tls by name", reg.TLSHost() + "/anon/seeded:v1", []remote.Option{remote.WithTransport(nameTransport(t, reg))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nopts []name.Option
			if tc.name == "plain" {
				nopts = append(nopts, name.Insecure)
			}
			ref, err := name.ParseReference(tc.ref, nopts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := remote.Image(ref, append(tc.opts, remote.WithContext(context.Background()))...)
			if err != nil {
				t.Fatal(err)
			}
			gd, _ := got.Digest()
			if gd != want {
				t.Fatalf("pulled %s, want %s", gd, want)
			}
			gl, err := got.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range gl {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					t.Fatal(err)
				}
				if err := rc.Close(); err != nil { // verifies the digest
					t.Fatal(err)
				}
			}
		})
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.1.2.3:0", ":0", "example.com:0"} {
		_, err := registry.Start(t.Context(), registry.Options{PlainAddr: addr})
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("Start(PlainAddr %q) = %v, want an error naming it", addr, err)
		}
	}
}

func TestForeignServesBlobs(t *testing.T) {
	reg := start(t, registry.Options{})
	d, err := reg.PutBlob("anon/x", []byte("hello foreign"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(reg.ForeignURL() + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(b, []byte("hello foreign")) {
		t.Fatalf("foreign GET: %d %q", resp.StatusCode, b)
	}
}
