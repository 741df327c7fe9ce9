package soak

import (
	"context"
	"fmt"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crashLoop: Crashes rounds of kill -9 in the middle of concurrent pulls, then a restart on the
// same root that must show only whole images, remove them all and leave nothing behind.
func (r *run) crashLoop(ctx context.Context) error {
	// How long the big pulls take here sets the window the kill lands in.
	window, err := r.measureBigPulls(ctx)
	if err != nil {
		return err
	}
	for round := 1; round <= r.opts.Crashes; round++ {
		s, err := r.startServer(ctx)
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		// One small image pulled whole first, so that there is something the crash must not lose.
		keep := r.fx.healthy[round%len(r.fx.healthy)]
		if _, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: keep.ref}}); err != nil {
			s.kill()
			return fmt.Errorf("round %d: pull %s: %w", round, keep.ref, err)
		}
		var wg sync.WaitGroup
		for _, img := range r.fx.big {
			wg.Go(func() {
				_, _ = s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: img.ref}})
			})
		}
		delay := time.Duration(r.intn(int(window/time.Millisecond)+1)) * time.Millisecond
		time.Sleep(delay) // a random moment of the pulls: the point of a crash loop, not a race to win
		s.kill()
		wg.Wait()
		r.fig.CrashRounds++

		s, err = r.startServer(ctx)
		if err != nil {
			return fmt.Errorf("round %d: restart after kill -9 at %v: %w", round, delay, err)
		}
		where := fmt.Sprintf("crash round %d (kill -9 %v into the pulls)", round, delay)
		for _, p := range r.agree(ctx, s, false) {
			r.fig.Problems = append(r.fig.Problems, where+": "+p)
		}
		st, err := s.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: keep.ref}})
		if err != nil || st.Image == nil || st.Image.Id != keep.id {
			r.fig.Problems = append(r.fig.Problems, fmt.Sprintf("%s: the image pulled whole before the crash is gone: %v %v", where, st.GetImage(), err))
		}
		if err := r.removeAll(ctx, s); err != nil {
			r.fig.Problems = append(r.fig.Problems, where+": "+err.Error())
		}
		if err := s.stop(); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		r.countLeftovers(ctx, where, true)
		fmt.Fprintf(r.opts.Log, "soak: crash round %d/%d: kill -9 after %v\n", round, r.opts.Crashes, delay)
	}
	return nil
}

// measureBigPulls pulls the big images once (concurrently) and removes them: the duration is the
// window the crash rounds' kills are spread over.
func (r *run) measureBigPulls(ctx context.Context) (time.Duration, error) {
	if r.opts.Crashes == 0 {
		return 0, nil
	}
	s, err := r.startServer(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.fx.big))
	for _, img := range r.fx.big {
		wg.Go(func() {
			if _, err := s.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: img.ref}}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	window := time.Since(start)
	close(errs)
	for err := range errs {
		_ = s.stop()
		return 0, fmt.Errorf("pull the big images: %w", err)
	}
	if err := r.removeAll(ctx, s); err != nil {
		_ = s.stop()
		return 0, err
	}
	return window, s.stop()
}
