// The go test entry point of the conformance suite: `go test ./suite/...` runs every spec against
// the embedded reference ImageService (impl) on a real unix socket in a temp dir, unless
// -image-endpoint names another target. This file is the only place in suite/ that imports impl.
//
//	go test ./suite/ -args -image-endpoint unix:///run/containerd/containerd.sock -features mirror
//	go test -c -o criimage-suite.test ./suite/ && ginkgo -p ./criimage-suite.test -- -image-endpoint …
package suite_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/specs"
)

// testConfig is the suite's configuration, bound to the test binary's flags.
var testConfig = func() *config.Config {
	c := config.Default()
	c.RegisterFlags(flag.CommandLine, "")
	return c
}()

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	cfg := testConfig
	if cfg.ImageEndpoint == "" && cfg.Features.String() == "" {
		Expect(cfg.Features.Set(config.Reference().Features())).To(Succeed())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := harness.NewEnv(cfg)
	emb := &embedded{}
	env.Start = emb.start
	env.Restart = emb.restart
	if err := specs.Register(env); err != nil {
		t.Fatal(err)
	}
	RunSpecs(t, "criimage conformance")
}

// embedded runs the reference ImageService in this process.
type embedded struct {
	mu       sync.Mutex
	dir      string
	hostsDir string
	srv      *impl.Server
}

func (e *embedded) config() impl.Config {
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

func (e *embedded) endpoint() string { return "unix://" + filepath.Join(e.dir, "cri.sock") }

func (e *embedded) start(ctx context.Context, hostsDir string) (harness.Target, error) {
	dir, err := os.MkdirTemp("", "criimage-ref-") // short: unix socket paths are limited
	if err != nil {
		return nil, err
	}
	e.dir, e.hostsDir = dir, hostsDir
	srv, err := impl.Start(ctx, e.endpoint(), e.config())
	if err != nil {
		return nil, err
	}
	e.srv = srv
	return e, nil
}

// restart stops the reference and starts it again on the same root and socket.
func (e *embedded) restart(ctx context.Context) error {
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

func (e *embedded) Endpoint() string { return e.srv.Endpoint() }

func (e *embedded) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.srv.Close()
	if rerr := os.RemoveAll(e.dir); err == nil {
		err = rerr
	}
	return err
}
