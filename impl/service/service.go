// Package service implements the CRI ImageService (runtime.v1) on an embedded containerd backend:
// it normalizes references, calls the puller, owns the image records (tag, digest and ID records
// in the metadata store) and the in-memory index, and answers List/Stream/Status/Remove/FsInfo.
// It also answers RuntimeService.Version and Status so that crictl, critest and kubelet connect.
//
// Decisions (where CRI leaves a choice or containerd v2.4.2 deviates; docs/results.md has the
// evidence of each deviation):
//   - References: reference.ParseDockerRef; stored fully qualified. "name:tag@digest" pulls and
//     records by digest only (no repo tag), as containerd. Invalid → InvalidArgument naming it,
//     before anything is fetched or written.
//   - Records: repo tag, repo digest (name@top-level digest) and the ID ("sha256:<config>"), all
//     pointing at the top-level descriptor, written in ONE bbolt transaction and published to the
//     index in one step under the record lock that RemoveImage also takes. The pull's lease ends
//     only afterwards. image_ref = Image.id = the ID. When every record already holds what
//     the pull would write (same target, same manifest label, same image — the other callers
//     of a shared pull, a re-pull of an unchanged image) nothing is written: N callers of one
//     pull cost one synced commit, not N. The service knows what each record holds because
//     nothing else writes them while it runs (bbolt's flock).
//   - Lookup (Status, Remove, List filter): imagestore.Store.Resolve — "" and ambiguous ID
//     prefixes are InvalidArgument; ID prefixes need imagestore.MinIDPrefix (4) hex characters.
//   - Runtime handlers: unknown → InvalidArgument; "" → default snapshotter; a handler only picks
//     the snapshotter (images are not per handler; Status/List/Remove ignore it).
//   - Usable = manifest, config and layers present (metadata and blob file) and the top snapshot
//     present in a snapshotter the config's GC label names; checked before every report, so an
//     image damaged out of band disappears from List/Status (kubelet pulls it again).
//     List/Stream check all images in one metadata read transaction, each distinct blob and top
//     snapshot once (imagestore.Checker). Trade-off — cached only what cannot change unseen:
//     blob files can be deleted behind our back (rm), so they are checked on every call (one
//     stat each; above 32 images one listing of the blob directory instead). The metadata
//     answers (blob records and labels, snapshot Stats) can only change through a metadata
//     commit of this process (bbolt's flock on meta.db and the snapshotters' DBs), so they are
//     reused while the DB's last committed transaction ID is unchanged and recomputed after any
//     commit (imagestore.Lookups). Not caught, now as before: a snapshot directory deleted on
//     disk while the snapshotter's DB still lists it. Each image's repo tags and digests are
//     parsed once, when the index takes the image. ImageStatus checks its one image afresh.
//   - Size: containerd's (top-level manifest/index + platform manifest + config + layers).
//   - Verbose ImageStatus: info = {"info": JSON {"chainID": "...", "imageSpec": <OCI config>}}.
//   - StreamImages: batches of StreamBatchSize; an empty store sends zero messages, then EOF.
//   - RemoveImage: removes every name of the image, even pinned ones; unknown → OK; then a
//     synchronous GC, so ImageFsInfo drops at once.
//   - ImageFsInfo: one filesystem, the backend root; used bytes/inodes = content blobs and
//     partial downloads and all snapshotters' snapshots (not the metadata DBs), from the stores' own
//     accounting (as containerd's CRI: snapshotter Usage, content sizes), the committed part kept
//     until the next metadata commit — never a walk of the root, never an error because files
//     come and go (fsinfo.go).
//   - Start-up: leases of a previous process are deleted (bbolt's flock guarantees it is gone),
//     records whose manifest or config cannot be read are dropped, then GC, then any partial
//     download left in the content store's ingest directory is deleted.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/metadata/boltutil"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/imagestore"
	"github.com/criimage/criimage/impl/pull"
)

// Puller is what the service needs of a puller (impl/pull.Puller has it): fetch and unpack one
// image, held under a lease until the Result's Done. Its errors are domain errors (errdefs
// classes); the service turns them into gRPC statuses (impl/grpcerr).
type Puller interface {
	Pull(ctx context.Context, req pull.Request) (pull.Result, error)
}

// DefaultStreamBatchSize is the number of images per StreamImages message, as containerd's.
const DefaultStreamBatchSize = 5000

// Record labels.
const (
	labelManaged      = "io.cri-containerd.image" // containerd CRI's label, so ctr/nerdctl see CRI images the same way
	labelManagedValue = "managed"
)

// Config of a Service.
type Config struct {
	Backend *backend.Backend
	Puller  Puller
	// DefaultSnapshotter is used for PullImage without a runtime handler ("" = "native").
	DefaultSnapshotter string
	// RuntimeHandlers maps ImageSpec.runtime_handler → snapshotter; unknown handlers are refused.
	RuntimeHandlers map[string]string
	// Pinned references (any form Normalize accepts, or an image ID) report pinned=true.
	Pinned          []string
	StreamBatchSize int // 0 = DefaultStreamBatchSize
	// Platform picks the manifest of multi-platform images whose records lack the manifest label
	// (nil = host platform).
	Platform platforms.MatchComparer
	Version  string // reported by RuntimeService.Version as runtime_version
	Logger   *slog.Logger
}

// Service is the ImageService (and the minimal RuntimeService). Create it with New.
type Service struct {
	runtime.UnimplementedImageServiceServer

	b        *backend.Backend
	puller   Puller
	defSn    string
	handlers map[string]string
	pinned   map[string]bool
	batch    int
	platform platforms.MatchComparer
	version  string
	log      *slog.Logger

	index *imagestore.Store
	// recMu serializes every change of image records with the index update that follows, so
	// that pull and remove never interleave (no orphan record, no half image).
	recMu sync.Mutex
	// records is what each image record in the metadata store holds, as far as commit would
	// write it (under recMu): a pull whose records all hold that already skips the write. A
	// name is absent when its record was not written by commit's rules (labels differ).
	// Nothing else writes records while we run (bbolt's flock keeps other processes out).
	records map[string]record

	// lookupState holds List's metadata answers (blob records, snapshot Stats) for the metadata
	// DB as of committed transaction lookupTx; any commit makes them stale (see usableOf).
	lookupMu    sync.Mutex
	lookupTx    int
	lookupState *imagestore.Lookups

	usage *usageMeter // ImageFsInfo
}

// record is what commit writes into an image record besides its name.
type record struct {
	target    digest.Digest
	mediaType string
	size      int64
	manifest  string // imagestore.LabelManifest
}

func recordOf(target ocispec.Descriptor, manifest string) record {
	return record{target: target.Digest, mediaType: target.MediaType, size: target.Size, manifest: manifest}
}

// New checks cfg, recovers the backend from a previous process (deletes its leases — nothing
// else can hold the root, bbolt's flock says so — and the records of images that can no longer
// be read, then collects garbage) and builds the index from the records.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Backend == nil || cfg.Puller == nil {
		return nil, errors.New("service: Backend and Puller are required")
	}
	s := &Service{
		b:        cfg.Backend,
		puller:   cfg.Puller,
		defSn:    cfg.DefaultSnapshotter,
		handlers: map[string]string{},
		pinned:   map[string]bool{},
		batch:    cfg.StreamBatchSize,
		platform: cfg.Platform,
		version:  cfg.Version,
		log:      cfg.Logger,
		index:    imagestore.New(),
		records:  map[string]record{},
		usage:    newUsageMeter(cfg.Backend),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.defSn == "" {
		s.defSn = backend.Native
	}
	if s.b.Snapshotters[s.defSn] == nil {
		return nil, fmt.Errorf("service: default snapshotter %q is not open in the backend", s.defSn)
	}
	for h, sn := range cfg.RuntimeHandlers {
		if h == "" {
			return nil, fmt.Errorf("service: empty runtime handler name (mapped to %q)", sn)
		}
		if s.b.Snapshotters[sn] == nil {
			return nil, fmt.Errorf("service: runtime handler %q: snapshotter %q is not open in the backend", h, sn)
		}
		s.handlers[h] = sn
	}
	if s.batch <= 0 {
		s.batch = DefaultStreamBatchSize
	}
	if s.version == "" {
		s.version = "devel"
	}
	if s.platform == nil {
		s.platform = platforms.Default()
	}
	for _, p := range cfg.Pinned {
		if d, err := imagestore.ParseID(p); err == nil {
			s.pinned[d] = true
			continue
		}
		named, err := imagestore.Normalize(p)
		if err != nil {
			return nil, fmt.Errorf("service: pinned image: %w", err)
		}
		s.pinned[named.String()] = true
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// recover runs once, before serving.
func (s *Service) recover(ctx context.Context) error {
	nctx := s.b.Context(ctx)
	ls, err := s.b.Leases.List(nctx)
	if err != nil {
		return fmt.Errorf("service: list leases: %w", err)
	}
	for _, l := range ls {
		if err := s.b.Leases.Delete(nctx, l); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("service: delete lease %s of a previous process: %w", l.ID, err)
		}
	}
	if len(ls) > 0 {
		s.log.Info("reclaimed leases of interrupted pulls", "leases", len(ls))
	}
	recs, err := s.b.Images.List(nctx)
	if err != nil {
		return fmt.Errorf("service: list image records: %w", err)
	}
	type key struct{ target, manifest string }
	read := map[key]imagestore.Image{}
	byID := map[string]imagestore.Image{}
	var broken []string
	for _, r := range recs {
		var manifest ocispec.Descriptor
		if d := r.Labels[imagestore.LabelManifest]; d != "" {
			manifest.Digest = digestOf(d)
		}
		k := key{r.Target.Digest.String(), manifest.Digest.String()}
		img, ok := read[k]
		if !ok {
			img, err = imagestore.Read(nctx, s.b.Content, r.Target, manifest, s.platform)
			if err != nil {
				s.log.Warn("dropping unreadable image record", "name", r.Name, "error", err.Error())
				broken = append(broken, r.Name)
				continue
			}
			read[k] = img
		}
		if have, ok := byID[img.ID]; ok {
			img = have
		}
		img.References = append(slices.Clone(img.References), r.Name)
		byID[img.ID] = img
		if len(r.Labels) == 2 && r.Labels[labelManaged] == labelManagedValue && r.Labels[imagestore.LabelManifest] != "" {
			s.records[r.Name] = recordOf(r.Target, r.Labels[imagestore.LabelManifest])
		}
	}
	if len(broken) > 0 {
		err := s.b.DB.Update(func(tx *bolt.Tx) error {
			tctx := boltutil.WithTransaction(nctx, tx)
			for _, n := range broken {
				if err := s.b.Images.Delete(tctx, n); err != nil && !errdefs.IsNotFound(err) {
					return fmt.Errorf("delete record %q: %w", n, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("service: drop unreadable records: %w", err)
		}
	}
	for _, img := range byID {
		s.index.Put(img)
	}
	if err := s.b.GC(ctx); err != nil {
		return fmt.Errorf("service: garbage collection at start: %w", err)
	}
	n, err := s.b.DiscardIngests()
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if n > 0 {
		s.log.Info("discarded partial downloads of a previous process", "ingests", n)
	}
	s.log.Info("image index loaded", "images", len(byID), "records", len(recs)-len(broken))
	return nil
}

// writeRecords creates or updates the named records (all → target, with labels) and deletes the
// drop records, in one metadata transaction: after a crash either all or none exist.
func (s *Service) writeRecords(ctx context.Context, names []string, target ocispec.Descriptor, labels map[string]string, drop []string) error {
	nctx := s.b.Context(ctx)
	return s.b.DB.Update(func(tx *bolt.Tx) error {
		tctx := boltutil.WithTransaction(nctx, tx)
		for _, n := range names {
			rec := images.Image{Name: n, Target: target, Labels: labels}
			if _, err := s.b.Images.Create(tctx, rec); err != nil {
				if !errdefs.IsAlreadyExists(err) {
					return fmt.Errorf("create image record %q: %w", n, err)
				}
				if _, err := s.b.Images.Update(tctx, rec); err != nil {
					return fmt.Errorf("update image record %q: %w", n, err)
				}
			}
		}
		for _, n := range drop {
			if err := s.b.Images.Delete(tctx, n); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("delete image record %q: %w", n, err)
			}
		}
		return nil
	})
}

// Index is the service's image index (read-only use: tests and diagnostics).
func (s *Service) Index() *imagestore.Store { return s.index }
