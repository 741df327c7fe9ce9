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
	if err := WriteHostsConfig(written, reg, HostsOptions{Mirror: true}); err != nil {
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
