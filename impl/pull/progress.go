package pull

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// progress counts active registry requests and body bytes read, like containerd's
// pullRequestReporter (internal/cri/server/images/image_pull.go, not importable).
type progress struct {
	active atomic.Int32
	bytes  atomic.Uint64
}

// updateClient is a config.UpdateClientFunc that makes every request of the pull counted.
func (p *progress) updateClient(c *http.Client) error {
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, ok := rt.(*countingTransport); ok {
		return nil
	}
	c.Transport = &countingTransport{rt: rt, p: p}
	return nil
}

type countingTransport struct {
	rt http.RoundTripper
	p  *progress
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.p.active.Add(1)
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		t.p.active.Add(-1)
		return nil, err
	}
	resp.Body = &countingBody{rc: resp.Body, p: t.p}
	return resp, nil
}

type countingBody struct {
	rc   io.ReadCloser
	p    *progress
	once sync.Once
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	b.p.bytes.Add(uint64(n))
	return n, err
}

func (b *countingBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() { b.p.active.Add(-1) })
	return err
}

// watch cancels the pull with errNoProgress when requests are active and no byte arrived for
// timeout. Idle periods (no active request: unpacking, waiting on a lock) never count, and the
// first tick after idle → active restarts the clock (containerd's rule). It checks every
// timeout/4, so the cancel comes between timeout and 1.25×timeout after the last byte.
func (p *progress) watch(ctx context.Context, timeout time.Duration, cancel context.CancelCauseFunc) {
	tick := max(timeout/4, time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		lastBytes uint64
		lastSeen  = time.Now()
		wasActive bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			active, read := p.active.Load(), p.bytes.Load()
			if active == 0 || read != lastBytes || !wasActive {
				lastBytes, lastSeen, wasActive = read, now, active > 0
				continue
			}
			if now.Sub(lastSeen) >= timeout {
				cancel(fmt.Errorf("%w from the registry in %s (progress timeout): %w", errNoProgress, timeout, context.Canceled))
				return
			}
		}
	}
}
