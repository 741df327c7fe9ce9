package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/metadata/boltutil"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/criimage/criimage/impl/backend"
)

// usage is what ImageFsInfo reports: bytes and inodes.
type usage struct{ bytes, inodes int64 }

func (u *usage) add(v usage) { u.bytes += v.bytes; u.inodes += v.inodes }

// snapRef names one snapshot of one snapshotter.
type snapRef struct{ snapshotter, key string }

// usageMeter computes ImageFsInfo the way containerd's CRI does — from the stores' own
// accounting, not by walking the root — so that a call is cheap and never fails because files
// come and go under a running pull or removal:
//
//   - content: the size of every blob the metadata store records (one inode each), without
//     touching the blob files;
//   - snapshots: every snapshot's Usage — for a committed snapshot the figure its snapshotter
//     recorded at commit (a metadata read, memoized: committed snapshots do not change), for an
//     active one (an unpack in progress) a walk of its directory, where a snapshot removed
//     meanwhile counts as zero;
//   - partial downloads: the size of each ingest's data file (gone meanwhile: zero).
//
// The metadata databases are not counted: api.proto's used_bytes is "the bytes used for images
// on the filesystem", and a bbolt file only grows, so counting it would keep the figure above its
// baseline after every image is gone (containerd's CRI does not count its databases either).
//
// The content and committed-snapshot part only changes with a metadata commit (the metadata
// wrapper records every blob and snapshot change in meta.db), so it is kept per committed
// transaction ID and recomputed after one; the active snapshots and ingests are measured on
// every call (there are only as many as pulls in flight). With nothing committed since the last
// call, a call costs a few stats, whatever the number of images.
type usageMeter struct {
	b *backend.Backend

	mu        sync.Mutex
	tx        int                         // committed transaction of base and active (0: none yet)
	base      usage                       // content + committed snapshots as of tx
	active    []snapRef                   // active snapshots as of tx
	committed map[snapRef]snapshots.Usage // memo: a committed snapshot's usage never changes
}

func newUsageMeter(b *backend.Backend) *usageMeter {
	return &usageMeter{b: b, committed: map[snapRef]snapshots.Usage{}}
}

// measure returns the current usage.
func (m *usageMeter) measure(ctx context.Context) (usage, error) {
	base, active, err := m.metadataPart(ctx)
	if err != nil {
		return usage{}, err
	}
	total := base
	nctx := m.b.Context(ctx)
	for _, r := range active {
		u, err := m.b.Snapshotters[r.snapshotter].Usage(nctx, r.key)
		switch {
		case err == nil:
			total.add(usage{u.Size, u.Inodes})
		case errdefs.IsNotFound(err), errors.Is(err, fs.ErrNotExist):
			// Committed or removed since: a later call counts it where it went.
		default:
			return usage{}, fmt.Errorf("usage of snapshot %s/%s: %w", r.snapshotter, r.key, err)
		}
	}
	total.add(ingestUsage(m.b.Root))
	return total, ctx.Err()
}

// metadataPart returns the content and committed-snapshot usage and the active snapshots, as of
// the metadata's last committed transaction: kept from an earlier call if nothing committed since.
func (m *usageMeter) metadataPart(ctx context.Context) (usage, []snapRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var base usage
	var active []snapRef
	err := m.b.DB.View(func(tx *bolt.Tx) error {
		if tx.ID() == m.tx && m.tx != 0 {
			base, active = m.base, m.active
			return nil
		}
		tctx := boltutil.WithTransaction(m.b.Context(ctx), tx)
		if err := m.b.Content.Walk(tctx, func(info content.Info) error {
			base.add(usage{info.Size, 1})
			return nil
		}); err != nil {
			return fmt.Errorf("walk content: %w", err)
		}
		seen := map[snapRef]bool{}
		names := make([]string, 0, len(m.b.Snapshotters))
		for n := range m.b.Snapshotters {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			sn := m.b.Snapshotters[n]
			err := sn.Walk(tctx, func(wctx context.Context, info snapshots.Info) error {
				r := snapRef{n, info.Name}
				if info.Kind != snapshots.KindCommitted {
					active = append(active, r)
					return nil
				}
				seen[r] = true
				u, ok := m.committed[r]
				if !ok {
					var err error
					if u, err = sn.Usage(wctx, info.Name); err != nil {
						if errdefs.IsNotFound(err) {
							return nil
						}
						return fmt.Errorf("usage of snapshot %s/%s: %w", n, info.Name, err)
					}
					m.committed[r] = u
				}
				base.add(usage{u.Size, u.Inodes})
				return nil
			})
			if err != nil {
				return fmt.Errorf("walk %s snapshots: %w", n, err)
			}
		}
		for r := range m.committed {
			if !seen[r] {
				delete(m.committed, r)
			}
		}
		m.tx, m.base, m.active = tx.ID(), base, active
		return nil
	})
	return base, active, err
}

// ingestUsage sums the partial downloads' data files; one that completes or is removed while
// it is being looked at counts as nothing.
func ingestUsage(root string) usage {
	dir := filepath.Join(backend.ContentRoot(root), "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return usage{}
	}
	var u usage
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join(dir, e.Name(), "data")); err == nil {
			u.add(usage{st.Size(), 1})
		}
	}
	return u
}
