package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// EndpointOptions configure RunEndpoint: the runtime to measure, by its endpoint.
type EndpointOptions struct {
	Endpoint string // the runtime's image endpoint: unix://, tcp:// or npipe://
	// Name is the runtime's column; "" = RuntimeName and RuntimeVersion from its Version RPC
	// (on the image endpoint), else "runtime".
	Name string
	// PID is the process serving Endpoint on this machine, for peak RSS and idle waits:
	// 0 = the unix socket's peer (SO_PEERCRED), -1 = none.
	PID int
	// CertsDir is the runtime's certs.d (containerd's config_path): the fixture registry's
	// hosts.toml is written there for the run and removed after it. "" writes none: the runtime
	// must then reach http://127.0.0.1:PORT on its own.
	CertsDir string

	// CompareReference also measures the reference (ReferenceBin serve, in a temp dir, with
	// Snapshotter) side by side, as make bench does: a ratio column reference/runtime.
	CompareReference bool
	ReferenceBin     string
	Snapshotter      string
	TmpDir           string // parent of the reference's temp dir ("" = os.TempDir())

	// CleanupTimeout bounds the removal of what the run pulled (0 = 30 min), also after ctx
	// ended. Runtimes remove images one at a time with a garbage collection each: the list
	// cases' images take the longest (containerd 2.4.2: ~11 min for 10,000 on this machine).
	CleanupTimeout time.Duration
}

// RunEndpoint measures the runtime at eo.Endpoint (and the reference beside it with
// CompareReference) with the cases of o, pulling from a fixture registry it starts on loopback.
//
// It refuses a runtime whose store holds an image the bench could touch (a reference under
// RepoPrefix on any host, or the ID of a bench image), and before it returns — also when ctx
// ends (Ctrl-C) — it removes every image it pulled into the runtime and the hosts.toml it wrote,
// and checks that none is left. The Results are returned when the measurement finished, even
// if the cleanup then failed (err says so).
func RunEndpoint(ctx context.Context, o Options, eo EndpointOptions) (res *Results, err error) {
	start := time.Now()
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	o.lockLog()
	ep, err := criendpoint.Parse(eo.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if eo.Name == ReferenceName {
		return nil, fmt.Errorf("bench: the name %q is the reference's column: choose another", ReferenceName)
	}
	pid := eo.PID
	switch {
	case pid < 0:
		pid = 0
	case pid == 0:
		if pid, err = peerPID(ep); err != nil {
			o.logf("%s: no peak RSS, fixed idle waits: %v", eo.Endpoint, err)
			pid = 0
		}
	}
	t, err := DialTarget(eo.Name, ep.String(), pid)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if t.Name == "" {
		if t.Name = t.runtimeName(ctx); t.Name == "" || t.Name == ReferenceName {
			t.Name = "runtime"
		}
	}
	o.logf("%s: %s, pid %d", t.Name, t.Endpoint, t.PID)

	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		return nil, fmt.Errorf("bench: start the fixture registry: %w", err)
	}
	regOpen := true
	closeReg := func() {
		if regOpen {
			regOpen = false
			_ = reg.Close()
		}
	}
	defer closeReg()
	imgs, err := PushImages(reg, o)
	if err != nil {
		return nil, err
	}
	held, err := preflight(ctx, t, imgs)
	if err != nil {
		return nil, err
	}

	// From here on, the runtime may get images: remove them whatever happens. The registry goes
	// first, so that a pull still running in the runtime (the client went away) fails.
	cleanupTimeout := eo.CleanupTimeout
	if cleanupTimeout <= 0 {
		cleanupTimeout = 30 * time.Minute
	}
	defer func() {
		closeReg()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := sweep(cctx, t, imgs.Host(), o); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if eo.CertsDir != "" {
		undo, err := writeHosts(eo.CertsDir, reg)
		if err != nil {
			return nil, err
		}
		defer func() {
			if uerr := undo(); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}()
	}
	targets := []*Target{t}
	if eo.CompareReference {
		ref, err := startReferenceFor(ctx, reg, eo)
		if err != nil {
			return nil, err
		}
		defer func() {
			if rerr := ref.Close(); rerr != nil {
				o.logf("stop the reference: %v", rerr)
			}
		}()
		targets = append(targets, ref.Target)
	}

	res, err = Measure(ctx, o, imgs, targets, nil)
	if err != nil {
		return nil, err
	}
	if held > 0 && o.wantList() {
		res.Extra = append(res.Extra, fmt.Sprintf("%s held %d other images before the run (listed too)", t.Name, held))
	}
	res.Started, res.Elapsed = start, time.Since(start)
	return res, nil
}

// startReferenceFor starts the reference (`serve`) in its own temp dir, reading a certs.d for
// reg there.
func startReferenceFor(ctx context.Context, reg *registry.Registry, eo EndpointOptions) (*Daemon, error) {
	dir, err := os.MkdirTemp(eo.TmpDir, "criimage-bench.")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	certs := filepath.Join(dir, "certs.d")
	if _, err := runtimeconfig.WriteCertsDir(certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %w", err)
	}
	rd := filepath.Join(dir, "ref")
	if err := os.MkdirAll(rd, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %w", err)
	}
	d, err := StartReference(ctx, eo.ReferenceBin, rd, certs, eo.Snapshotter)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start the reference: %w", err)
	}
	d.dir = dir // Close removes the certs.d too
	return d, nil
}

// benchRef reports whether ref ("host/path:tag" or "host/path@digest") names a repository under
// RepoPrefix, on any host.
func benchRef(ref string) bool {
	_, path, ok := strings.Cut(ref, "/")
	return ok && strings.HasPrefix(path, RepoPrefix)
}

// preflight refuses a store that already holds an image the bench could remove: one with a
// reference under RepoPrefix (on any host: the leftovers of an interrupted run) or with the ID of
// one of imgs (RemoveImage removes an image with all its references). It returns how many images
// the store holds.
func preflight(ctx context.Context, t *Target, imgs *Images) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := t.Images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return 0, fmt.Errorf("bench: ListImages on %s: %w", t.Endpoint, err)
	}
	var clash []string
	for _, im := range r.GetImages() {
		refs := slices.Concat(im.GetRepoTags(), im.GetRepoDigests())
		if imgs.ids[im.GetId()] || slices.ContainsFunc(refs, benchRef) {
			clash = append(clash, fmt.Sprintf("%s (%s)", im.GetId(), strings.Join(refs, ", ")))
		}
	}
	if n := len(clash); n > 0 {
		if n > 5 {
			clash = append(clash[:5], fmt.Sprintf("and %d more", n-5))
		}
		return 0, fmt.Errorf("bench: %s already holds %d image(s) named like the bench's (repository %s…) or with a bench image's ID: %s. "+
			"The bench removes every image it pulls, so it does not run beside these; if they are leftovers of an interrupted run, remove them (crictl rmi ID) and run it again",
			t.Endpoint, n, RepoPrefix, strings.Join(clash, "; "))
	}
	return len(r.GetImages()), nil
}

// benchImages lists the images in t's store with a reference on host under RepoPrefix: what this
// run pulled (host is its own registry's, with a port of its own).
func benchImages(ctx context.Context, t *Target, host string) ([]*runtime.Image, error) {
	r, err := t.Images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return nil, fmt.Errorf("ListImages: %w", err)
	}
	var out []*runtime.Image
	for _, im := range r.GetImages() {
		if slices.ContainsFunc(slices.Concat(im.GetRepoTags(), im.GetRepoDigests()), func(ref string) bool {
			return strings.HasPrefix(ref, host+"/"+RepoPrefix)
		}) {
			out = append(out, im)
		}
	}
	return out, nil
}

// sweep removes from t every image this run pulled (benchImages) and checks that none is left.
// A pull the runtime was still doing when the client went away (Ctrl-C) may land after a
// removal: it lists again, up to three rounds.
func sweep(ctx context.Context, t *Target, host string, o Options) error {
	var (
		errs []error
		left []*runtime.Image
	)
	for round := 0; ; round++ {
		now, err := benchImages(ctx, t, host)
		if err != nil {
			if len(left) > 0 {
				err = fmt.Errorf("%w; %d image(s) from %s/%s… may be left: %s", err, len(left), host, RepoPrefix, idList(left))
			}
			return fmt.Errorf("bench: cleanup of %s: %w (remove what is left with crictl rmi)", t.Name, err)
		}
		if left = now; len(left) == 0 {
			return nil
		}
		if round == 3 {
			err := fmt.Errorf("bench: cleanup of %s: %d image(s) from %s/%s… left (remove them with crictl rmi): %s",
				t.Name, len(left), host, RepoPrefix, idList(left))
			return errors.Join(append([]error{err}, errs...)...)
		}
		if round > 0 {
			time.Sleep(time.Second)
		}
		o.logf("cleanup: removing %d image(s) from %s", len(left), t.Name)
		ids := make([]string, 0, len(left))
		for _, im := range left {
			ids = append(ids, im.GetId())
		}
		errs = nil
		var errsMu sync.Mutex
		_ = each(ctx, ids, o.FillPar, func(ctx context.Context, id string) error {
			if _, err := t.Images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: id}}); err != nil {
				errsMu.Lock()
				errs = append(errs, fmt.Errorf("remove %s: %w", id, err))
				errsMu.Unlock()
			}
			return nil
		}, func(n int) { o.logf("cleanup %s: %d/%d removed", t.Name, n, len(ids)) })
	}
}

// idList is the IDs of imgs, the first five.
func idList(imgs []*runtime.Image) string {
	var ids []string
	for i, im := range imgs {
		if i == 5 {
			ids = append(ids, fmt.Sprintf("and %d more", len(imgs)-5))
			break
		}
		ids = append(ids, im.GetId())
	}
	return strings.Join(ids, " ")
}

// writeHosts writes the hosts.toml of reg's plain host into the runtime's certs.d dir (plain
// HTTP; nothing else), and returns what undoes it: the host's directory removed, or a file that
// was there before put back.
func writeHosts(dir string, reg *registry.Registry) (undo func() error, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bench: certs dir: %w", err)
	}
	hostDir := filepath.Join(abs, reg.PlainHost())
	file := filepath.Join(hostDir, "hosts.toml")
	old, rerr := os.ReadFile(file)
	_, serr := os.Lstat(hostDir)
	if _, err := runtimeconfig.WriteCertsDir(abs, runtimeconfig.Endpoints{Plain: reg.PlainHost()}, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		return nil, fmt.Errorf("bench: write the registry's hosts.toml into %s: %w", dir, err)
	}
	return func() error {
		switch {
		case serr != nil: // the bench made the directory
			err = os.RemoveAll(hostDir)
		case rerr == nil:
			err = os.WriteFile(file, old, 0o644)
		default:
			err = os.Remove(file)
		}
		if err != nil {
			return fmt.Errorf("bench: remove the registry's hosts.toml from %s: %w", dir, err)
		}
		return nil
	}, nil
}
