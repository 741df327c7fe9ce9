package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	suiterun "github.com/criimage/criimage/suite/run"
)

// runTest implements "criimage test": the conformance suite against --image-endpoint, or against
// the embedded reference with --embedded. See suite/run for the flags.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ref := &embeddedRef{}
	return suiterun.Main(ctx, args, stdout, stderr, suiterun.Options{Embedded: ref.start, EmbeddedRestart: ref.restart})
}

// embeddedRef is the reference ImageService on a unix socket in a temp dir, configured as
// config.Reference() declares.
type embeddedRef struct {
	mu       sync.Mutex
	dir      string
	hostsDir string
	srv      *impl.Server
}

func (e *embeddedRef) config() impl.Config {
	p := config.Reference()
	return impl.Config{
		Root:                filepath.Join(e.dir, "root"),
		HostsDirs:           []string{e.hostsDir},
		Pinned:              []string{p.Pinned},
		RuntimeHandlers:     map[string]string{p.RuntimeHandler: "native"},
		PullProgressTimeout: p.ProgressTimeout,
		StreamBatchSize:     p.StreamBatchSize,
	}
}

func (e *embeddedRef) endpoint() string { return "unix://" + filepath.Join(e.dir, "cri.sock") }

func (e *embeddedRef) start(ctx context.Context, hostsDir string) (harness.Target, error) {
	dir, err := os.MkdirTemp("", "criimage-ref-")
	if err != nil {
		return nil, err
	}
	e.dir, e.hostsDir = dir, hostsDir
	srv, err := impl.Start(context.WithoutCancel(ctx), e.endpoint(), e.config())
	if err != nil {
		return nil, err
	}
	e.srv = srv
	return e, nil
}

func (e *embeddedRef) restart(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.srv.Close(); err != nil {
		return err
	}
	srv, err := impl.Start(context.WithoutCancel(ctx), e.endpoint(), e.config())
	if err != nil {
		return err
	}
	e.srv = srv
	return nil
}

func (e *embeddedRef) Endpoint() string { return e.srv.Endpoint() }

func (e *embeddedRef) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.srv.Close()
	if rerr := os.RemoveAll(e.dir); err == nil {
		err = rerr
	}
	return err
}
