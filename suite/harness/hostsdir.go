package harness

import (
	"errors"
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
//
// The runtime's own certs.d may be what dir names (a node's /etc/containerd/certs.d): the returned
// HostsChanges record what was there before — the registry's own entries, and the docker.io entry
// apart (with a parallel run it must outlive the other processes) — so that the suite leaves the
// directory as it found it (Env.Teardown, Env.StopTarget).
func WriteHostsConfig(dir string, reg *registry.Registry, opts HostsOptions) (own, mirror *HostsChange, err error) {
	own, mirror = &HostsChange{}, &HostsChange{}
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
		change := own
		if host == runtimeconfig.DockerIOHost {
			change = mirror
		}
		if reg.Remote() && host != runtimeconfig.DockerIOHost {
			if err := change.write(filepath.Join(dir, hostDirName(host)), ca, string(reg.CAPEM())); err != nil {
				return own, mirror, err
			}
		}
		if err := change.write(filepath.Join(dir, hostDirName(host)), "hosts.toml", body); err != nil {
			return own, mirror, err
		}
	}
	if reg.Remote() {
		if err := own.write(filepath.Join(dir, hostDirName(reg.PlainHost())), "hosts.toml", runtimeconfig.PlainHostsTOML(reg.PlainHost())); err != nil {
			return own, mirror, err
		}
	}
	return own, mirror, nil
}

// HostsChange is what WriteHostsConfig changed in a directory, to undo it: the files it wrote
// (with what each held before, if anything) and the directories it created.
type HostsChange struct {
	files []fileBefore
	dirs  []string // created, parents first
}

type fileBefore struct {
	path    string
	existed bool
	body    []byte
	mode    os.FileMode
}

// write records what dir/name holds now (and which of dir's parents are missing), then writes
// body there atomically.
func (c *HostsChange) write(dir, name, body string) error {
	path := filepath.Join(dir, name)
	before := fileBefore{path: path}
	if fi, err := os.Stat(path); err == nil {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("hosts config: keep %s to restore it: %w", path, err)
		}
		before = fileBefore{path: path, existed: true, body: b, mode: fi.Mode().Perm()}
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append([]string{d}, missing...)
	}
	if err := writeAtomic(dir, name, body); err != nil {
		return fmt.Errorf("hosts config: %w", err)
	}
	c.dirs = append(c.dirs, missing...)
	c.files = append(c.files, before)
	return nil
}

// Undo puts every file back as it was (removing those that were not there) and removes the
// directories it created once they are empty (a runtime's own files in them stay). Safe on nil
// and to call twice.
func (c *HostsChange) Undo() error {
	if c == nil {
		return nil
	}
	var errs []error
	for i := len(c.files) - 1; i >= 0; i-- {
		f := c.files[i]
		if f.existed {
			if err := os.WriteFile(f.path, f.body, f.mode); err != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", f.path, err))
			}
			continue
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", f.path, err))
		}
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		_ = os.Remove(c.dirs[i]) // only if empty: whatever else is there is not ours
	}
	c.files, c.dirs = nil, nil
	return errors.Join(errs...)
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
