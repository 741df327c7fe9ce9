package faults_test

import (
	"context"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ctrdlog "github.com/containerd/log"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/internal/clienttest"
	"github.com/criimage/criimage/registry/route"
)

func TestMain(m *testing.M) {
	_ = ctrdlog.SetLevel("error") // containerd's resolver and content store log at info/warning
	os.Exit(m.Run())
}

// seen is one request as it arrived at a server.
type seen struct {
	Method, Path, Range string
	Auth                bool   // an Authorization header was sent
	Form                string // token requests: the form body (only in tests; fixture secrets)
}

type recorder struct {
	mu      sync.Mutex
	reqs    []seen
	waiters []waiter
}

type waiter struct {
	method, pathPart string
	ch               chan struct{}
}

// arrival returns a channel closed when the next request with method and a path containing
// pathPart arrives.
func (rc *recorder) arrival(method, pathPart string) <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	w := waiter{method, pathPart, make(chan struct{})}
	rc.waiters = append(rc.waiters, w)
	return w.ch
}

func (rc *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization") != ""}
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			s.Form = string(b)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, s)
		kept := rc.waiters[:0]
		for _, w := range rc.waiters {
			if w.method == s.Method && strings.Contains(s.Path, w.pathPart) {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		rc.waiters = kept
		rc.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (rc *recorder) all() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

func (rc *recorder) count(method, pathPart string) int {
	n := 0
	for _, s := range rc.all() {
		if s.Method == method && strings.Contains(s.Path, pathPart) {
			n++
		}
	}
	return n
}

// rig is a registry (faults → auth → ggcr) on 127.0.0.1 and a foreign host on 127.0.0.2 that
// serves /blobs/<digest> from the same store and answers /challenge/… with a Bearer challenge
// whose realm is its own /evil-token.
type rig struct {
	faults   *faults.Set
	auth     *auth.Service
	srv      *httptest.Server
	host     string
	rec      *recorder // requests at the registry, before faults
	foreign  *httptest.Server
	frec     *recorder
	img      v1.Image
	manifest string // manifest digest
	layers   []string
	config   string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	rg := &rig{rec: &recorder{}, frec: &recorder{}, auth: auth.New(auth.Options{})}

	fl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.2: %v", err)
	}
	rg.foreign = httptest.NewUnstartedServer(rg.frec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/blobs/"):
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/v2/anon/img" + r.URL.Path // ggcr's blob store is global
			inner.ServeHTTP(w, r2)
		case strings.HasPrefix(r.URL.Path, faults.ChallengePath):
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/evil-token",service="evil"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	})))
	rg.foreign.Listener.Close()
	rg.foreign.Listener = fl
	rg.foreign.Start()
	t.Cleanup(rg.foreign.Close)

	rg.faults = faults.New(faults.Options{ForeignURL: func() string { return rg.foreign.URL }})
	rg.srv = httptest.NewServer(rg.rec.wrap(rg.faults.Middleware(route.ListenerPlain, rg.auth.Middleware(inner))))
	t.Cleanup(rg.srv.Close)
	t.Cleanup(rg.faults.Close) // runs first: ends stalls before the server waits for handlers
	rg.host = strings.TrimPrefix(rg.srv.URL, "http://")

	admin := httptest.NewServer(inner)
	defer admin.Close()
	rg.img, err = random.Image(2048, 2, random.WithSource(rand.New(rand.NewSource(7))))
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"anon/img", "token/img"} {
		clienttest.PushGGCR(t, strings.TrimPrefix(admin.URL, "http://")+"/"+repo+":v1", rg.img)
	}
	d, _ := rg.img.Digest()
	rg.manifest = d.String()
	c, _ := rg.img.ConfigName()
	rg.config = c.String()
	ls, _ := rg.img.Layers()
	for _, l := range ls {
		ld, _ := l.Digest()
		rg.layers = append(rg.layers, ld.String())
	}
	return rg
}

func (rg *rig) ref(repo string) string { return rg.host + "/" + repo + ":v1" }

func (rg *rig) url(path string) string { return rg.srv.URL + path }

// ggcr pulls with ggcr remote, reading every layer (digests verified); retries are quick.
func (rg *rig) ggcr(ctx context.Context, repo string, retries int, opts ...remote.Option) error {
	opts = append(opts, remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: retries + 1}))
	return clienttest.PullGGCR(ctx, rg.ref(repo), opts...)
}

// containerd pulls like CRI does (clienttest.Containerd), with creds when user or secret is set.
func (rg *rig) containerd(ctx context.Context, t *testing.T, repo, user, secret string) (ocispec.Descriptor, error) {
	c := clienttest.Containerd{Dir: t.TempDir()}
	if user != "" || secret != "" {
		c.Authorizer = clienttest.Creds(user, secret)
	}
	return c.Pull(ctx, rg.ref(repo))
}
