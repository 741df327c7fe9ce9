package auth_test

import (
	"io"
	"log"
	"math/rand"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/internal/clienttest"
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
	clienttest.PushGGCR(t, strings.TrimPrefix(e.admin.URL, "http://")+"/"+repo+":v1", img)
}

func (e *env) ref(repo string) string { return e.host + "/" + repo + ":v1" }

// pullGGCR pulls ref with ggcr remote: manifest, config and every layer (digests verified).
// noSecret fails if err's text contains any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}
