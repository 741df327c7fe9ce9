//go:build !linux

package backend

import (
	"fmt"
	"runtime"

	"github.com/containerd/containerd/v2/core/snapshots"
)

// openOverlayfs refuses: overlayfs is a Linux filesystem (the native snapshotter works
// everywhere).
func openOverlayfs(dir string) (snapshots.Snapshotter, error) {
	return nil, fmt.Errorf("backend: snapshotter overlayfs in %q: needs Linux, this is %s (use %s)", dir, runtime.GOOS, Native)
}
