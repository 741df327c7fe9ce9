package pull

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/criimage/criimage/impl/grpcerr"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

// joinSignal makes p report every join; the returned channel yields the waiter counts.
func joinSignal(p *Puller) <-chan int {
	ch := make(chan int, 64)
	p.hooks.joined = func(n int) { ch <- n }
	return ch
}

func finishSignal(p *Puller) <-chan error {
	ch := make(chan error, 64)
	p.hooks.finished = func(err error) { ch <- err }
	return ch
}

func waitJoined(t *testing.T, ctx context.Context, ch <-chan int, n int) {
	t.Helper()
	for {
		select {
		case got := <-ch:
			if got == n {
				return
			}
		case <-ctx.Done():
			t.Fatalf("only some of %d callers joined the flight", n)
		}
	}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	e.push("anon/dedup", "v1", img)
	ref := e.ref(e.reg.PlainHost() + "/anon/dedup:v1")
	joined := joinSignal(e.p)

	gate := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: "anon/dedup", Kind: route.KindBlob})
	const n = 4
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.p.Pull(e.ctx, Request{Ref: ref})
		}()
	}
	if err := gate.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, e.ctx, joined, n)
	gate.Release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].Config.Digest != img.config {
			t.Fatalf("caller %d: config %s, want %s", i, results[i].Config.Digest, img.config)
		}
	}
	for d := range img.blobs {
		if got := e.reg.Journal().BlobGets("anon/dedup", d); got != 1 {
			t.Errorf("blob %s fetched %d times, want 1", d, got)
		}
	}
	// Each caller holds the content with its own lease: ending all but one keeps it.
	for i := range n - 1 {
		if err := results[i].Done(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.b.GC(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertUnpacked(results[n-1], "native")
	if err := results[n-1].Done(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

func TestCancelOneCallerKeepsTheOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "1"})
	e.push("anon/cancel", "v1", img)
	ref := e.ref(e.reg.PlainHost() + "/anon/cancel:v1")
	joined := joinSignal(e.p)
	gate := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: "anon/cancel", Kind: route.KindBlob})

	actx, cancelA := context.WithCancel(e.ctx)
	aErr := make(chan error, 1)
	go func() {
		_, err := e.p.Pull(actx, Request{Ref: ref})
		aErr <- err
	}()
	waitJoined(t, e.ctx, joined, 1) // A starts the flight: its context must not be the flight's
	bRes := make(chan error, 1)
	var b Result
	go func() {
		var err error
		b, err = e.p.Pull(e.ctx, Request{Ref: ref})
		bRes <- err
	}()
	if err := gate.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, e.ctx, joined, 2)
	cancelA()
	if err := <-aErr; grpcerr.Code(err) != codes.Canceled {
		t.Fatalf("cancelled caller: %v, want Canceled", err)
	}
	select {
	case <-gate.ClientGone():
		t.Fatal("cancelling one caller cancelled the shared download")
	default:
	}
	gate.Release()
	if err := <-bRes; err != nil {
		t.Fatalf("remaining caller: %v", err)
	}
	e.assertUnpacked(b, "native")
	_ = b.Done(e.ctx)
	e.assertClean()
}

func TestLastCallerGoneCancelsTheDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	e.push("anon/gone", "v1", img)
	ref := e.ref(e.reg.PlainHost() + "/anon/gone:v1")
	finished := finishSignal(e.p)
	gate := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: "anon/gone", Kind: route.KindBlob, Digest: img.layers[1]})

	ctx, cancel := context.WithCancel(e.ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := e.p.Pull(ctx, Request{Ref: ref})
		errc <- err
	}()
	if err := gate.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; grpcerr.Code(err) != codes.Canceled {
		t.Fatalf("Pull = %v, want Canceled", err)
	}
	// The flight ends (with the cancellation) although the gate still holds its request: it was
	// cancelled, not left to finish. (Gate.ClientGone is not used: it can miss a disconnect.)
	select {
	case err := <-finished:
		if grpcerr.Code(failed("x", err)) != codes.Canceled {
			t.Fatalf("flight ended with %v, want a cancellation", err)
		}
	case <-e.ctx.Done():
		t.Fatal("the download went on after its only caller left")
	}
	gate.Release()
	e.assertClean()
	// A retry right away succeeds (containerd PR #10723).
	res, err := e.p.Pull(e.ctx, Request{Ref: ref})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	<-finished
	_ = res.Done(e.ctx)
	e.assertClean()
}

func TestProgressTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	e := newEnv(t, Options{ProgressTimeout: timeout})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": strings.Repeat("x", 4096)})
	e.push("anon/stall", "v1", img)
	e.reg.Faults().Arm(faults.Rule{
		Match:  route.Match{Method: "GET", Repo: "anon/stall", Digest: img.layers[0]},
		Action: faults.Action{Kind: faults.KindStall, AfterBytes: 10},
	})
	start := time.Now()
	_, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/stall:v1")})
	took := time.Since(start)
	if grpcerr.Code(err) != codes.Canceled || !strings.Contains(err.Error(), "progress timeout") || !strings.Contains(err.Error(), "200ms") {
		t.Fatalf("Pull = %v, want Canceled naming the progress timeout", err)
	}
	if took < timeout {
		t.Fatalf("cancelled after %s, before the %s timeout", took, timeout)
	}
	e.assertClean()
}

func TestSlowButSteadyPullIsNotCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ProgressTimeout: 200 * time.Millisecond})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "slow"})
	e.push("anon/drip", "v1", img)
	// ~20 writes 20ms apart: the transfer takes longer than the timeout, but never stalls.
	size := len(img.blobs[img.layers[0]])
	e.reg.Faults().Arm(faults.Rule{
		Match:  route.Match{Method: "GET", Repo: "anon/drip", Digest: img.layers[0]},
		Action: faults.Action{Kind: faults.KindDrip, DripBytes: size/20 + 1, DripEvery: 20 * time.Millisecond},
	})
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/drip:v1")})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	_ = res.Done(e.ctx)
}

func TestNoProgressTimeoutStillCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ProgressTimeout: 0})
	img := buildImage(t, true, linuxAMD64, map[string]string{"a": "zero"})
	e.push("anon/zero", "v1", img)
	e.reg.Faults().Arm(faults.Rule{
		Match:  route.Match{Method: "GET", Repo: "anon/zero", Digest: img.layers[0]},
		Action: faults.Action{Kind: faults.KindDrip, DripBytes: 64, DripEvery: 5 * time.Millisecond},
	})
	res, err := e.p.Pull(e.ctx, Request{Ref: e.ref(e.reg.PlainHost() + "/anon/zero:v1")})
	if err != nil {
		t.Fatalf("Pull with timeout 0: %v", err)
	}
	_ = res.Done(e.ctx)
}
