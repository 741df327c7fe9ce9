package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

const configUsage = `usage:
  criimage config containerd --dir DIR --version VERSION [flags] [--registry-* ...]
      write DIR/config.toml for a containerd daemon that keeps everything under DIR and serves
      CRI on DIR/containerd.sock; with --registry-plain also write DIR/certs.d for that registry
      (otherwise fill it later: containerd reads hosts.toml on every pull)
  criimage config certs --dir DIR --registry-* ...
      write only a containerd certs.d tree (hosts.toml per host, docker.io mirrored to the fixture)
  criimage config crio --dir DIR --registry-* ...
      write CRI-O's registries.conf, auth.json (fixture credentials) and certs.d

registry flags (the endpoints "criimage registry" prints):
  --registry-plain HOST:PORT  --registry-tls-host NAME:PORT  --registry-tls-addr IP:PORT
  --registry-ca FILE          --registry-foreign URL
  --registry-allow-remote     the endpoints are outside loopback: a registry started with
                              -allow-remote, for this (another) machine (docs/remote.md)

containerd and certs print shell assignments (CONTAINERD_CONFIG=…) for eval in scripts.
`

// runConfig implements "criimage config".
func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, configUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: config needs a target: containerd, certs or crio", errUsage)
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "containerd":
		return configContainerd(args[1:], stdout, stderr)
	case "certs":
		return configCerts(args[1:], stdout, stderr)
	case "crio", "cri-o":
		return configCRIO(args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, configUsage)
		return fmt.Errorf("%w: unknown config target %q", errUsage, args[0])
	}
}

// registryFlags are the endpoints of a fixture registry run elsewhere.
type registryFlags struct {
	plain, tlsHost, tlsAddr, caFile, foreign string
	allowRemote                              bool
}

func (r *registryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.plain, "registry-plain", "", "fixture registry plain host:port (127.0.0.1:PORT)")
	fs.StringVar(&r.tlsHost, "registry-tls-host", "", "fixture registry TLS host name:port (registry.criimage.test:PORT)")
	fs.StringVar(&r.tlsAddr, "registry-tls-addr", "", "fixture registry TLS listener ip:port (127.0.0.1:PORT)")
	fs.StringVar(&r.caFile, "registry-ca", "", "PEM file of the CA that signed the fixture's TLS certificate")
	fs.StringVar(&r.foreign, "registry-foreign", "", "fixture foreign host URL (http://127.0.0.2:PORT)")
	fs.BoolVar(&r.allowRemote, "registry-allow-remote", false, "accept endpoints outside loopback (a registry started with -allow-remote)")
}

func (r *registryFlags) given() bool {
	return r.plain != "" || r.tlsHost != "" || r.tlsAddr != "" || r.caFile != "" || r.foreign != ""
}

func (r *registryFlags) endpoints() (runtimeconfig.Endpoints, error) {
	ep := runtimeconfig.Endpoints{Plain: r.plain, TLS: r.tlsHost, TLSIP: r.tlsAddr, Foreign: r.foreign, AllowRemote: r.allowRemote}
	if r.caFile != "" {
		b, err := os.ReadFile(r.caFile)
		if err != nil {
			return ep, fmt.Errorf("registry CA: %w", err)
		}
		ep.CA = b
	}
	if err := ep.Validate(); errors.Is(err, registry.ErrNotLoopback) {
		return ep, fmt.Errorf("%w: %v; for a registry that serves other machines, add --registry-allow-remote", errUsage, err)
	} else if err != nil {
		return ep, fmt.Errorf("%w: %v", errUsage, err)
	}
	return ep, nil
}

// keyValues collects repeated NAME=VALUE flags.
type keyValues map[string]string

func (kv keyValues) String() string {
	var parts []string
	for _, k := range sortedStrings(kv) {
		parts = append(parts, k+"="+kv[k])
	}
	return strings.Join(parts, ",")
}

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	kv[k] = v
	return nil
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func sortedStrings(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func configContainerd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("criimage config containerd", stderr)
	var (
		opts     runtimeconfig.ContainerdOptions
		reg      registryFlags
		certs    stringList
		handlers = keyValues{}
		pinned   = keyValues{}
	)
	fs.StringVar(&opts.Dir, "dir", "", "directory for config.toml, root, state and the socket (required)")
	fs.StringVar(&opts.Version, "version", "", "containerd version the config is for, e.g. 2.4.2 or 1.6.20 (required)")
	fs.StringVar(&opts.Snapshotter, "snapshotter", "overlayfs", "CRI default snapshotter: overlayfs or native")
	fs.StringVar(&opts.SandboxImage, "sandbox-image", runtimeconfig.DefaultSandboxImage, "pinned sandbox image reference")
	fs.BoolVar(&opts.LocalImagePull, "local-pull", false, "2.x: use the local pull path instead of the transfer service")
	fs.DurationVar(&opts.PullProgressTimeout, "pull-progress-timeout", 0, "2.x: image_pull_progress_timeout (0 = runtime default)")
	fs.BoolVar(&opts.NoPullProgressTimeout, "no-pull-progress-timeout", false, "2.x: image_pull_progress_timeout = \"0s\" (no timeout)")
	fs.IntVar(&opts.StatsCollectPeriod, "stats-collect-period", 1, "seconds between ImageFsInfo usage refreshes")
	fs.Var(&certs, "certs-dir", "registry config root (config_path); repeat for several (default DIR/certs.d)")
	fs.Var(handlers, "runtime-handler", "2.x: NAME=SNAPSHOTTER extra runtime handler (repeatable)")
	fs.Var(pinned, "pinned-image", "2.x: KEY=REF extra pinned image (repeatable)")
	reg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if opts.Dir == "" || opts.Version == "" {
		return fmt.Errorf("%w: --dir and --version are required", errUsage)
	}
	opts.CertsDirs = certs
	if len(handlers) > 0 {
		opts.RuntimeHandlers = handlers
	}
	if len(pinned) > 0 {
		opts.PinnedImages = pinned
	}
	var ep runtimeconfig.Endpoints
	if reg.given() {
		var err error
		if ep, err = reg.endpoints(); err != nil {
			return err
		}
	}
	c, err := runtimeconfig.WriteContainerdConfig(opts)
	if err != nil {
		return err
	}
	if reg.given() {
		if _, err := runtimeconfig.WriteCertsDir(c.CertsDirs[0], ep, runtimeconfig.CertsOptions{}); err != nil {
			return err
		}
	}
	printAssignments(stdout, [][2]string{
		{"CONTAINERD_CONFIG", c.ConfigFile},
		{"CONTAINERD_DIR", c.Dir},
		{"CONTAINERD_ROOT", c.Root},
		{"CONTAINERD_STATE", c.State},
		{"CONTAINERD_SOCKET", c.Socket},
		{"CONTAINERD_ENDPOINT", c.Endpoint},
		{"CONTAINERD_CERTS_DIR", c.CertsDirs[0]},
		{"CONTAINERD_LOG", c.LogFile},
	})
	return nil
}

func configCerts(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("criimage config certs", stderr)
	var (
		dir string
		reg registryFlags
	)
	fs.StringVar(&dir, "dir", "", "certs.d root to write (required)")
	reg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	ep, err := reg.endpoints()
	if err != nil {
		return err
	}
	return writeCerts(stdout, dir, ep)
}

// writeCerts writes a certs.d tree for src under dir and prints where. "criimage registry" can
// call it for "criimage registry config containerd --dir DIR" with the running *registry.Registry.
func writeCerts(stdout io.Writer, dir string, src runtimeconfig.Source) error {
	cd, err := runtimeconfig.WriteCertsDir(dir, src, runtimeconfig.CertsOptions{})
	if err != nil {
		return err
	}
	kv := [][2]string{{"CONTAINERD_CERTS_DIR", cd.Dir}}
	for _, h := range sortedStrings(cd.Hosts) {
		kv = append(kv, [2]string{"# hosts.toml for " + h, cd.Hosts[h]})
	}
	printAssignments(stdout, kv)
	return nil
}

func configCRIO(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("criimage config crio", stderr)
	var (
		opts runtimeconfig.CRIOOptions
		reg  registryFlags
		anon bool
	)
	fs.StringVar(&opts.Dir, "dir", "", "output directory (required)")
	fs.BoolVar(&anon, "no-auth", false, "write an auth file without credentials")
	reg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if opts.Dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	ep, err := reg.endpoints()
	if err != nil {
		return err
	}
	return writeCRIO(stdout, ep, opts, anon)
}

// writeCRIO writes CRI-O's registries.conf, auth file and certs.d for ep and prints where.
func writeCRIO(stdout io.Writer, ep runtimeconfig.Endpoints, opts runtimeconfig.CRIOOptions, anon bool) error {
	if !anon {
		// The documented fixture credentials (a test fixture's values, not anyone's secret).
		opts.Username, opts.Password = auth.FixtureUser, auth.FixturePassword
	}
	out, err := runtimeconfig.WriteCRIOConfig(ep, opts)
	if err != nil {
		return err
	}
	printAssignments(stdout, [][2]string{
		{"CRIO_REGISTRIES_CONF", out.RegistriesConf},
		{"CRIO_AUTH_FILE", out.AuthFile},
		{"CRIO_CERTS_DIR", out.CertsDir},
	})
	return nil
}

// printAssignments prints NAME='value' lines (shell-quoted) for eval; keys starting with "#" are
// printed as comments.
func printAssignments(w io.Writer, kv [][2]string) {
	for _, p := range kv {
		if strings.HasPrefix(p[0], "#") {
			fmt.Fprintf(w, "%s: %s\n", p[0], p[1])
			continue
		}
		fmt.Fprintf(w, "%s=%s\n", p[0], shellQuote(p[1]))
	}
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
