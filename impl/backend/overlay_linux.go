package backend

import (
	"fmt"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
)

// openOverlayfs opens the overlayfs snapshotter in dir, after checking that dir's filesystem
// supports overlayfs.
func openOverlayfs(dir string) (snapshots.Snapshotter, error) {
	if err := overlayutils.Supported(dir); err != nil {
		return nil, fmt.Errorf("backend: snapshotter overlayfs is not supported in %q: %w", dir, err)
	}
	// Synchronous removal (no overlay.AsynchronousRemove): GC frees disk before it returns,
	// so ImageFsInfo drops right after RemoveImage.
	sn, err := overlay.NewSnapshotter(dir)
	if err != nil {
		return nil, fmt.Errorf("backend: open overlayfs snapshotter in %q: %w", dir, err)
	}
	return sn, nil
}
