package runtimeconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DockerIOHost is the registry host whose hosts.toml mirrors docker.io to the fixture registry.
const DockerIOHost = "docker.io"

// CertsOptions selects optional parts of a certs.d tree.
type CertsOptions struct {
	// NoDockerIO leaves docker.io alone: only one fixture registry can own the docker.io mirror
	// (with several suite processes, each with its own registry, only one writes it).
	NoDockerIO bool
}

// CertsDir describes a containerd certs.d tree written by WriteCertsDir.
type CertsDir struct {
	Dir   string            // absolute root (what containerd's config_path names)
	Hosts map[string]string // registry host ("docker.io", "127.0.0.1:PORT", …) → its hosts.toml
}

// WriteCertsDir writes a containerd certs.d tree under dir for the registry src:
//
//   - docker.io (unless opts.NoDockerIO) → mirrored to the plain host (the fixture's library/… namespace). Its server is the
//     fixture too, so a miss never falls through to registry-1.docker.io.
//   - the plain host → http.
//   - the TLS host (by name) and the TLS address (by IP) → https, verified with the fixture CA,
//     which is written next to the hosts.toml as ca.crt and referenced by absolute path.
//
// Directories are named host:port (containerd also accepts host_port_). Existing files for the
// same hosts are replaced; other entries in dir are left alone, so a suite may add its own.
//
// Quirk handled here: containerd 1.6 rejects a hosts.toml without any [host] table ("invalid
// `host` tree", logged, then silently ignored), so server-only files carry an empty [host] table,
// which containerd 2.x ignores.
func WriteCertsDir(dir string, src Source, opts CertsOptions) (*CertsDir, error) {
	ep := EndpointsOf(src)
	if err := ep.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("runtimeconfig: certs dir: %w", err)
	}
	files := map[string]string{}
	add := func(host string, content func(hostDir string) (string, error)) error {
		hostDir := filepath.Join(abs, host)
		if err := os.MkdirAll(hostDir, 0o755); err != nil {
			return fmt.Errorf("runtimeconfig: %w", err)
		}
		text, err := content(hostDir)
		if err != nil {
			return err
		}
		path := filepath.Join(hostDir, "hosts.toml")
		if err := writeFileAtomic(path, []byte(text), 0o644); err != nil {
			return err
		}
		files[host] = path
		return nil
	}

	if !opts.NoDockerIO {
		if err := add(DockerIOHost, func(string) (string, error) {
			return DockerIOHostsTOML(ep.Plain), nil
		}); err != nil {
			return nil, err
		}
	}
	if err := add(ep.Plain, func(string) (string, error) {
		return PlainHostsTOML(ep.Plain), nil
	}); err != nil {
		return nil, err
	}
	if ep.TLS != "" {
		for _, h := range uniq(ep.TLS, ep.TLSIP) {
			if err := add(h, func(hostDir string) (string, error) {
				ca := filepath.Join(hostDir, "ca.crt")
				if err := writeFileAtomic(ca, ep.CA, 0o644); err != nil {
					return "", err
				}
				return serverOnlyHostsTOML("criimage fixture registry, TLS listener (CA: the fixture CA)", "https://"+h, ca), nil
			}); err != nil {
				return nil, err
			}
		}
	}
	return &CertsDir{Dir: abs, Hosts: files}, nil
}

// DockerIOHostsTOML is the hosts.toml that sends docker.io to the fixture registry's plain host,
// as a mirror (requests carry ?ns=docker.io) and as the server (no fall-through to the internet).
// A manifest the fixture does not have is therefore asked for twice (mirror, then server).
func DockerIOHostsTOML(plainHost string) string {
	u := "http://" + plainHost
	var b strings.Builder
	b.WriteString("# Written by criimage: docker.io is mirrored to the criimage fixture registry (library/… namespace).\n")
	b.WriteString("# The server is the fixture too, so that a miss never falls through to registry-1.docker.io.\n")
	fmt.Fprintf(&b, "server = %s\n\n", tomlString(u))
	fmt.Fprintf(&b, "[host.%s]\n", tomlString(u))
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	return b.String()
}

// PlainHostsTOML is the hosts.toml of the fixture registry's plain HTTP listener: its server over
// http (containerd assumes plain HTTP only for loopback hosts; a registry serving other machines
// needs this file).
func PlainHostsTOML(plainHost string) string {
	return serverOnlyHostsTOML("criimage fixture registry, plain HTTP listener", "http://"+plainHost, "")
}

func serverOnlyHostsTOML(comment, server, ca string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by criimage: %s.\n", comment)
	fmt.Fprintf(&b, "server = %s\n", tomlString(server))
	if ca != "" {
		fmt.Fprintf(&b, "ca = %s\n", tomlString(ca))
	}
	b.WriteString("\n# containerd 1.6 ignores a hosts.toml without a host table (\"invalid `host` tree\"); 2.x ignores this empty one.\n")
	b.WriteString("[host]\n")
	return b.String()
}

func uniq(ss ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// writeFileAtomic writes data to path through a temp file in the same directory and a rename, so
// that a runtime reading the tree concurrently (containerd reads hosts.toml on every pull) never
// sees a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("runtimeconfig: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("runtimeconfig: write %s: %w", path, werr)
	}
	return nil
}
