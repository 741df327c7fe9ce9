package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/backend/backendtest"
	"github.com/criimage/criimage/internal/criendpoint"
)

// consistency checks what the storm left: List, Stream and Status agree, every image re-pulls
// to its ID; then everything is removed and the stopped root must be empty.
func (r *run) consistency(ctx context.Context) error {
	s, err := r.startServer(ctx)
	if err != nil {
		return err
	}
	problems := r.agree(ctx, s, true)
	r.fig.Consistency = append(r.fig.Consistency, problems...)
	list, err := s.is.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		_ = s.stop()
		return err
	}
	r.fig.Listed = len(list.Images)
	if err := r.removeAll(ctx, s); err != nil {
		r.fig.Consistency = append(r.fig.Consistency, err.Error())
	}
	if err := s.stop(); err != nil {
		return err
	}
	r.countLeftovers(ctx, "after the storm and removing every image", true)
	return nil
}

// agree checks that List and Stream name the same images, that ImageStatus finds each by ID and
// by each of its tags with the same ID, and (repull) that each tag pulls again to the same ID.
func (r *run) agree(ctx context.Context, s *server, repull bool) []string {
	var problems []string
	list, err := s.is.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return []string{"ListImages: " + err.Error()}
	}
	var listed, streamed []string
	for _, img := range list.Images {
		listed = append(listed, img.Id)
	}
	st, err := s.is.StreamImages(ctx, &runtime.StreamImagesRequest{})
	if err != nil {
		return []string{"StreamImages: " + err.Error()}
	}
	batches, err := criendpoint.Drain(st)
	if err != nil {
		return []string{"StreamImages: " + err.Error()}
	}
	for _, img := range criendpoint.Flatten(batches) {
		streamed = append(streamed, img.Id)
	}
	sort.Strings(listed)
	sort.Strings(streamed)
	if !slices.Equal(listed, streamed) {
		problems = append(problems, fmt.Sprintf("ListImages names %d images, StreamImages %d", len(listed), len(streamed)))
	}
	for _, img := range list.Images {
		for _, key := range append([]string{img.Id}, img.RepoTags...) {
			resp, err := s.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: key}})
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("ImageStatus(%s) of a listed image: %v", key, err))
			case resp.Image == nil:
				problems = append(problems, fmt.Sprintf("ImageStatus(%s) finds nothing, but ListImages lists %s", key, img.Id))
			case resp.Image.Id != img.Id:
				problems = append(problems, fmt.Sprintf("ImageStatus(%s).id = %s, ListImages says %s", key, resp.Image.Id, img.Id))
			}
		}
		if repull {
			for _, tag := range img.RepoTags {
				resp, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: tag}, Auth: r.authFor(tag)})
				if err != nil || resp.ImageRef != img.Id {
					problems = append(problems, fmt.Sprintf("re-pull of listed %s: %s %v", tag, resp.GetImageRef(), err))
				}
			}
		}
	}
	return problems
}

// authFor returns the credentials the storm used for ref.
func (r *run) authFor(ref string) *runtime.AuthConfig {
	for _, list := range [][]image{r.fx.healthy, r.fx.authed, r.fx.big, r.fx.baits} {
		for _, img := range list {
			if img.ref == ref || "docker.io/"+img.ref == ref {
				return img.auth
			}
		}
	}
	return nil
}

// removeAll removes every listed image and checks that none is left.
func (r *run) removeAll(ctx context.Context, s *server) error {
	list, err := s.is.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return err
	}
	for _, img := range list.Images {
		if _, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: img.Id}}); err != nil {
			return fmt.Errorf("RemoveImage(%s): %w", img.Id, err)
		}
	}
	list, err = s.is.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return err
	}
	if n := len(list.Images); n > 0 {
		return fmt.Errorf("%d images listed after removing every image", n)
	}
	fs, err := s.is.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{})
	if err != nil {
		r.fig.record("fsinfo", 0, "Unknown", "ImageFsInfo after removing everything: "+err.Error())
	} else if u := fs.ImageFilesystems[0]; u.UsedBytes.GetValue() != 0 || u.InodesUsed.GetValue() != 0 {
		return fmt.Errorf("ImageFsInfo after removing every image: %d bytes, %d inodes", u.UsedBytes.GetValue(), u.InodesUsed.GetValue())
	}
	return nil
}

// countLeftovers inspects the stopped root. With empty set, it must hold nothing at all;
// otherwise only what images hold (leases, partial downloads and orphan dirs never).
func (r *run) countLeftovers(ctx context.Context, where string, empty bool) {
	ingests, _ := os.ReadDir(filepath.Join(backend.ContentRoot(r.root), "ingest"))
	r.fig.leftover("partial downloads", len(ingests), where)
	dirs, _ := os.ReadDir(filepath.Join(backend.SnapshotterRoot(r.root, backend.Native), "snapshots"))
	b, err := backend.Open(ctx, r.root) // (Open removes orphan dirs: they were counted above)
	if err != nil {
		r.fig.Problems = append(r.fig.Problems, fmt.Sprintf("%s: open the root: %v", where, err))
		return
	}
	defer b.Close()
	ls, err := b.Leases.List(b.Context(ctx))
	if err != nil {
		r.fig.Problems = append(r.fig.Problems, fmt.Sprintf("%s: leases: %v", where, err))
	}
	r.fig.leftover("leases", len(ls), where)
	blobs, snaps, err := backendtest.OnDisk(ctx, b)
	if err != nil {
		r.fig.Problems = append(r.fig.Problems, fmt.Sprintf("%s: on disk: %v", where, err))
		return
	}
	r.fig.leftover("orphan snapshot dirs", len(dirs)-len(snaps), where)
	if empty {
		r.fig.leftover("blobs", len(blobs), where)
		r.fig.leftover("snapshots", len(snaps), where)
	}
}
