// Package pull is everything between a normalized reference and unpacked content held by a
// lease: resolve (containerd's core/remotes/docker resolver, hosts from certs.d roots), fetch the
// host platform's manifest, config and layers, unpack into the requested snapshotter
// (core/unpack with core/diff/apply), merge identical concurrent pulls, enforce the progress
// timeout, and convert Docker schema 1 images.
//
// # Errors
//
// Every error's message starts with `pull "<ref>": `; URL query values and userinfo are
// redacted; no credential ever appears. Its class is an errdefs class (errors.Is / errdefs.IsX);
// impl/grpcerr turns it into the CRI code at the service's edge (shown here):
//
//	class                   CRI code          when
//	ErrInvalidArgument      InvalidArgument   malformed auth / server_address, unknown snapshotter, nil
//	                                          reference, invalid schema 1 manifest, a malformed digest
//	                                          in the image (CVE-2024-3727)
//	ErrNotFound             NotFound          tag or manifest missing (404), no manifest for the platform
//	ErrUnauthenticated      Unauthenticated   401 / authorization failed (wrong or missing credentials)
//	ErrPermissionDenied     PermissionDenied  403
//	ErrUnavailable          Unknown with "RegistryUnavailable: " leading the message: connection/TLS
//	                                          failures, 429, 5xx (cri-api pkg/errors.ErrRegistryUnavailable;
//	                                          kubelet's CRI client keeps only the message of Unknown errors)
//	ErrDataLoss             DataLoss          content failed verification: digest/size mismatch,
//	                                          corrupt layer, wrong diff ID
//	ErrFailedPrecondition   FailedPrecondition malformed hosts.toml in a configured hosts directory
//	context.Canceled        Canceled          the caller cancelled, or no progress for
//	                                          Options.ProgressTimeout (the message says "no progress …")
//	context.DeadlineExceeded DeadlineExceeded the caller's deadline passed
//	ErrNotImplemented       Unimplemented     a media type this implementation cannot pull
//	ErrResourceExhausted    ResourceExhausted the local store ran out of space or quota (ENOSPC,
//	                                          EDQUOT): "the image store in <root> is out of space: …"
//	ErrUnknown              Unknown           anything else (e.g. a snapshotter or store failure)
//
// # Credentials
//
// impl/auth scopes them: only the server_address host (or, if empty, the pulled registry) and
// its own token realm receive them; mirrors, foreign-layer URLs, cross-origin redirects and
// realms elsewhere are anonymous.
//
// # Concurrency
//
// Pulls with the same reference, snapshotter and credential fingerprint share one flight: one
// download under one lease, run on a context detached from the callers. Each caller waits on its
// own context; the flight is cancelled only when every caller has gone. When it succeeds, each
// remaining caller gets its own lease referencing the content (Result.Done deletes it), and the
// flight's lease is deleted once every caller has its own. A failed flight deletes its lease,
// aborts the ingests of failed fetches (a retry must not resume from bad bytes) and runs the
// backend's GC, so nothing of it remains.
//
// # Schema 1
//
// containerd v2 removed its converter; this package converts schema 1 (signed and unsigned) to a
// Docker schema 2 image (schema1.go). Result.Target is the schema 1 manifest as the registry
// serves it by its canonical digest (signatures stripped, the digest `docker pull` shows), so
// RepoDigests name a digest the registry answers to; Result.Manifest is the converted schema 2
// manifest and Result.Config its generated config.
//
// # Progress timeout
//
// With Options.ProgressTimeout > 0, a pull with registry requests in flight that receives no body
// byte for that long is cancelled (Canceled). Time spent unpacking or waiting on locks does not
// count. 0 disables it, and the pull completes (unlike containerd's transfer path, #14158).
// Known limit: foreign-layer URLs are fetched with containerd's http.DefaultClient, so bytes
// from them are not observed.
package pull

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/metadata/boltutil"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/auth"
	"github.com/criimage/criimage/impl/backend"
)

// leaseExpiry bounds how long content of a pull survives a crash (containerd uses 24h too).
const leaseExpiry = 24 * time.Hour

// Request is one pull.
type Request struct {
	Ref         reference.Named     // normalized by the caller (reference.ParseDockerRef rules)
	Auth        *runtime.AuthConfig // may be nil; scoping and precedence are impl/auth's
	Snapshotter string              // "" = Options.Snapshotter
}

// Result is what a successful pull brought in, held by the caller's own lease until Done.
type Result struct {
	Target   ocispec.Descriptor // what the reference resolved to (manifest or index): RepoDigest
	Manifest ocispec.Descriptor // the platform manifest chosen
	Config   ocispec.Descriptor // image config: ID = Config.Digest.String()
	// Done ends this caller's lease. Call it after the image records exist (they then hold the
	// content); without records, GC reclaims everything the pull brought in. Idempotent.
	Done func(context.Context) error
}

// Options configure a Puller.
type Options struct {
	HostsDirs       []string      // certs.d roots, tried in order
	ProgressTimeout time.Duration // 0 = none
	Snapshotter     string        // default snapshotter ("" = native)
	Platform        platforms.MatchComparer
	Logger          *slog.Logger
}

// Puller pulls into one backend. Safe for concurrent use.
type Puller struct {
	b      *backend.Backend
	opts   Options
	log    *slog.Logger
	quiet  *logrus.Entry // containerd's own logging, discarded (it logs URLs with queries)
	fpKey  []byte        // HMAC key of credential fingerprints (flight keys hold no secrets)
	locker *keyedMutex   // containerd's unpack duplication suppressor, across flights
	tx     *txBatcher    // callers' lease creations and deletions, coalesced

	mu      sync.Mutex
	flights map[string]*flight

	hooks hooks // tests only
}

// hooks let tests order events without sleeping. Nil funcs are skipped.
type hooks struct {
	joined   func(waiters int) // a caller joined a flight (under Puller.mu)
	finished func(err error)   // a flight finished and released what it must (lease on failure)
	noGC     bool              // skip the collection after a failed flight
}

// New returns a Puller over b.
func New(b *backend.Backend, opts Options) *Puller {
	if opts.Platform == nil {
		opts.Platform = platforms.Default()
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = backend.Native
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Puller{
		b: b, opts: opts, log: lg, quiet: logrus.NewEntry(quiet), fpKey: key,
		locker: newKeyedMutex(), flights: map[string]*flight{}, tx: &txBatcher{db: b.DB},
	}
}

// flight is one shared download.
type flight struct {
	key     string
	done    chan struct{} // closed when out/err are set
	out     outcome
	err     error
	cancel  context.CancelCauseFunc
	leaseID string // set by run before any content is written

	// guarded by Puller.mu
	waiters  int
	finished bool
	released bool // flight lease deleted
}

// outcome is what a flight produced.
type outcome struct {
	target, manifest, config ocispec.Descriptor
	content                  []ocispec.Descriptor // everything to hold
}

// Pull pulls req and returns the caller's Result. Errors name the reference and carry an errdefs
// class (the table in the package comment).
func (p *Puller) Pull(ctx context.Context, req Request) (Result, error) {
	if req.Ref == nil {
		return Result{}, errdefs.ErrInvalidArgument.WithMessage("pull: no image reference")
	}
	ref := req.Ref.String()
	sn := req.Snapshotter
	if sn == "" {
		sn = p.opts.Snapshotter
	}
	if _, ok := p.b.Snapshotters[sn]; !ok {
		return Result{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pull %q: snapshotter %q is not available", ref, sn))
	}
	scope, err := auth.NewScope(req.Auth, reference.Domain(req.Ref))
	if err != nil {
		return Result{}, failed(ref, err)
	}
	key := ref + "\x00" + sn + "\x00" + scope.Fingerprint(p.fpKey)

	f := p.join(ctx, key, ref, func(fctx context.Context, f *flight) (outcome, error) {
		return p.run(fctx, f, req.Ref, scope, sn)
	})
	select {
	case <-f.done:
	case <-ctx.Done():
		p.leave(ctx, f)
		return Result{}, failed(ref, context.Cause(ctx))
	}
	if f.err != nil {
		p.leave(ctx, f)
		return Result{}, failed(ref, f.err)
	}
	res, err := p.hold(ctx, f.out)
	p.leave(ctx, f)
	if err != nil {
		return Result{}, failed(ref, err)
	}
	return res, nil
}

// join returns the flight for key, starting it if there is none. The caller must leave it.
func (p *Puller) join(ctx context.Context, key, ref string, run func(context.Context, *flight) (outcome, error)) *flight {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.flights[key]; ok {
		f.waiters++
		if p.hooks.joined != nil {
			p.hooks.joined(f.waiters)
		}
		return f
	}
	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	f := &flight{key: key, done: make(chan struct{}), cancel: cancel, waiters: 1}
	p.flights[key] = f
	if p.hooks.joined != nil {
		p.hooks.joined(1)
	}
	go func() {
		start := time.Now()
		out, err := run(fctx, f)
		if outOfSpace(err) {
			err = fmt.Errorf("the image store in %s is out of space: %w", p.b.Root, err)
		}
		cancel(nil)
		if err != nil {
			p.log.Info("pull failed", "ref", ref, "duration", time.Since(start), "error", failed(ref, err).Error())
		} else {
			p.log.Debug("pulled", "ref", ref, "target", out.target.Digest, "config", out.config.Digest, "duration", time.Since(start))
		}
		p.mu.Lock()
		f.out, f.err, f.finished = out, err, true
		if p.flights[key] == f {
			delete(p.flights, key)
		}
		release := f.waiters == 0 && !f.released
		if err != nil || release {
			f.released = true
		}
		p.mu.Unlock()
		if err != nil || release {
			p.deleteLease(fctx, f.leaseID)
		}
		if (err != nil || release) && !p.hooks.noGC {
			// Nobody holds what this flight brought in (it failed, or every caller left before it
			// finished): reclaim it now, not at some later collection, so disk usage
			// (ImageFsInfo) returns to where it was.
			if gerr := p.b.GC(context.WithoutCancel(fctx)); gerr != nil {
				p.log.Warn("pull: garbage collection after a failed pull", "error", gerr)
			}
		}
		close(f.done)
		if p.hooks.finished != nil {
			p.hooks.finished(err)
		}
	}()
	return f
}

// leave drops the caller from f: the last caller cancels an unfinished flight, or releases the
// finished flight's lease (each caller has its own by then).
func (p *Puller) leave(ctx context.Context, f *flight) {
	p.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	var cancel, release bool
	if last && !f.finished {
		if p.flights[f.key] == f {
			delete(p.flights, f.key) // no newcomer may join a flight being cancelled
		}
		cancel = true
	}
	if last && f.finished && !f.released {
		f.released, release = true, true
	}
	p.mu.Unlock()
	if cancel {
		f.cancel(errAllCallersGone)
	}
	if release {
		p.deleteLease(context.WithoutCancel(ctx), f.leaseID)
	}
}

func (p *Puller) deleteLease(ctx context.Context, id string) {
	if id == "" {
		return
	}
	if err := p.b.Leases.Delete(p.b.Context(context.WithoutCancel(ctx)), leases.Lease{ID: id}); err != nil {
		p.log.Warn("pull: delete lease", "lease", id, "error", err)
	}
}

// hold creates the caller's own lease over everything the flight brought in, in one metadata
// transaction (one commit, not one per resource: with many callers of one flight the commits
// were most of their time).
func (p *Puller) hold(ctx context.Context, out outcome) (Result, error) {
	ctx = p.b.Context(context.WithoutCancel(ctx))
	var l leases.Lease
	err := p.tx.update(func(tx *bolt.Tx) error {
		tctx := boltutil.WithTransaction(ctx, tx)
		var err error
		l, err = p.b.Leases.Create(tctx, leases.WithRandomID(), leases.WithExpiration(leaseExpiry),
			leases.WithLabel("criimage.io/pull", out.target.Digest.String()))
		if err != nil {
			return wrapf(err, "create lease")
		}
		added := make(map[string]bool, len(out.content))
		for _, d := range out.content {
			id := d.Digest.String()
			if added[id] {
				continue
			}
			added[id] = true
			if err := p.b.Leases.AddResource(tctx, l, leases.Resource{ID: id, Type: "content"}); err != nil {
				return wrapf(err, "add %s to lease", d.Digest)
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	var once sync.Once
	var derr error
	return Result{
		Target: out.target, Manifest: out.manifest, Config: out.config,
		Done: func(ctx context.Context) error {
			once.Do(func() {
				dctx := p.b.Context(context.WithoutCancel(ctx))
				derr = p.tx.update(func(tx *bolt.Tx) error {
					return p.b.Leases.Delete(boltutil.WithTransaction(dctx, tx), l)
				})
				if derr != nil {
					derr = fmt.Errorf("pull: end lease %s: %w", l.ID, derr)
				}
			})
			return derr
		},
	}, nil
}

// logCtx silences containerd's logger for the pull (it logs URLs with signed queries at info).
func (p *Puller) logCtx(ctx context.Context) context.Context {
	return log.WithLogger(ctx, p.quiet)
}

// keyedMutex is unpack.KeyedLocker (containerd's internal/kmutex is not importable).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	ch   chan struct{} // 1-buffered: holds a token while locked
	refs int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{locks: map[string]*keyedLock{}} }

func (k *keyedMutex) Lock(ctx context.Context, key string) error {
	k.mu.Lock()
	l, ok := k.locks[key]
	if !ok {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		k.unref(key, l)
		return ctx.Err()
	}
}

func (k *keyedMutex) Unlock(key string) {
	k.mu.Lock()
	l := k.locks[key]
	k.mu.Unlock()
	if l == nil {
		return
	}
	<-l.ch
	k.unref(key, l)
}

func (k *keyedMutex) unref(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
}
