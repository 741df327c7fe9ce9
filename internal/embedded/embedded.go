// Package embedded runs the reference ImageService (impl) in-process as the conformance suite's
// target: on a unix socket in a fresh temp dir, configured as suite/config.Reference() declares.
//
// It is the one wiring between suite and impl, shared by "criimage test --embedded" and the suite's
// go test entry point; suite's own packages never import impl (docs/design.md).
package embedded

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"github.com/criimage/criimage/impl"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
)

// Reference is the embedded reference. Its zero value is ready: give Start and Restart to the
// harness (harness.Env.Start/Restart, or suite/run.Options).
type Reference struct {
	// Profile configures it; nil is config.Reference(). A run against another profile must
	// declare that profile's Features.
	Profile *config.ReferenceProfile

	mu       sync.Mutex
	dir      string
	hostsDir string
	srv      *impl.Server
}

func (r *Reference) config() impl.Config {
	p := config.Reference()
	if r.Profile != nil {
		p = *r.Profile
	}
	return impl.Config{
		Root:                filepath.Join(r.dir, "root"),
		HostsDirs:           []string{r.hostsDir},
		Pinned:              []string{p.Pinned},
		RuntimeHandlers:     map[string]string{p.RuntimeHandler: "native"},
		PullProgressTimeout: p.ProgressTimeout,
		StreamBatchSize:     p.StreamBatchSize,
	}
}

func (r *Reference) endpoint() string { return "unix://" + filepath.Join(r.dir, "cri.sock") }

// Start serves the reference on a unix socket in a new temp dir, reading registry configuration
// (hosts.toml) from hostsDir.
func (r *Reference) Start(ctx context.Context, hostsDir string) (harness.Target, error) {
	dir, err := os.MkdirTemp("", "criimage-ref-") // short: unix socket paths are limited
	if err != nil {
		return nil, err
	}
	r.dir, r.hostsDir = dir, hostsDir
	srv, err := impl.Start(context.WithoutCancel(ctx), r.endpoint(), r.config())
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	r.srv = srv
	return r, nil
}

// Restart stops the reference and starts it again on the same root and socket.
func (r *Reference) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.srv.Close(); err != nil {
		return err
	}
	srv, err := impl.Start(context.WithoutCancel(ctx), r.endpoint(), r.config())
	if err != nil {
		return err
	}
	r.srv = srv
	return nil
}

// Endpoint implements harness.Target.
func (r *Reference) Endpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv.Endpoint()
}

// Close implements harness.Target: it stops the reference and removes its directory.
func (r *Reference) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.srv.Close()
	if rerr := os.RemoveAll(r.dir); err == nil {
		err = rerr
	}
	return err
}
