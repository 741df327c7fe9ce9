package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"

	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/impl/service"
	"github.com/criimage/criimage/internal/criendpoint"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// handlerFlag is a repeatable NAME=SNAPSHOTTER flag.
type handlerFlag map[string]string

func (h handlerFlag) String() string {
	var parts []string
	for k, v := range h {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (h handlerFlag) Set(v string) error {
	name, sn, ok := strings.Cut(v, "=")
	if !ok || name == "" || sn == "" {
		return fmt.Errorf("want NAME=SNAPSHOTTER, got %q", v)
	}
	if _, dup := h[name]; dup {
		return fmt.Errorf("runtime handler %q given twice", name)
	}
	h[name] = sn
	return nil
}

// runServe implements "criimage serve": the reference ImageService until ctx ends (SIGTERM,
// SIGINT), then a clean shutdown. It prints "serving <endpoint>" on stdout once clients can
// connect; logs (log/slog) go to stderr.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("criimage serve", stderr)
	listen := fs.String("listen", "unix:///run/criimage/criimage.sock", "unix:///absolute/path or tcp://127.0.0.1:PORT (loopback only)")
	root := fs.String("root", "/var/lib/criimage", "directory of the image store (metadata, content, snapshots)")
	hostsDir := fs.String("hosts-dir", "", "certs.d roots with hosts.toml, separated by ':' and tried in order")
	snapshotter := fs.String("snapshotter", "native", "default snapshotter: native or overlayfs")
	var pinned listFlag
	fs.Var(&pinned, "pinned", "image reference (or ID) reported pinned (repeatable)")
	handlers := handlerFlag{}
	fs.Var(handlers, "runtime-handler", "NAME=SNAPSHOTTER: unpack images pulled for runtime handler NAME there (repeatable)")
	progress := fs.Duration("pull-progress-timeout", 5*time.Minute, "cancel a pull that receives no bytes for this long (0 = never)")
	batch := fs.Int("stream-batch-size", service.DefaultStreamBatchSize, "images per StreamImages message")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: -log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	switch *snapshotter {
	case "native", "overlayfs":
	default:
		return fmt.Errorf("%w: -snapshotter %q: want native or overlayfs", errUsage, *snapshotter)
	}
	if *root == "" {
		return fmt.Errorf("%w: -root is empty", errUsage)
	}
	if *progress < 0 {
		return fmt.Errorf("%w: -pull-progress-timeout %s: must not be negative", errUsage, *progress)
	}
	if *batch < 1 {
		return fmt.Errorf("%w: -stream-batch-size %d: want at least 1", errUsage, *batch)
	}
	if _, err := criendpoint.Parse(*listen); err != nil {
		return fmt.Errorf("%w: -listen: %v", errUsage, err)
	}
	var dirs []string
	for _, d := range filepath.SplitList(*hostsDir) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	// containerd's packages log through logrus (e.g. the content store's fsverity probe). This
	// process owns its logging: keep those lines out of stderr unless debugging, and never let
	// them carry URLs with queries at other levels.
	if lvl > slog.LevelDebug {
		log.L.Logger.SetOutput(io.Discard)
	} else {
		log.L.Logger.SetLevel(logrus.DebugLevel)
	}

	srv, err := impl.Start(ctx, *listen, impl.Config{
		Root: *root, HostsDirs: dirs, Snapshotter: *snapshotter, Pinned: pinned, RuntimeHandlers: handlers,
		PullProgressTimeout: *progress, StreamBatchSize: *batch, Logger: logger, Version: version(),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving %s\n", srv.Endpoint())
	<-ctx.Done()
	logger.Info("shutting down", "cause", context.Cause(ctx).Error())
	return srv.Close()
}

// version is the module version the binary was built from ("devel" in a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
