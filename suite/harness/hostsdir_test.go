package harness

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry"
)

// For a registry that serves other machines, the hosts tree names the advertised host, says http
// for the plain host, and carries the CA beside each TLS entry under a relative name: copied
// elsewhere (to the runtime's machine), it still drives containerd's resolver by every name.
func TestWriteHostsConfigRemote(t *testing.T) {
	const name = "registry.remote.test"
	reg, err := registry.Start(t.Context(), registry.Options{AllowRemote: true, Advertise: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	img := fixtures.Unique("hostsdir-remote", 1, 64)
	for _, repo := range []string{"anon/x", "library/x"} {
		if err := img.Push(reg, repo, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	written := t.TempDir()
	if _, _, err := WriteHostsConfig(written, reg, HostsOptions{Mirror: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(written, reg.TLSHost(), "hosts.toml"))
	if err != nil || !strings.Contains(string(b), `ca = "ca.crt"`) || !strings.Contains(string(b), `"https://`+reg.TLSAddr()+`"`) {
		t.Fatalf("TLS host name's hosts.toml: %v\n%s", err, b)
	}
	copied := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.CopyFS(copied, os.DirFS(written)); err != nil {
		t.Fatal(err)
	}
	hosts := config.ConfigureHosts(context.Background(), config.HostOptions{
		HostDir: config.HostDirFromRoot(copied),
		UpdateClient: func(c *http.Client) error {
			tr := c.Transport.(*http.Transport)
			tr.Proxy = nil
			d := &net.Dialer{Timeout: 5 * time.Second}
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if host != name {
					t.Errorf("resolver dialled %s, want only the advertised host", addr)
					return nil, &net.AddrError{Err: "not the advertised host", Addr: addr}
				}
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			}
			return nil
		},
	})
	for _, ref := range []string{
		reg.PlainHost() + "/anon/x:v1", reg.TLSAddr() + "/anon/x:v1", reg.TLSHost() + "/anon/x:v1", "docker.io/library/x:v1",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, desc, err := docker.NewResolver(docker.ResolverOptions{Hosts: hosts}).Resolve(ctx, ref)
		cancel()
		if err != nil || desc.Digest != img.Digest {
			t.Errorf("resolve %s from the copied tree: %v (digest %s, want %s)", ref, err, desc.Digest, img.Digest)
		}
	}
}

// TestWriteHostsConfigUndo: pointed at a runtime's own certs.d, the suite leaves it as it found
// it — a docker.io hosts.toml that was there comes back byte for byte, the registry's entries and
// the directories created for them go, and the runtime's other entries are never touched.
func TestWriteHostsConfigUndo(t *testing.T) {
	reg, err := registry.Start(t.Context(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	certs := filepath.Join(t.TempDir(), "certs.d")
	before := map[string]string{
		"docker.io/hosts.toml":        "server = \"https://registry-1.docker.io\"\n# the node's own\n",
		"quay.io/hosts.toml":          "server = \"https://quay.io\"\n",
		"registry.example/ca.crt":     "not ours\n",
		"registry.example/hosts.toml": "server = \"https://registry.example\"\n",
	}
	for name, body := range before {
		p := filepath.Join(certs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	own, mirror, err := WriteHostsConfig(certs, reg, HostsOptions{Mirror: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(certs, "docker.io", "hosts.toml")); string(b) == before["docker.io/hosts.toml"] {
		t.Fatal("the mirror entry was not written")
	}
	if _, err := os.Stat(filepath.Join(certs, reg.TLSHost(), "hosts.toml")); err != nil {
		t.Fatalf("the TLS host's entry was not written: %v", err)
	}
	if err := own.Undo(); err != nil {
		t.Fatal(err)
	}
	if err := mirror.Undo(); err != nil {
		t.Fatal(err)
	}
	var after []string
	err = filepath.WalkDir(certs, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(certs, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(b) != before[rel] {
			t.Errorf("%s: %q after undo, want %q", rel, b, before[rel])
		}
		after = append(after, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("after undo certs.d holds %v, want exactly %d files it had before", after, len(before))
	}
	for _, host := range []string{reg.TLSHost(), reg.TLSAddr()} {
		if _, err := os.Stat(filepath.Join(certs, host)); !os.IsNotExist(err) {
			t.Errorf("the directory created for %s is still there (%v)", host, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(certs, "docker.io", "hosts.toml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("docker.io/hosts.toml mode after undo: %v %v, want 0600 as before", fi.Mode(), err)
	}
	if err := own.Undo(); err != nil {
		t.Errorf("a second Undo: %v", err)
	}
}
