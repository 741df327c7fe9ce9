package soak

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
)

// rpcTimeout bounds every call of the storm, as kubelet bounds its CRI calls.
const rpcTimeout = 2 * time.Minute

// storm runs Workers goroutines of mixed calls for Duration against one serve process.
func (r *run) storm(ctx context.Context) error {
	s, err := r.startServer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if s != nil {
			_ = s.stop()
		}
	}()
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, r.opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Go(func() {
			for sctx.Err() == nil {
				r.oneCall(ctx, s)
			}
		})
	}
	wg.Wait()
	r.fig.StormSeconds = time.Since(start).Seconds()
	err = s.stop()
	s = nil
	return err
}

// oneCall makes one random call and records its outcome. Every call gets its own deadline from
// the parent ctx (not the storm's), so that calls in flight when the storm ends finish normally.
func (r *run) oneCall(ctx context.Context, s *server) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	fx := r.fx
	pick := func(list []image) image { return list[r.intn(len(list))] }
	anyImage := func() image {
		all := append(append([]image{}, fx.healthy...), fx.authed...)
		return pick(all)
	}
	n := r.intn(100)
	switch {
	case n < 28:
		r.pull(ctx, s, pick(fx.healthy))
	case n < 38:
		r.pull(ctx, s, pick(fx.authed))
	case n < 46:
		r.pull(ctx, s, pick(fx.faulted))
	case n < 48:
		r.pull(ctx, s, pick(fx.baits))
	case n < 63:
		img := anyImage()
		key := img.ref
		if r.intn(2) == 0 {
			key = img.id
		}
		t := time.Now()
		_, err := s.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: key}})
		r.expectOK("remove", t, err)
	case n < 73:
		t := time.Now()
		_, err := s.is.ListImages(ctx, &runtime.ListImagesRequest{})
		r.expectOK("list", t, err)
	case n < 78:
		t := time.Now()
		err := drain(ctx, s.is)
		r.expectOK("stream", t, err)
	case n < 88:
		img := anyImage()
		t := time.Now()
		resp, err := s.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: img.ref}})
		r.expectOK("status", t, err)
		if err == nil && resp.Image != nil && resp.Image.Id != img.id {
			r.fig.note(fmt.Sprintf("ImageStatus(%s).id = %s, want %s", img.ref, resp.Image.Id, img.id))
		}
	default:
		t := time.Now()
		_, err := s.is.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{})
		r.expectOK("fsinfo", t, err)
	}
}

// pull pulls img and judges the outcome: healthy and credentialed images must pull to their ID,
// faulted ones must fail; a bait pull may do either (only where its credentials went counts).
func (r *run) pull(ctx context.Context, s *server, img image) {
	t := time.Now()
	resp, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: img.ref}, Auth: img.auth})
	code := status.Code(err).String()
	unexpected := ""
	switch {
	case img.kind == "pull-bait":
	case img.fails && err == nil:
		unexpected = fmt.Sprintf("PullImage(%s) succeeded although every blob GET is faulted", img.ref)
	case !img.fails && err != nil:
		unexpected = fmt.Sprintf("PullImage(%s): %s", img.ref, clip(err.Error()))
	case !img.fails && resp.GetImageRef() != img.id:
		unexpected = fmt.Sprintf("PullImage(%s) = %s, want %s", img.ref, resp.GetImageRef(), img.id)
	}
	r.fig.record(img.kind, time.Since(t), code, unexpected)
}

func (r *run) expectOK(op string, start time.Time, err error) {
	unexpected := ""
	if err != nil {
		unexpected = fmt.Sprintf("%s: %s", op, clip(err.Error()))
	}
	r.fig.record(op, time.Since(start), status.Code(err).String(), unexpected)
}

// drain reads a whole StreamImages answer.
func drain(ctx context.Context, is runtime.ImageServiceClient) error {
	st, err := is.StreamImages(ctx, &runtime.StreamImagesRequest{})
	if err != nil {
		return err
	}
	_, err = criendpoint.Drain(st)
	return err
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
