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
// the TLS listener by address and by TLS host name (trusting reg's CA, connecting to TLSAddr —
// the loopback address, or the advertised host — so the TLS host name needs no resolution), and
// optionally a docker.io mirror.
//
// Why not runtimeconfig.WriteCertsDir: it now has CertsOptions.NoDockerIO (only one process of a
// parallel run may own the docker.io entry), but it still writes the TLS host name's hosts.toml
// with server = "https://<TLS host name>:PORT", so a target can pull by that name only if it
// resolves it. Here the name's entry connects to TLSAddr (127.0.0.1, which the fixture certificate
// also names) with the fixture CA, so the target needs no name resolution. Switch once
// runtimeconfig has an option for that (say CertsOptions.TLSNameViaAddr: under
// <TLS host name>:PORT/, a [host."https://<TLSAddr>"] entry with the CA).
//
// A registry that serves other machines (reg.Remote()) gets a tree that can be copied or shared
// with the runtime's machine as it is: each TLS entry's directory holds the CA as ca.crt, named
// relatively (containerd resolves a relative ca against the hosts.toml's directory), and the
// plain host has a hosts.toml saying http (containerd assumes plain HTTP only for loopback).
func WriteHostsConfig(dir string, reg *registry.Registry, opts HostsOptions) error {
	ca := reg.CAFile()
	if reg.Remote() {
		ca = "ca.crt"
	}
	tlsURL := "https://" + reg.TLSAddr()
	hostEntry := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n", tlsURL, ca)
	files := map[string]string{
		reg.TLSAddr(): fmt.Sprintf("server = %q\n\n%s", tlsURL, hostEntry),
		reg.TLSHost(): fmt.Sprintf("server = %q\n\n%s", "https://"+reg.TLSHost(), hostEntry),
	}
	if opts.Mirror {
		files[runtimeconfig.DockerIOHost] = runtimeconfig.DockerIOHostsTOML(reg.PlainHost())
	}
	for host, body := range files {
		if reg.Remote() && host != runtimeconfig.DockerIOHost {
			if err := writeAtomic(filepath.Join(dir, hostDirName(host)), ca, string(reg.CAPEM())); err != nil {
				return err
			}
		}
		if err := writeAtomic(filepath.Join(dir, hostDirName(host)), "hosts.toml", body); err != nil {
			return err
		}
	}
	if reg.Remote() {
		return writeAtomic(filepath.Join(dir, hostDirName(reg.PlainHost())), "hosts.toml", runtimeconfig.PlainHostsTOML(reg.PlainHost()))
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
