package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/diff/apply"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/containerd/containerd/v2/core/unpack"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/sys/userns"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/criimage/criimage/impl/auth"
	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/hosts"
)

// maxConcurrentDownloads bounds the blob requests of one pull.
const maxConcurrentDownloads = 8

// maxConcurrentUnpacks bounds the layers of one pull extracted at once when the snapshotter can
// rebase (overlayfs): each layer is applied into its own parentless snapshot as soon as its blob
// is in, and the chain is committed (rebased) in order afterwards (containerd's parallel unpack).
const maxConcurrentUnpacks = 8

// run is one flight: resolve, fetch and unpack under the flight's lease.
func (p *Puller) run(ctx context.Context, f *flight, named reference.Named, scope *auth.Scope, sn string) (outcome, error) {
	ref := named.String()
	ctx = p.logCtx(p.b.Context(ctx))
	l, err := p.b.Leases.Create(ctx, leases.WithRandomID(), leases.WithExpiration(leaseExpiry),
		leases.WithLabel("criimage.io/pull-flight", ref))
	if err != nil {
		return outcome{}, wrapf(err, "create lease")
	}
	f.leaseID = l.ID
	ctx = leases.WithLease(ctx, l.ID)

	prog := &progress{}
	if p.opts.ProgressTimeout > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go prog.watch(ctx, p.opts.ProgressTimeout, cancel)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: p.registryHosts(ctx, scope, prog)})
	// At most maxConcurrentDownloads blob requests per pull (CRI's default max_concurrent_downloads;
	// per pull, not per process, so a held pull never starves another).
	if r, ok := resolver.(remotes.ResolverWithOptions); ok {
		r.SetOptions(transfer.WithDownloadLimiter(semaphore.NewWeighted(maxConcurrentDownloads)))
	}

	out, err := p.fetch(ctx, resolver, ref, sn)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		// The fetch saw "context canceled"; report why it was cancelled.
		err = fmt.Errorf("%w; interrupted: %v", cause, err)
	}
	return out, err
}

// registryHosts is containerd's ConfigureHosts over the certs.d roots, with every host's
// authorizer replaced by the scoped one (extended to the hosts configured for the registry:
// auth.Scope.ServedBy) and its client counted for the progress timeout.
// Results are memoized per host for the flight, so resolve and fetch share tokens.
func (p *Puller) registryHosts(ctx context.Context, scope *auth.Scope, prog *progress) docker.RegistryHosts {
	base := config.ConfigureHosts(ctx, config.HostOptions{
		HostDir:      hosts.Dir(p.opts.HostsDirs),
		UpdateClient: prog.updateClient,
	})
	var mu sync.Mutex
	memo := map[string][]docker.RegistryHost{}
	return func(host string) ([]docker.RegistryHost, error) {
		mu.Lock()
		defer mu.Unlock()
		if rh, ok := memo[host]; ok {
			return rh, nil
		}
		rh, err := base(host)
		if err != nil {
			return nil, configError{fmt.Errorf("registry configuration for %s: %w", host, err)}
		}
		for i := range rh {
			rh[i].Authorizer = scope.ServedBy(host, rh[i].Host).Authorizer(rh[i].Client, rh[i].Header)
		}
		memo[host] = rh
		return rh, nil
	}
}

// fetch resolves ref and brings in the platform's image, unpacked into sn.
func (p *Puller) fetch(ctx context.Context, resolver remotes.Resolver, ref, sn string) (outcome, error) {
	// Every fetch this pull starts has ended when fetch returns: nothing of a failed pull writes
	// or aborts content after it has reported the failure (and its flight collected garbage).
	ctx, cancel := context.WithCancelCause(ctx)
	fetches := &fetchTracker{}
	defer func() {
		cancel(errPullEnded)
		fetches.closeAndWait()
	}()

	name, desc, err := resolver.Resolve(ctx, ref)
	if err != nil {
		return outcome{}, wrapf(err, "resolve")
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return outcome{}, wrapf(err, "fetcher")
	}
	cs := p.b.Content
	target := desc
	if isSchema1(desc.MediaType) {
		if target, desc, err = p.convertSchema1(ctx, fetcher, desc); err != nil {
			return outcome{}, err
		}
	}

	var caps []string
	uopts := []unpack.UnpackerOpt{unpack.WithDuplicationSuppressor(p.locker)}
	if sn == backend.Overlayfs && !userns.RunningInUserNS() {
		// As containerd's overlayfs plugin: rebase needs `mknod c 0 0` (whiteouts), not in a userns.
		// (Without the capability no limiter: containerd would log "unpacking will be sequential"
		// on its global logger for every pull.)
		caps = append(caps, snapshots.RebaseCap)
		uopts = append(uopts, unpack.WithUnpackLimiter(semaphore.NewWeighted(maxConcurrentUnpacks)))
	}
	unpacker, err := unpack.NewUnpacker(ctx, cs, append(uopts,
		unpack.WithUnpackPlatform(unpack.Platform{
			Platform:                platforms.All, // the manifest was chosen by p.opts.Platform already
			SnapshotterKey:          sn,
			Snapshotter:             p.b.Snapshotters[sn],
			SnapshotterCapabilities: caps,
			Applier:                 apply.NewFileSystemApplier(cs),
		}))...,
	)
	if err != nil {
		return outcome{}, wrapf(err, "unpacker")
	}

	var (
		mu      sync.Mutex
		seen    []ocispec.Descriptor
		chosen  []ocispec.Descriptor // platform manifests
		configs []ocispec.Descriptor
	)
	record := images.HandlerFunc(func(_ context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, d)
		switch {
		case images.IsManifestType(d.MediaType):
			chosen = append(chosen, d)
		case images.IsConfigType(d.MediaType):
			configs = append(configs, d)
		}
		return nil, nil
	})
	children := images.ChildrenHandler(cs)
	children = images.SetChildrenMappedLabels(cs, children, nil)
	children = images.FilterPlatforms(children, p.opts.Platform)
	children = images.LimitManifests(children, p.opts.Platform, 1)
	limited := children
	children = func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		out, err := limited(ctx, d)
		if err != nil && images.IsIndexType(d.MediaType) && errdefs.IsNotFound(err) && len(out) == 0 {
			return nil, p.noPlatform(ctx, d)
		}
		return out, err
	}
	distSource, err := docker.AppendDistributionSourceLabel(cs, ref)
	if err != nil {
		return outcome{}, wrapf(err, "distribution source label")
	}
	handler := unpacker.Unpack(images.Handlers(
		images.HandlerFunc(validateDigest),
		fetches.track(p.fetchOrAbort(remotes.FetchHandler(cs, fetcher))),
		record,
		children,
		distSource,
	))
	dispatchErr := images.Dispatch(ctx, handler, nil, desc)
	_, waitErr := unpacker.Wait()
	if err := errors.Join(dispatchErr, waitErr); err != nil {
		return outcome{}, classifyUnpack(err)
	}

	if len(chosen) == 0 {
		return outcome{}, p.noPlatform(ctx, desc)
	}
	if len(chosen) != 1 || len(configs) != 1 {
		return outcome{}, fmt.Errorf("pulled %d manifests and %d configs, want one of each", len(chosen), len(configs))
	}
	out := outcome{target: target, manifest: chosen[0], config: configs[0]}
	// Holdings come from the manifest: layers whose snapshots already exist are not
	// fetched again (containerd's unpacker skips them), so "seen" may lack them.
	mb, err := content.ReadBlob(ctx, cs, out.manifest)
	if err != nil {
		return outcome{}, wrapf(err, "read manifest %s", out.manifest.Digest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return outcome{}, wrapf(err, "decode manifest %s", out.manifest.Digest)
	}
	out.content = append([]ocispec.Descriptor{target}, seen...)
	out.content = append(out.content, out.manifest, m.Config)
	out.content = append(out.content, m.Layers...)
	return out, nil
}

// validateDigest refuses descriptors whose digest is malformed before anything uses it in a URL
// path (CVE-2024-3727: "sha256:../../token" would otherwise be requested).
func validateDigest(_ context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the image names an invalid digest %q (%s): %v", d.Digest, d.MediaType, err))
	}
	if d.Size < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the image names %s with negative size %d", d.Digest, d.Size))
	}
	return nil, nil
}

// fetchOrAbort aborts the ingest of a failed fetch, so no retry (of any pull) resumes from bytes
// that failed verification: containerd's content.Copy would otherwise commit the same wrong data
// again. The unpacker's per-digest lock is held around the handler, so no other fetch of this
// blob is writing to the ingest meanwhile.
func (p *Puller) fetchOrAbort(h images.HandlerFunc) images.HandlerFunc {
	return func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h(ctx, d)
		if err != nil {
			ref := remotes.MakeRefKey(ctx, d)
			if aerr := p.b.Content.Abort(context.WithoutCancel(ctx), ref); aerr != nil && !errdefs.IsNotFound(aerr) {
				p.log.Warn("pull: abort ingest", "ref", ref, "error", aerr)
			}
		}
		return children, err
	}
}

// fetchTracker lets a pull wait for every fetch it started. containerd v2.4.2's unpacker
// (core/unpack: unpack's startFetch) returns from Wait on a layer error without joining the
// goroutine that fetches the later layers, so a cancelled fetch could still be writing, then
// aborting, its ingest after the pull failed — racing the flight's garbage collection and whoever
// checks that a failed pull left nothing behind.
type fetchTracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// track counts h's calls; after closeAndWait it refuses new ones.
func (t *fetchTracker) track(h images.HandlerFunc) images.HandlerFunc {
	return func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, fmt.Errorf("fetch %s: %w", d.Digest, context.Canceled)
		}
		t.wg.Add(1)
		t.mu.Unlock()
		defer t.wg.Done()
		return h(ctx, d)
	}
}

// closeAndWait refuses further fetches and waits for the running ones.
func (t *fetchTracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// classifyUnpack marks content-verification failures as data loss.
func classifyUnpack(err error) error {
	msg := err.Error()
	if errdefs.IsFailedPrecondition(err) || strings.Contains(msg, "wrong diff id") ||
		strings.Contains(msg, "failed to extract layer") || strings.Contains(msg, "unexpected commit digest") {
		return dataLossError{err}
	}
	return err
}

// noPlatform explains which platforms the index offers.
func (p *Puller) noPlatform(ctx context.Context, desc ocispec.Descriptor) error {
	want := platforms.FormatAll(platforms.DefaultSpec())
	if p.opts.Platform != nil {
		if s, ok := p.opts.Platform.(fmt.Stringer); ok {
			want = s.String()
		}
	}
	var avail []string
	if b, err := content.ReadBlob(ctx, p.b.Content, desc); err == nil {
		var idx ocispec.Index
		if json.Unmarshal(b, &idx) == nil {
			for _, m := range idx.Manifests {
				if m.Platform != nil {
					avail = append(avail, platforms.FormatAll(*m.Platform))
				}
			}
		}
	}
	return fmt.Errorf("%w %s in %s (the index offers: %s)", errNoPlatformMatch, want, desc.Digest, strings.Join(avail, ", "))
}
