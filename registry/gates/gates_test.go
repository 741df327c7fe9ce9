package gates_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	ctrdlog "github.com/containerd/log"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/gates"
	"github.com/criimage/criimage/registry/internal/clienttest"
	"github.com/criimage/criimage/registry/route"
)

func TestMain(m *testing.M) {
	_ = ctrdlog.SetLevel("error")
	os.Exit(m.Run())
}

type rig struct {
	gates *gates.Set
	srv   *httptest.Server
	host  string
	// served counts requests that reached the registry behind the gates, by path.
	mu     sync.Mutex
	served map[string]int
	layers []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	rg := &rig{gates: gates.New(), served: map[string]int{}}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.mu.Lock()
		rg.served[r.Method+" "+r.URL.Path]++
		rg.mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	rg.srv = httptest.NewServer(rg.gates.Middleware(route.ListenerPlain, counted))
	t.Cleanup(rg.srv.Close)
	t.Cleanup(rg.gates.Close) // runs first: releases anything still held
	rg.host = strings.TrimPrefix(rg.srv.URL, "http://")

	img, err := random.Image(1024, 2, random.WithSource(rand.New(rand.NewSource(3))))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(rg.host + "/anon/img:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		rg.layers = append(rg.layers, d.String())
	}
	return rg
}

func (rg *rig) servedCount(key string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.served[key]
}

func get(ctx context.Context, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

type result struct {
	status int
	err    error
}

// TestConcurrentClients: N clients fetch the same blob; only the held one waits, the others
// finish; Release lets the held one finish too.
func TestConcurrentClients(t *testing.T) {
	rg := newRig(t)
	const n = 5
	blob := "/v2/anon/img/blobs/" + rg.layers[0]
	g := rg.gates.Arm(route.Match{Method: "GET", Kind: route.KindBlob, Digest: "" /* any */, Repo: "anon/img"})

	results := make(chan result, n)
	for range n {
		go func() {
			st, _, err := get(clienttest.Context(t), rg.srv.URL+blob)
			results <- result{st, err}
		}()
	}
	if err := g.Wait(clienttest.Context(t)); err != nil {
		t.Fatal(err)
	}
	for range n - 1 { // the others complete while one is held
		if r := <-results; r.err != nil || r.status != 200 {
			t.Fatalf("unheld client: %+v", r)
		}
	}
	if got := rg.servedCount("GET " + blob); got != n-1 {
		t.Errorf("%d GETs reached the registry while one was held, want %d", got, n-1)
	}
	select {
	case r := <-results:
		t.Fatalf("held client finished before Release: %+v", r)
	default:
	}
	g.Release()
	if r := <-results; r.err != nil || r.status != 200 {
		t.Fatalf("released client: %+v", r)
	}
	if got := rg.servedCount("GET " + blob); got != n {
		t.Errorf("%d GETs served after Release, want %d", got, n)
	}
}

func TestFail(t *testing.T) {
	rg := newRig(t)
	g := rg.gates.Arm(route.Match{Kind: route.KindManifest, Reference: "v1"})
	done := make(chan result, 1)
	var body []byte
	go func() {
		st, b, err := get(clienttest.Context(t), rg.srv.URL+"/v2/anon/img/manifests/v1")
		body = b
		done <- result{st, err}
	}()
	if err := g.Wait(clienttest.Context(t)); err != nil {
		t.Fatal(err)
	}
	g.Fail(http.StatusTooManyRequests)
	g.Release() // ignored: the first decision counts
	r := <-done
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if r.err != nil || r.status != 429 || json.Unmarshal(body, &e) != nil || e.Errors[0].Code != "TOOMANYREQUESTS" ||
		!strings.Contains(e.Errors[0].Message, "/v2/anon/img/manifests/v1") {
		t.Errorf("got %+v %s", r, body)
	}
	if rg.servedCount("GET /v2/anon/img/manifests/v1") != 0 {
		t.Error("failed request reached the registry")
	}
}

func TestClientGone(t *testing.T) {
	rg := newRig(t)
	g := rg.gates.Arm(route.Match{Kind: route.KindBlob})
	ctx, cancel := context.WithCancel(clienttest.Context(t))
	done := make(chan error, 1)
	go func() { _, _, err := get(ctx, rg.srv.URL+"/v2/anon/img/blobs/"+rg.layers[1]); done <- err }()
	if err := g.Wait(clienttest.Context(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.ClientGone():
		t.Fatal("ClientGone before the client went")
	default:
	}
	cancel()
	waitFor(t, g.ClientGone(), "ClientGone after cancel")
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}
	g.Release() // nobody left: must not panic or serve
	if rg.servedCount("GET /v2/anon/img/blobs/"+rg.layers[1]) != 0 {
		t.Error("abandoned request reached the registry")
	}
}

// TestHoldsContainerdPull: a gate on one layer holds a containerd pull mid-way; the other blobs
// arrive, and Release lets the pull finish.
func TestHoldsContainerdPull(t *testing.T) {
	rg := newRig(t)
	g := rg.gates.Arm(route.Match{Method: "GET", Kind: route.KindBlob, Digest: digestOf(rg.layers[0])})
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		_, err := clienttest.Containerd{Dir: dir}.Pull(clienttest.Context(t), rg.host+"/anon/img:v1")
		done <- err
	}()
	if err := g.Wait(clienttest.Context(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("pull finished while a layer was held: %v", err)
	default:
	}
	g.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	rg := newRig(t)
	g := rg.gates.Arm(route.Match{Repo: "anon/never"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "anon/never") {
		t.Errorf("Wait: %v", err)
	}
	// Release before any request: the next matching request passes without waiting.
	g2 := rg.gates.Arm(route.Match{Kind: route.KindManifest})
	g2.Release()
	if st, _, err := get(clienttest.Context(t), rg.srv.URL+"/v2/anon/img/manifests/v1"); err != nil || st != 200 {
		t.Errorf("pre-released gate: %d %v", st, err)
	}
	waitFor(t, g2.Held(), "pre-released gate to count as held")
}

func TestCloseFailsHeld(t *testing.T) {
	rg := newRig(t)
	g := rg.gates.Arm(route.Match{Kind: route.KindManifest})
	done := make(chan result, 1)
	go func() {
		st, _, err := get(clienttest.Context(t), rg.srv.URL+"/v2/anon/img/manifests/v1")
		done <- result{st, err}
	}()
	if err := g.Wait(clienttest.Context(t)); err != nil {
		t.Fatal(err)
	}
	rg.gates.Close()
	if r := <-done; r.err != nil || r.status != 503 {
		t.Errorf("held request after Close: %+v", r)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-clienttest.Context(t).Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}
