package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// HostsOptions selects the optional parts of the written hosts configuration.
type HostsOptions struct {
	// Mirror makes docker.io resolve through the registry's plain listener (library/… namespace).
	// Only one process may own the docker.io entry, so only process 1 writes it.
	Mirror bool
}

// WriteHostsConfig writes containerd certs.d-style hosts files (dir/<host>/hosts.toml) for reg:
// the TLS listener by address and by TLS host name (trusting reg's CA, connecting to the
// loopback address so no name resolution is needed), and optionally a docker.io mirror.
//
// Why not runtimeconfig.WriteCertsDir: it now has CertsOptions.NoDockerIO (only one process of a
// parallel run may own the docker.io entry), but it still writes the TLS host name's hosts.toml
// with server = "https://<TLS host name>:PORT", so a target can pull by that name only if it
// resolves it. Here the name's entry connects to TLSAddr (127.0.0.1, which the fixture certificate
// also names) with the fixture CA, so the target needs no name resolution. Switch once
// runtimeconfig has an option for that (say CertsOptions.TLSNameViaAddr: under
// <TLS host name>:PORT/, a [host."https://<TLSAddr>"] entry with the CA).
func WriteHostsConfig(dir string, reg *registry.Registry, opts HostsOptions) error {
	tlsURL := "https://" + reg.TLSAddr()
	hostEntry := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n", tlsURL, reg.CAFile())
	files := map[string]string{
		reg.TLSAddr(): fmt.Sprintf("server = %q\n\n%s", tlsURL, hostEntry),
		reg.TLSHost(): fmt.Sprintf("server = %q\n\n%s", "https://"+reg.TLSHost(), hostEntry),
	}
	if opts.Mirror {
		files[runtimeconfig.DockerIOHost] = runtimeconfig.DockerIOHostsTOML(reg.PlainHost())
	}
	for host, body := range files {
		if err := writeAtomic(filepath.Join(dir, hostDirName(host)), "hosts.toml", body); err != nil {
			return err
		}
	}
	return nil
}

// hostDirName is the directory containerd looks up for host (it also tries host_port_ forms;
// the plain "host:port" form is the documented one).
func hostDirName(host string) string { return strings.TrimSpace(host) }

func writeAtomic(dir, name, body string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
