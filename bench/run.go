package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// DriverOptions configure the driver (make bench): Measure's options, and the daemons it
// starts and measures side by side.
type DriverOptions struct {
	Options

	RepoRoot    string   // where hack/containerd-daemon.sh lives
	Bin         string   // the criimage binary (serve)
	Versions    []string // containerd versions, first = the ratio's denominator ("2.4.2")
	Snapshotter string   // every runtime's snapshotter ("overlayfs", containerd's CRI default)
	TmpDir      string   // parent of the temp dirs ("" = os.TempDir())
	ListTmpDir  string   // parent of the list cases' daemon dirs (a tmpfs, e.g. /dev/shm; "" = TmpDir)
	NoReference bool     // leave the reference out (containerd alone)
}

// Run starts the registry and every runtime (the reference unless NoReference, and each
// containerd version), measures them side by side, and stops them. The list cases run on fresh
// daemons in ListTmpDir: the fill is ListN pulls of tiny images, bound by metadata fsyncs, and
// would take minutes on disk; the list calls never touch the disk.
func Run(ctx context.Context, o DriverOptions) (*Results, error) {
	start := time.Now()
	o.lockLog()
	tmp, err := os.MkdirTemp(o.TmpDir, "criimage-bench.")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	dirs := []string{tmp}
	// Registered first, so it runs last: after every daemon below its dirs has stopped.
	defer func() {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}()

	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		return nil, fmt.Errorf("bench: start the fixture registry: %w", err)
	}
	defer reg.Close()
	certs := filepath.Join(tmp, "certs.d")
	if _, err := runtimeconfig.WriteCertsDir(certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	imgs, err := PushImages(reg, o.Options)
	if err != nil {
		return nil, err
	}

	var daemons []*Daemon
	stopAll := func() {
		for _, d := range daemons {
			if err := d.Close(); err != nil {
				o.logf("stop %s: %v", d.Name, err)
			}
		}
		daemons = nil
	}
	defer stopAll()
	if daemons, err = o.startDaemons(ctx, tmp, certs); err != nil {
		return nil, err
	}
	relist := func(ctx context.Context) ([]*Target, error) {
		stopAll()
		ldir := o.ListTmpDir
		if ldir == "" {
			ldir = o.TmpDir
		}
		ltmp, err := os.MkdirTemp(ldir, "criimage-bench.")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		dirs = append(dirs, ltmp)
		if daemons, err = o.startDaemons(ctx, ltmp, certs); err != nil {
			return nil, err
		}
		return targetsOf(daemons), nil
	}
	res, err := Measure(ctx, o.Options, imgs, targetsOf(daemons), relist)
	if err != nil {
		return nil, err
	}
	if len(o.Versions) > 0 && !o.NoReference {
		res.Baseline = "containerd " + o.Versions[0]
	}
	res.Started, res.Elapsed = start, time.Since(start)
	return res, nil
}

func targetsOf(ds []*Daemon) []*Target {
	ts := make([]*Target, 0, len(ds))
	for _, d := range ds {
		ts = append(ts, d.Target)
	}
	return ts
}

// startDaemons starts the reference (unless NoReference) and every containerd version under base.
func (o *DriverOptions) startDaemons(ctx context.Context, base, certs string) (ds []*Daemon, err error) {
	defer func() {
		if err != nil {
			for _, d := range ds {
				_ = d.Close()
			}
			ds = nil
		}
	}()
	if !o.NoReference {
		rd := filepath.Join(base, "ref")
		if err := os.MkdirAll(rd, 0o755); err != nil {
			return ds, err
		}
		ref, err := StartReference(ctx, o.Bin, rd, certs, o.Snapshotter)
		if err != nil {
			return ds, err
		}
		ds = append(ds, ref)
	}
	for i, v := range o.Versions {
		dir := filepath.Join(base, fmt.Sprintf("cd%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return ds, err
		}
		d, err := StartContainerd(ctx, o.RepoRoot, v, dir, certs, o.Snapshotter)
		if err != nil {
			return ds, err
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		o.logf("%s: pid %d, %s", d.Name, d.PID, d.Endpoint)
	}
	return ds, nil
}
