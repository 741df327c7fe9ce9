package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/registry/route"
)

// The journal is outermost: a request held by a gate whose client leaves is recorded as aborted,
// and a truncate fault is recorded with the bytes that really went out.
func TestJournalSeesGatesAndFaults(t *testing.T) {
	reg := start(t, registry.Options{})
	data := make([]byte, 64<<10)
	d, _ := reg.PutBlob("anon/comp", data)
	u := "http://" + reg.PlainHost() + "/v2/anon/comp/blobs/" + d.String()

	g := reg.Gates().Arm(route.Match{Listener: route.ListenerPlain, Method: "GET", Digest: d})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	if err := g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request succeeded")
	}
	held, err := reg.Journal().WaitFor(t.Context(), 0, func(e journal.Entry) bool { return e.Digest == d })
	if err != nil {
		t.Fatal(err)
	}
	if !held.Aborted || held.Status != 0 || held.BytesSent != 0 {
		t.Errorf("held request whose client left: %+v", held)
	}
	g.Release()

	reg.Faults().Arm(faults.Rule{Match: route.Match{Digest: d, Method: "GET"}, Action: faults.Action{Kind: faults.KindTruncate, AfterBytes: 1000}, Times: 1})
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n != 1000 {
		t.Fatalf("truncated body: %d bytes, err %v", n, err)
	}
	resp, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	var truncated, full bool
	for _, e := range reg.Journal().Since(held.Seq) {
		switch {
		case e.Aborted && e.Status == 200 && e.BytesSent == 1000:
			truncated = true
		case !e.Aborted && e.Status == 200 && e.BytesSent == int64(len(data)):
			full = true
		}
	}
	if !truncated || !full {
		t.Errorf("truncated=%v full=%v:\n%s", truncated, full, reg.Journal().Transcript(reg.Journal().Entries()))
	}
	if n := reg.Journal().BlobGets("anon/comp", digest.Digest(d)); n != 3 {
		t.Errorf("BlobGets = %d, want 3 (held+aborted, truncated, complete)", n)
	}
}

// containerd pulls from token/… with the fixture password while a fault redirects blob GETs to
// the foreign host: the token service sees the password, the foreign host never does.
func TestAuthenticatedPullRedirectedToForeignHost(t *testing.T) {
	reg := start(t, registry.Options{})
	img, _ := random.Image(3000, 1)
	md := seedImage(t, reg, "token/comp", "v1", img)
	reg.Faults().Arm(faults.Rule{Match: route.Match{Repo: "token/comp", Kind: route.KindBlob, Method: "GET"}, Action: faults.Action{Kind: faults.KindRedirectForeign}})

	authorizer := docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
		return auth.FixtureUser, auth.FixturePassword, nil
	}))
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchAllHosts), docker.WithAuthorizer(authorizer))})
	ctx := t.Context()
	name, desc, err := resolver.Resolve(ctx, reg.PlainHost()+"/token/comp:v1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != md {
		t.Fatalf("resolved %s", desc.Digest)
	}
	f, err := resolver.Fetcher(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(fetchAll(t, ctx, f, desc), &m); err != nil {
		t.Fatal(err)
	}
	fetchAll(t, ctx, f, m.Config)
	fetchAll(t, ctx, f, m.Layers[0])

	j := reg.Journal()
	if !j.SawSecret(route.ListenerPlain, auth.FixturePassword) {
		t.Errorf("the token service never saw the password:\n%s", j.Transcript(j.Entries()))
	}
	if j.SawSecret(route.ListenerForeign, auth.FixturePassword) {
		t.Error("the foreign host saw the password")
	}
	foreign := 0
	for _, e := range j.Entries() {
		if e.Listener != route.ListenerForeign {
			continue
		}
		foreign++
		if e.AuthScheme != "" || len(e.Secrets) != 0 {
			t.Errorf("foreign request carried credentials: %+v", e)
		}
	}
	if foreign != 2 {
		t.Errorf("%d foreign requests, want 2 (config and layer):\n%s", foreign, j.Transcript(j.Entries()))
	}
}
