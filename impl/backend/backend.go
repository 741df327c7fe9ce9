// Package backend embeds containerd's core storage: a bbolt metadata database (core/metadata) over
// the local content store (plugins/content/local) and snapshotters (plugins/snapshots/native, and
// overlayfs when asked for and supported). Everything handed out is the metadata-wrapped,
// namespaced, GC-aware view, so leases and image records decide what garbage collection keeps.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	bolt "go.etcd.io/bbolt"
)

// Namespace is the containerd namespace every record of criimage lives in.
const Namespace = "criimage"

// Snapshotter names understood by Open.
const (
	Native    = "native"
	Overlayfs = "overlayfs"
)

// boltOpenTimeout bounds the wait for the flock on meta.db: a second process on the same root
// gets a clear error instead of hanging forever (containerd's default is to wait indefinitely).
const boltOpenTimeout = time.Second

// Backend is containerd's core, embedded. All stores are the metadata-wrapped views; use
// Context to add the namespace before calling them.
type Backend struct {
	Root, Namespace string // Namespace is "criimage"
	DB              *metadata.DB
	Content         content.Store // metadata-wrapped (namespaced, GC-aware)
	Images          images.Store
	Leases          leases.Manager
	// Snapshotters are metadata-wrapped, by name: "native" always, "overlayfs" when asked for.
	Snapshotters map[string]snapshots.Snapshotter

	// Raw (unwrapped) stores, for accounting (ImageFsInfo) and leak checks in tests.
	rawContent      content.Store
	rawSnapshotters map[string]snapshots.Snapshotter
}

// Layout of Root.
const (
	metaFile     = "meta.db"
	contentDir   = "content"
	snapshotsDir = "snapshots"
)

// ContentRoot is the directory of the local content store under root.
func ContentRoot(root string) string { return filepath.Join(root, contentDir) }

// BlobDir is the directory in which the local content store under root keeps the blob files of
// one digest algorithm, each named by its encoded digest (containerd's layout:
// content/blobs/<algorithm>/<encoded>).
func BlobDir(root, algorithm string) string {
	return filepath.Join(ContentRoot(root), "blobs", algorithm)
}

// SnapshotterRoot is the directory of the named snapshotter under root.
func SnapshotterRoot(root, name string) string { return filepath.Join(root, snapshotsDir, name) }

// Open opens (creating if needed) the backend rooted at root. "native" is always opened; the
// names in snapshotters add more ("overlayfs" is checked with overlayutils.Supported first and
// refused with a clear error when the filesystem cannot do it). Unknown names are an error.
func Open(ctx context.Context, root string, snapshotters ...string) (*Backend, error) {
	if root == "" {
		return nil, errors.New("backend: empty root directory")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("backend: root %q: %w", root, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("backend: create root %q: %w", root, err)
	}
	cs, err := local.NewStore(ContentRoot(root))
	if err != nil {
		return nil, fmt.Errorf("backend: open content store in %q: %w", root, err)
	}
	names := []string{Native}
	for _, n := range snapshotters {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if n != Native && n != Overlayfs {
			return nil, fmt.Errorf("backend: unknown snapshotter %q (known: %s, %s)", n, Native, Overlayfs)
		}
	}

	// meta.db first: its flock (bounded wait) is what makes this process the root's only user, so
	// a second process gets a clear error here instead of blocking forever on a snapshotter's
	// own database, and orphan snapshot directories can be removed safely below.
	opts := *bolt.DefaultOptions
	// Same options as containerd's metadata plugin (plugins/metadata/plugin.go), plus a bounded
	// flock wait.
	opts.NoFreelistSync = true
	opts.NoStatistics = true
	opts.Timeout = boltOpenTimeout
	bdb, err := bolt.Open(filepath.Join(root, metaFile), 0o600, &opts)
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("backend: root %q is in use by another process: %w", root, err)
		}
		return nil, fmt.Errorf("backend: open metadata database in %q: %w", root, err)
	}
	raw := make(map[string]snapshots.Snapshotter, len(names))
	closeRaw := func() {
		for _, sn := range raw {
			_ = sn.Close()
		}
		_ = bdb.Close()
	}
	for _, n := range names {
		if _, err := RemoveOrphanSnapshotDirs(ctx, SnapshotterRoot(root, n)); err != nil {
			closeRaw()
			return nil, err
		}
		sn, err := openSnapshotter(root, n)
		if err != nil {
			closeRaw()
			return nil, err
		}
		raw[n] = sn
	}

	db := metadata.NewDB(bdb, cs, raw)
	if err := db.Init(ctx); err != nil {
		closeRaw()
		return nil, fmt.Errorf("backend: initialize metadata database in %q: %w", root, err)
	}
	wrapped := make(map[string]snapshots.Snapshotter, len(names))
	for _, n := range names {
		wrapped[n] = db.Snapshotter(n)
	}
	return &Backend{
		Root:            root,
		Namespace:       Namespace,
		DB:              db,
		Content:         db.ContentStore(),
		Images:          metadata.NewImageStore(db),
		Leases:          metadata.NewLeaseManager(db),
		Snapshotters:    wrapped,
		rawContent:      cs,
		rawSnapshotters: raw,
	}, nil
}

func openSnapshotter(root, name string) (snapshots.Snapshotter, error) {
	dir := SnapshotterRoot(root, name)
	switch name {
	case Native:
		sn, err := native.NewSnapshotter(dir)
		if err != nil {
			return nil, fmt.Errorf("backend: open native snapshotter in %q: %w", dir, err)
		}
		return sn, nil
	case Overlayfs:
		return openOverlayfs(dir)
	default:
		return nil, fmt.Errorf("backend: unknown snapshotter %q (known: %s, %s)", name, Native, Overlayfs)
	}
}

// RemoveOrphanSnapshotDirs deletes the directories under dir/snapshots (a native or overlayfs
// snapshotter's root) that its metadata.db does not know: "new-N" dirs of a Prepare and "rm-N"
// dirs of a Remove that a kill -9 interrupted, and numbered dirs renamed into place before the
// metadata commit that never came. They survive GC (native has no Cleanup; overlayfs cleans only
// when a collection removed one of its snapshots) and can hold a partial copy of a layer. Call it
// only while nothing else uses the snapshotter: Open runs it before opening the snapshotter, under
// meta.db's lock. It returns the names removed.
func RemoveOrphanSnapshotDirs(ctx context.Context, dir string) ([]string, error) {
	snapDir := filepath.Join(dir, "snapshots")
	entries, err := os.ReadDir(snapDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backend: list snapshot directories: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	ids := map[string]string{}
	if _, err := os.Stat(filepath.Join(dir, "metadata.db")); err == nil {
		ms, err := storage.NewMetaStore(filepath.Join(dir, "metadata.db"))
		if err != nil {
			return nil, fmt.Errorf("backend: open snapshot metadata in %q: %w", dir, err)
		}
		err = ms.WithTransaction(ctx, false, func(ctx context.Context) error {
			ids, err = storage.IDMap(ctx)
			return err
		})
		if cerr := ms.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("backend: read snapshot IDs in %q: %w", dir, err)
		}
	}
	var removed []string
	for _, e := range entries {
		if _, ok := ids[e.Name()]; ok {
			continue
		}
		if err := os.RemoveAll(filepath.Join(snapDir, e.Name())); err != nil {
			return removed, fmt.Errorf("backend: remove orphan snapshot directory %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// Context returns ctx with the criimage namespace, as every metadata store requires.
func (b *Backend) Context(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, b.Namespace)
}

// GC runs a synchronous garbage collection: everything not reachable from an image record or a
// lease is deleted from the metadata, the content store and the snapshotters before it returns.
func (b *Backend) GC(ctx context.Context) error {
	if _, err := b.DB.GarbageCollect(b.Context(ctx)); err != nil {
		return fmt.Errorf("backend: garbage collection: %w", err)
	}
	return nil
}

// DiscardIngests deletes every partial download (ingest) of the local content store. Call it only
// when no writer can be active — at start, before serving (Open holds bbolt's exclusive lock on
// the root, so no other process writes). Written by hand because the local store can only Abort
// an ingest by ref, and a process killed between creating an ingest directory and writing its
// ref file leaves a directory that ListStatuses fails on and nothing in containerd removes.
func (b *Backend) DiscardIngests() (int, error) {
	dir := filepath.Join(ContentRoot(b.Root), "ingest")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("backend: list partial downloads: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return 0, fmt.Errorf("backend: discard partial download %s: %w", e.Name(), err)
		}
	}
	return len(entries), nil
}

// RawContent is the unwrapped local content store: every blob on disk, in any namespace or none.
// Use it for accounting and leak checks, never to write.
func (b *Backend) RawContent() content.Store { return b.rawContent }

// RawSnapshotter is the unwrapped snapshotter of that name (nil if not opened).
func (b *Backend) RawSnapshotter(name string) snapshots.Snapshotter { return b.rawSnapshotters[name] }

// Close closes the snapshotters and the metadata database.
func (b *Backend) Close() error {
	var errs []error
	if err := b.DB.Close(); err != nil {
		errs = append(errs, fmt.Errorf("backend: close metadata database: %w", err))
	}
	for n, sn := range b.rawSnapshotters {
		if err := sn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("backend: close snapshotter %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
