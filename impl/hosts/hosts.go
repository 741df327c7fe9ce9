// Package hosts finds a registry's certs.d directory (hosts.toml, CA and client certificates) in a
// list of roots, tried in order like containerd's local pull (hostDirFromRoots), and refuses a
// hosts.toml that containerd would silently ignore.
//
// Lookup per root is containerd's config.HostDirFromRoot: <root>/<host>_<port>_, <root>/<host:port>,
// <root>/_default; the first root with a match wins, nothing is merged. A host written with
// capitals that has no directory of its own is looked up again in lower case: host names are
// case-insensitive (RFC 4343) and certs.d directories are written in lower case, so
// "REGISTRY.EXAMPLE:5000/app" must not lose its CA (containerd's lookup is case-sensitive).
package hosts

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// Dir returns a config.HostOptions.HostDir function over roots. A found directory whose hosts.toml
// is malformed is an error naming the file (containerd logs it and falls back to defaults, which
// silently drops mirrors and CAs).
func Dir(roots []string) func(host string) (string, error) {
	exact := dirExact(roots)
	return func(host string) (string, error) {
		dir, err := exact(host)
		lower := strings.ToLower(host)
		if lower == host || !(errdefs.IsNotFound(err) || err == nil && filepath.Base(dir) == "_default") {
			return dir, err
		}
		if ldir, lerr := exact(lower); lerr == nil && filepath.Base(ldir) != "_default" {
			return ldir, nil
		}
		return dir, err
	}
}

// dirExact is Dir without the lower-case retry.
func dirExact(roots []string) func(host string) (string, error) {
	fns := make([]func(string) (string, error), 0, len(roots))
	for _, r := range roots {
		if r != "" {
			fns = append(fns, config.HostDirFromRoot(r))
		}
	}
	return func(host string) (string, error) {
		for _, fn := range fns {
			dir, err := fn(host)
			if err != nil && !errdefs.IsNotFound(err) {
				return "", fmt.Errorf("hosts directory for %s: %w", host, err)
			}
			if dir != "" {
				if err := Validate(dir); err != nil {
					return "", err
				}
				return dir, nil
			}
		}
		return "", errdefs.ErrNotFound
	}
}

// hostFile mirrors the keys containerd's parseHostsFile understands (core/remotes/docker/config).
type hostFile struct {
	Server       string              `toml:"server"`
	Capabilities []string            `toml:"capabilities"`
	CA           any                 `toml:"ca"`
	Client       any                 `toml:"client"`
	SkipVerify   *bool               `toml:"skip_verify"`
	Header       map[string]any      `toml:"header"`
	OverridePath bool                `toml:"override_path"`
	DialTimeout  string              `toml:"dial_timeout"`
	Host         map[string]hostFile `toml:"host"`
}

// Validate checks dir/hosts.toml (if present) for the errors that make containerd ignore it: TOML
// syntax and types, unknown capabilities, unparsable server URLs and dial timeouts, CA/client
// values that are neither strings nor lists. Written by hand: containerd's parser is unexported
// and only logs.
func Validate(dir string) error {
	path := filepath.Join(dir, "hosts.toml")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var f hostFile
	if err := toml.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("malformed %s: %w", path, err)
	}
	check := func(name string, h hostFile) error {
		if name != "" {
			s := name
			if !strings.HasPrefix(s, "http") {
				s = "https://" + s
			}
			if u, err := url.Parse(s); err != nil || u.Host == "" {
				return fmt.Errorf("malformed %s: server %q is not a URL", path, name)
			}
		}
		for _, c := range h.Capabilities {
			switch strings.ToLower(c) {
			case "pull", "resolve", "push", "referrers":
			default:
				return fmt.Errorf("malformed %s: %s: unknown capability %q", path, orTop(name), c)
			}
		}
		if h.DialTimeout != "" {
			if _, err := time.ParseDuration(h.DialTimeout); err != nil {
				return fmt.Errorf("malformed %s: %s: dial_timeout: %w", path, orTop(name), err)
			}
		}
		for key, v := range map[string]any{"ca": h.CA, "client": h.Client} {
			switch v.(type) {
			case nil, string, []any:
			default:
				return fmt.Errorf("malformed %s: %s: %q must be a string or a list", path, orTop(name), key)
			}
		}
		return nil
	}
	if err := check(f.Server, f); err != nil {
		return err
	}
	for name, h := range f.Host {
		if err := check(name, h); err != nil {
			return err
		}
	}
	return nil
}

func orTop(name string) string {
	if name == "" {
		return "top level"
	}
	return fmt.Sprintf("[host.%q]", name)
}
