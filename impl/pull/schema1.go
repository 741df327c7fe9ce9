package pull

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const mediaTypeSchema1Unsigned = "application/vnd.docker.distribution.manifest.v1+json"

func isSchema1(mt string) bool {
	return mt == images.MediaTypeDockerSchema1Manifest || mt == mediaTypeSchema1Unsigned
}

func (p *Puller) convertSchema1(ctx context.Context, fetcher remotes.Fetcher, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, fmt.Errorf("schema 1: %w", errdefs.ErrNotImplemented)
}
