package pull

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/grpcerr"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

// writeHosts writes root/<dir>/hosts.toml (and ca.crt when ca is set).
func writeHosts(t *testing.T, root, dir, toml string, ca []byte) string {
	t.Helper()
	d := filepath.Join(root, dir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if ca != nil {
		if err := os.WriteFile(filepath.Join(d, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHostsTLSWithCA(t *testing.T) {
	t.Parallel()
	empty, root := t.TempDir(), t.TempDir()
	e := newEnv(t, Options{HostsDirs: []string{empty, root}}) // the second root has it
	tlsAddr := e.reg.TLSAddr()
	writeHosts(t, root, tlsAddr, fmt.Sprintf("server = %q\n[host.%q]\n  ca = \"ca.crt\"\n", "https://"+tlsAddr, "https://"+tlsAddr), e.reg.CAPEM())
	img := buildImage(t, true, linuxAMD64, map[string]string{"tls": "1"})
	e.push("token/tls", "v1", img)
	creds := &runtime.AuthConfig{Username: user, Password: pass}
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(tlsAddr + "/token/tls:v1"), Auth: creds})
	if err != nil {
		t.Fatalf("Pull over verified TLS: %v", err)
	}
	_ = res.Done(e.ctx)
	if e.reg.Journal().BlobGets("token/tls", img.layers[0]) != 1 {
		t.Fatal("the layer did not come over the TLS listener")
	}
	for _, en := range e.reg.Journal().Entries() {
		if en.Listener != route.ListenerTLS {
			t.Errorf("request on %s: %s %s", en.Listener, en.Method, en.Path)
		}
	}

	t.Run("realm on another port over http", func(t *testing.T) {
		e.push("token/tls2", "v1", img)
		id := e.reg.Faults().Arm(faults.Rule{
			Match: route.Match{Listener: route.ListenerTLS, Repo: "token/tls2", Kind: route.KindManifest},
			Action: faults.Action{Kind: faults.KindStatus, Status: http.StatusUnauthorized,
				Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm=%q,service="criimage-registry"`, "http://"+e.reg.PlainHost()+"/token")}}},
		})
		defer e.reg.Faults().Clear(id)
		before := e.reg.Journal().Last()
		_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(tlsAddr + "/token/tls2:v1"), Auth: creds})
		if err == nil {
			t.Fatal("Pull succeeded")
		}
		fp := e.reg.Journal().Fingerprint(pass)
		for _, en := range e.reg.Journal().Since(before) {
			if contains(en.Secrets, fp) || en.AuthScheme == "Basic" {
				t.Errorf("the password went to %s %s %s", en.Listener, en.Method, en.Path)
			}
		}
	})
}

func TestHostsWrongCA(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e := newEnv(t, Options{HostsDirs: []string{root}})
	other, err := registry.Start(e.ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tlsAddr := e.reg.TLSAddr()
	writeHosts(t, root, tlsAddr, fmt.Sprintf("server = %q\nca = \"ca.crt\"\n", "https://"+tlsAddr), other.CAPEM())
	e.push("anon/tls", "v1", buildImage(t, true, linuxAMD64, map[string]string{"tls": "2"}))
	ref := tlsAddr + "/anon/tls:v1"
	_, err = e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
	if grpcerr.Code(err) != codes.Unknown || !strings.HasPrefix(status.Convert(grpcerr.Status(err)).Message(), "RegistryUnavailable: ") ||
		!strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), ref) {
		t.Fatalf("Pull = %v, want Unknown, RegistryUnavailable about the certificate", err)
	}
}

// TestHostsMirrorCredentials: credentials for a registry reach the mirrors its hosts.toml
// declares (kubelet hands over the image's registry's credentials; the node's configuration says
// the mirror serves it), under every server_address form of Docker Hub; credentials for another
// registry, or a mirror declared for another registry, get nothing.
func TestHostsMirrorCredentials(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e := newEnv(t, Options{HostsDirs: []string{root}})
	plain := e.reg.PlainHost()
	mirror := fmt.Sprintf("server = %q\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "https://registry.invalid", "http://"+plain)
	writeHosts(t, root, "docker.io", mirror, nil)
	writeHosts(t, root, "quay.io", mirror, nil)
	for i, tc := range []struct {
		name, ref, server string
		ok                bool
	}{
		{"no server_address: the pulled registry's", "docker.io/basic/app", "", true},
		{"https://index.docker.io/v1/", "docker.io/basic/app", "https://index.docker.io/v1/", true},
		{"index.docker.io", "docker.io/basic/app", "index.docker.io", true},
		{"registry-1.docker.io", "docker.io/basic/app", "registry-1.docker.io", true},
		{"docker.io", "docker.io/basic/app", "docker.io", true},
		{"credentials for another registry", "docker.io/basic/app", "https://quay.io", false},
		{"a mirror declared for another registry", "quay.io/basic/app", "docker.io", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := fmt.Sprintf("basic/app%d", i)
			e.push(repo, "latest", buildImage(t, true, linuxAMD64, map[string]string{"mirror": tc.name}))
			ref := strings.Replace(tc.ref, "basic/app", repo, 1)
			mark := e.reg.Journal().Last()
			res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref), Auth: &runtime.AuthConfig{Username: user, Password: pass, ServerAddress: tc.server}})
			if err == nil {
				_ = res.Done(e.ctx)
			}
			saw := false
			for _, en := range e.reg.Journal().Since(mark) {
				saw = saw || slices.Contains(en.Secrets, e.reg.Journal().Fingerprint(pass))
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Pull %s through the mirror: %v", ref, err)
			case tc.ok && !saw:
				t.Fatal("the pull succeeded without the mirror seeing the password")
			case !tc.ok && (err == nil || saw):
				t.Fatalf("Pull %s: err %v, mirror saw the password: %v; want a failure and no password", ref, err, saw)
			}
		})
	}
}

func TestHostsMalformed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e := newEnv(t, Options{HostsDirs: []string{root}})
	plain := e.reg.PlainHost()
	for _, tc := range []struct{ name, toml string }{
		{"syntax", "server = [[["},
		{"capability", fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"teleport\"]\n", "http://"+plain)},
		{"dial_timeout", "dial_timeout = \"soon\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(writeHosts(t, root, plain, tc.toml, nil), "hosts.toml")
			ref := plain + "/anon/x:v1"
			_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(ref)})
			if grpcerr.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), ref) {
				t.Fatalf("Pull = %v, want FailedPrecondition naming %s", err, path)
			}
		})
	}
	if n := len(e.reg.Journal().Entries()); n != 0 {
		t.Errorf("%d requests reached the registry despite the bad configuration", n)
	}
}
