package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry/auth"
)

// env is one registry: ggcr's handler behind the auth middleware, plus an unauthenticated
// "admin" front door on the same store for seeding.
type env struct {
	svc   *auth.Service
	srv   *httptest.Server
	admin *httptest.Server
	host  string // "127.0.0.1:PORT" of srv
	clock *clock
}

// clock is a settable time source for the Service, so expiry is tested without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := &clock{now: time.Now()}
	svc := auth.New(auth.Options{Now: c.Now})
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(svc.Middleware(inner))
	t.Cleanup(srv.Close)
	admin := httptest.NewServer(inner)
	t.Cleanup(admin.Close)
	return &env{svc: svc, srv: srv, admin: admin, host: strings.TrimPrefix(srv.URL, "http://"), clock: c}
}

// push seeds a deterministic two-layer image at repo:tag through the admin door.
func (e *env) push(t *testing.T, repo string, seed int64) {
	t.Helper()
	img, err := random.Image(512, 2, random.WithSource(rand.New(rand.NewSource(seed))))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(e.admin.URL, "http://") + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("seeding %s: %v", repo, err)
	}
}

func (e *env) ref(repo string) string { return e.host + "/" + repo + ":v1" }

// pullGGCR pulls ref with ggcr remote: manifest, config and every layer (digests verified).
func pullGGCR(ctx context.Context, ref string, opts ...remote.Option) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ctrdPuller pulls like CRI does: containerd's docker resolver with a docker authorizer, and
// content fetched through remotes.FetchHandler into a local content store (digests verified).
type ctrdPuller struct {
	authorizer docker.Authorizer // nil = anonymous
	headers    http.Header
	dir        string
}

func creds(user, secret string) docker.Authorizer {
	return docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
		return user, secret, nil
	}))
}

func (p ctrdPuller) resolver() remotes.Resolver {
	var ropts []docker.RegistryOpt
	ropts = append(ropts, docker.WithPlainHTTP(docker.MatchAllHosts))
	if p.authorizer != nil {
		ropts = append(ropts, docker.WithAuthorizer(p.authorizer))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(ropts...), Headers: p.headers})
}

// resolve returns the resolved name and root descriptor.
func (p ctrdPuller) resolve(ctx context.Context, ref string) (remotes.Resolver, string, ocispec.Descriptor, error) {
	r := p.resolver()
	n, desc, err := r.Resolve(ctx, ref)
	return r, n, desc, err
}

// fetch fetches desc and everything below it.
func (p ctrdPuller) fetch(ctx context.Context, r remotes.Resolver, n string, desc ocispec.Descriptor) error {
	f, err := r.Fetcher(ctx, n)
	if err != nil {
		return err
	}
	cs, err := local.NewStore(p.dir)
	if err != nil {
		return err
	}
	return images.Dispatch(ctx, images.Handlers(remotes.FetchHandler(cs, f), images.ChildrenHandler(cs)), nil, desc)
}

func (p ctrdPuller) pull(ctx context.Context, ref string) error {
	r, n, desc, err := p.resolve(ctx, ref)
	if err != nil {
		return err
	}
	return p.fetch(ctx, r, n, desc)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// noSecret fails if err's text contains any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

var _ = errors.New
var _ = fmt.Sprint
var _ authn.Authenticator = authn.Anonymous

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }
