package runtimeconfig

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// DefaultSandboxImage is the sandbox (pause) image the generated containerd configs pin. It is a
// docker.io name, so it goes through the docker.io → fixture mirror whatever the fixture's ports
// are; seed library/pause:criimage in the fixture to pull it. containerd pins it (Image.pinned)
// from 1.7 on; 1.6 reports no pinned images at all.
const DefaultSandboxImage = "docker.io/library/pause:criimage"

// ContainerdOptions selects what WriteContainerdConfig writes.
type ContainerdOptions struct {
	// Version of the containerd daemon that will read the file, e.g. "1.6.20" or "2.4.2".
	// 1.x gets a version 2 config (plugin io.containerd.grpc.v1.cri); 2.x a version 3 config
	// (plugins io.containerd.cri.v1.images / .runtime; 2.3 and later migrate it to version 4 on
	// load, 2.2 reads version 3 as is).
	Version string
	// Dir holds everything the daemon creates: root/, state/, tmp/, opt/, containerd.sock.
	// It must be absolute-able and short enough for a unix socket path.
	Dir string
	// CertsDirs are the registry config roots (config_path); default [Dir/certs.d]. Several roots
	// are joined with ':' (containerd 2.x's transfer service ignores multi-root paths: #12415).
	CertsDirs []string
	// Snapshotter is the CRI default snapshotter: "overlayfs" (default) or "native".
	Snapshotter string
	// SandboxImage is pinned (2.x: pinned_images.sandbox; 1.6: sandbox_image). Default
	// DefaultSandboxImage. Image-only RPCs never pull it.
	SandboxImage string
	// PinnedImages adds more pinned references (2.x only; key → fully qualified reference).
	PinnedImages map[string]string
	// RuntimeHandlers maps extra runtime handler names to their snapshotter (2.x only).
	RuntimeHandlers map[string]string
	// LocalImagePull selects 2.x's local (client) pull path instead of the transfer service.
	LocalImagePull bool
	// PullProgressTimeout sets image_pull_progress_timeout (2.x; 1.6.20 has no such key).
	// 0 leaves the runtime default (5m).
	PullProgressTimeout time.Duration
	// NoPullProgressTimeout writes image_pull_progress_timeout = "0s", containerd's "no timeout"
	// (on 2.x's transfer path it makes every pull hang: #14158). Excludes PullProgressTimeout.
	NoPullProgressTimeout bool
	// StatsCollectPeriod is how often ImageFsInfo's usage is refreshed, in seconds (default 1;
	// containerd's default is 10).
	StatsCollectPeriod int
}

// Containerd is the layout WriteContainerdConfig produced.
type Containerd struct {
	Version    string
	Major      int    // 1 or 2
	Dir        string // absolute
	ConfigFile string // Dir/config.toml
	Root       string
	State      string
	Socket     string // Dir/containerd.sock
	Endpoint   string // "unix://" + Socket
	CertsDirs  []string
	LogFile    string // where the gate scripts send the daemon's output: Dir/containerd.log
}

// maxSocketPath keeps unix socket paths under the kernel's sun_path limit (108 bytes) with room
// for containerd's ".ttrpc" suffix.
const maxSocketPath = 100

// WriteContainerdConfig writes Dir/config.toml for a containerd daemon that keeps all its files
// under Dir, serves CRI on Dir/containerd.sock, reads registry configuration from the certs
// dirs, and needs no network set-up for image-only use (CNI points at empty dirs under Dir; the
// CRI plugin only warns). NRI, tracing and snapshotters that touch global paths are disabled.
// It does not write the certs.d tree itself (WriteCertsDir does, possibly later: containerd reads
// hosts.toml on every pull).
func WriteContainerdConfig(opts ContainerdOptions) (*Containerd, error) {
	major, err := majorVersion(opts.Version)
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("runtimeconfig: containerd dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("runtimeconfig: %w", err)
	}
	c := &Containerd{
		Version:    opts.Version,
		Major:      major,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "config.toml"),
		Root:       filepath.Join(dir, "root"),
		State:      filepath.Join(dir, "state"),
		Socket:     filepath.Join(dir, "containerd.sock"),
		LogFile:    filepath.Join(dir, "containerd.log"),
	}
	c.Endpoint = "unix://" + c.Socket
	if len(c.Socket)+len(".ttrpc") > maxSocketPath {
		return nil, fmt.Errorf("runtimeconfig: socket path %q is too long for a unix socket; use a shorter dir", c.Socket)
	}
	c.CertsDirs = opts.CertsDirs
	if len(c.CertsDirs) == 0 {
		c.CertsDirs = []string{filepath.Join(dir, "certs.d")}
	}
	for i, d := range c.CertsDirs {
		if c.CertsDirs[i], err = filepath.Abs(d); err != nil {
			return nil, fmt.Errorf("runtimeconfig: %w", err)
		}
		if strings.Contains(c.CertsDirs[i], string(filepath.ListSeparator)) {
			return nil, fmt.Errorf("runtimeconfig: certs dir %q contains %q", d, string(filepath.ListSeparator))
		}
	}
	snap := opts.Snapshotter
	if snap == "" {
		snap = "overlayfs"
	}
	if snap != "overlayfs" && snap != "native" {
		return nil, fmt.Errorf("runtimeconfig: snapshotter %q: want overlayfs or native", snap)
	}
	for h, s := range opts.RuntimeHandlers {
		if s != "overlayfs" && s != "native" {
			return nil, fmt.Errorf("runtimeconfig: runtime handler %q: snapshotter %q: want overlayfs or native", h, s)
		}
	}
	sandbox := opts.SandboxImage
	if sandbox == "" {
		sandbox = DefaultSandboxImage
	}
	stats := opts.StatsCollectPeriod
	if stats <= 0 {
		stats = 1
	}
	if opts.NoPullProgressTimeout && opts.PullProgressTimeout != 0 {
		return nil, errors.New("runtimeconfig: a pull progress timeout and no pull progress timeout")
	}
	if opts.PullProgressTimeout < 0 {
		return nil, errors.New("runtimeconfig: negative pull progress timeout")
	}
	if major == 1 {
		if len(opts.PinnedImages) > 0 || len(opts.RuntimeHandlers) > 0 || opts.LocalImagePull || opts.PullProgressTimeout != 0 || opts.NoPullProgressTimeout {
			return nil, errors.New("runtimeconfig: containerd 1.6 has no pinned_images, per-handler snapshotters, use_local_image_pull or image_pull_progress_timeout")
		}
	}

	for _, d := range append([]string{dir}, c.CertsDirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("runtimeconfig: %w", err)
		}
	}
	cfg := containerdConfig(c, opts, snap, sandbox, stats)
	text, err := toml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("runtimeconfig: encode config: %w", err)
	}
	header := fmt.Sprintf("# Written by criimage for containerd %s: everything lives under %s; loopback registries only.\n", opts.Version, dir)
	if err := writeFileAtomic(c.ConfigFile, append([]byte(header), text...), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

func majorVersion(v string) (int, error) {
	v = strings.TrimPrefix(v, "v")
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	if err != nil || (n != 1 && n != 2) {
		return 0, fmt.Errorf("runtimeconfig: containerd version %q: want 1.x or 2.x", v)
	}
	if n == 1 {
		// 1.6 and 1.7 share the version 2 layout used here.
		minor, _, _ := strings.Cut(strings.TrimPrefix(v, "1."), ".")
		if m, err := strconv.Atoi(minor); err != nil || m < 6 {
			return 0, fmt.Errorf("runtimeconfig: containerd version %q: 1.6 or later", v)
		}
	}
	return n, nil
}

type table = map[string]any

func containerdConfig(c *Containerd, opts ContainerdOptions, snap, sandbox string, stats int) table {
	configPath := strings.Join(c.CertsDirs, string(filepath.ListSeparator))
	cni := func(keyBin string, bin any) table {
		return table{keyBin: bin, "conf_dir": filepath.Join(c.Dir, "cni", "net.d")}
	}
	cfg := table{
		"root":    c.Root,
		"state":   c.State,
		"imports": []string{},
		"grpc":    table{"address": c.Socket},
		"ttrpc":   table{"address": c.Socket + ".ttrpc"},
		"debug":   table{"level": "info"},
	}
	plugins := table{
		"io.containerd.internal.v1.opt": table{"path": filepath.Join(c.Dir, "opt")},
	}
	cfg["plugins"] = plugins
	// Plugins that would touch global paths or devices, or are not needed for images.
	disabled := []string{
		"io.containerd.internal.v1.tracing",
		"io.containerd.tracing.processor.v1.otlp",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.zfs",
	}
	if c.Major == 1 {
		cfg["version"] = 2
		cri := table{
			"sandbox_image":         sandbox,
			"stream_server_address": "127.0.0.1",
			"stream_server_port":    "0",
			"stats_collect_period":  stats,
			"containerd":            table{"snapshotter": snap},
			"registry":              table{"config_path": configPath},
			"cni":                   cni("bin_dir", filepath.Join(c.Dir, "cni", "bin")),
		}
		plugins["io.containerd.grpc.v1.cri"] = cri
	} else {
		cfg["version"] = 3
		cfg["temp"] = filepath.Join(c.Dir, "tmp")
		disabled = append(disabled,
			"io.containerd.nri.v1.nri", // its socket is /var/run/nri/nri.sock
			"io.containerd.snapshotter.v1.blockfile",
			"io.containerd.snapshotter.v1.erofs",
		)
		pinned := table{"sandbox": sandbox}
		for _, k := range slices.Sorted(maps.Keys(opts.PinnedImages)) {
			pinned[k] = opts.PinnedImages[k]
		}
		images := table{
			"snapshotter":          snap,
			"stats_collect_period": stats,
			"pinned_images":        pinned,
			"registry":             table{"config_path": configPath},
		}
		if opts.LocalImagePull {
			images["use_local_image_pull"] = true
		}
		switch {
		case opts.NoPullProgressTimeout:
			images["image_pull_progress_timeout"] = "0s"
		case opts.PullProgressTimeout != 0:
			images["image_pull_progress_timeout"] = opts.PullProgressTimeout.String()
		}
		plugins["io.containerd.cri.v1.images"] = images
		rt := table{"cni": cni("bin_dirs", []string{filepath.Join(c.Dir, "cni", "bin")})}
		if len(opts.RuntimeHandlers) > 0 {
			runtimes := table{}
			for _, h := range slices.Sorted(maps.Keys(opts.RuntimeHandlers)) {
				runtimes[h] = table{"runtime_type": "io.containerd.runc.v2", "snapshotter": opts.RuntimeHandlers[h]}
			}
			rt["containerd"] = table{"runtimes": runtimes}
		}
		plugins["io.containerd.cri.v1.runtime"] = rt
		plugins["io.containerd.grpc.v1.cri"] = table{
			"stream_server_address": "127.0.0.1",
			"stream_server_port":    "0",
		}
		transfer := table{"config_path": configPath}
		if snap != "overlayfs" {
			// The transfer service unpacks only for snapshotters in its unpack_config, whose
			// default names overlayfs alone (#11606).
			// Keep the default overlayfs entry, so that handlers using it still unpack.
			var ucs []table
			for _, s := range []string{snap, "overlayfs"} {
				ucs = append(ucs, table{"platform": "linux/" + runtime.GOARCH, "snapshotter": s, "differ": "walking"})
			}
			transfer["unpack_config"] = ucs
		}
		plugins["io.containerd.transfer.v1.local"] = transfer
		plugins["io.containerd.image-verifier.v1.bindir"] = table{"bin_dir": filepath.Join(c.Dir, "image-verifier", "bin")}
	}
	cfg["disabled_plugins"] = disabled
	return cfg
}
