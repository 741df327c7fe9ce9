package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/internal/clienttest"
	"github.com/criimage/criimage/registry/route"
)

func blobGET(d string) route.Match {
	return route.Match{Method: http.MethodGet, Kind: route.KindBlob, Digest: digest.Digest(d)}
}

func rawGet(t *testing.T, ctx context.Context, u string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return http.DefaultClient.Do(req)
}

func readAll(t *testing.T, u string) ([]byte, *http.Response, error) {
	t.Helper()
	res, err := rawGet(t, clienttest.Context(t), u)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return b, res, err
}

func TestStatus(t *testing.T) {
	rg := newRig(t)
	t.Run("503 body and headers", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Repo: "anon/img"}, Action: faults.Action{Kind: faults.KindStatus, Status: 503}, Times: 1})
		b, res, err := readAll(t, rg.url("/v2/anon/img/manifests/v1"))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Errors []struct{ Code, Message string }
		}
		if res.StatusCode != 503 || res.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &body) != nil ||
			body.Errors[0].Code != "UNAVAILABLE" || !strings.Contains(body.Errors[0].Message, "/v2/anon/img/manifests/v1") {
			t.Errorf("got %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), b)
		}
		if _, res, _ := readAll(t, rg.url("/v2/anon/img/manifests/v1")); res.StatusCode != 200 {
			t.Errorf("Times 1: second request got %d", res.StatusCode)
		}
		rg.faults.Clear(id)
	})
	t.Run("500 until cleared fails containerd and ggcr", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 500}})
		defer rg.faults.Clear(id)
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); err == nil || !strings.Contains(err.Error(), "500") {
			t.Errorf("containerd: %v", err)
		}
		if err := rg.ggcr(clienttest.Context(t), "anon/img", 0); err == nil || !strings.Contains(err.Error(), "UNKNOWN") {
			t.Errorf("ggcr: %v", err)
		}
	})
	t.Run("one 503 is retried by containerd", func(t *testing.T) {
		before := rg.rec.count("HEAD", "/manifests/v1")
		rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Method: "HEAD"}, Action: faults.Action{Kind: faults.KindStatus, Status: 503}, Times: 1})
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); err != nil {
			t.Fatal(err)
		}
		if n := rg.rec.count("HEAD", "/manifests/v1") - before; n != 2 {
			t.Errorf("%d manifest HEADs, want 2 (503, retry)", n)
		}
	})
	t.Run("status answers before auth", func(t *testing.T) {
		rg.faults.Arm(faults.Rule{Match: route.Match{Repo: "token/img"}, Action: faults.Action{Kind: faults.KindStatus, Status: 503}, Times: 1})
		if _, res, _ := readAll(t, rg.url("/v2/token/img/manifests/v1")); res.StatusCode != 503 {
			t.Errorf("got %d, want 503 without credentials", res.StatusCode)
		}
	})
}

func TestTooManyRequests(t *testing.T) {
	rg := newRig(t)
	rule := faults.Rule{Match: route.Match{Kind: route.KindBlob, Digest: digest.Digest(rg.layers[0])},
		Action: faults.Action{Kind: faults.KindStatus, Status: 429, RetryAfter: "0"}, Times: 2}

	rg.faults.Arm(rule)
	_, res, _ := readAll(t, rg.url("/v2/anon/img/blobs/"+rg.layers[0]))
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "0" {
		t.Fatalf("got %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	rg.faults.ClearAll()

	for _, c := range []struct {
		name string
		pull func() error
	}{
		{"containerd", func() error { _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); return err }},
		{"ggcr", func() error { return rg.ggcr(clienttest.Context(t), "anon/img", 3) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := rg.rec.count("GET", rg.layers[0])
			rg.faults.Arm(rule)
			if err := c.pull(); err != nil {
				t.Fatalf("pull with two 429s: %v", err)
			}
			if n := rg.rec.count("GET", rg.layers[0]) - before; n != 3 {
				t.Errorf("%d GETs of the layer, want 3 (429, 429, 200)", n)
			}
		})
	}
}

func TestBodyFaults(t *testing.T) {
	rg := newRig(t)
	layer := rg.layers[0]

	t.Run("truncate: unexpected EOF", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: blobGET(layer), Action: faults.Action{Kind: faults.KindTruncate, AfterBytes: 100}})
		defer rg.faults.Clear(id)
		b, res, err := readAll(t, rg.url("/v2/anon/img/blobs/"+layer))
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 100 || res.StatusCode != 200 {
			t.Errorf("raw: %d bytes, err %v", len(b), err)
		}
		if err := rg.ggcr(clienttest.Context(t), "anon/img", 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ggcr: %v, want unexpected EOF", err)
		}
	})
	t.Run("truncate once: containerd fails the pull", func(t *testing.T) {
		// containerd's fetcher reconnects only for reads that made no progress; a cut body
		// ends the content write with a short read.
		rg.faults.Arm(faults.Rule{Match: blobGET(layer), Action: faults.Action{Kind: faults.KindTruncate, AfterBytes: 100}, Times: 1})
		_, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", "")
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "got 100") {
			t.Errorf("containerd: %v, want a short read of 100 bytes", err)
		}
	})
	t.Run("reset: connection reset by peer", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: blobGET(layer), Action: faults.Action{Kind: faults.KindReset, AfterBytes: 100}})
		defer rg.faults.Clear(id)
		b, _, err := readAll(t, rg.url("/v2/anon/img/blobs/"+layer))
		if !errors.Is(err, syscall.ECONNRESET) || len(b) != 100 {
			t.Errorf("raw: %d bytes, err %v, want 100 then ECONNRESET", len(b), err)
		}
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("containerd: %v, want connection reset", err)
		}
		if err := rg.ggcr(clienttest.Context(t), "anon/img", 0); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("ggcr: %v, want connection reset", err)
		}
	})
	t.Run("hang-up: HEAD and GET of the manifest reset before any answer", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Repo: "anon/img", Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindHangUp}})
		defer rg.faults.Clear(id)
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			req, err := http.NewRequestWithContext(clienttest.Context(t), method, rg.url("/v2/anon/img/manifests/v1"), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s manifest: answered %s, want the connection reset", method, resp.Status)
			}
		}
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); err == nil {
			t.Errorf("containerd resolved a manifest whose requests all hang up")
		}
	})
	t.Run("corrupt: digest mismatch", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: blobGET(layer), Action: faults.Action{Kind: faults.KindCorrupt, AfterBytes: 5}})
		defer rg.faults.Clear(id)
		b, _, err := readAll(t, rg.url("/v2/anon/img/blobs/"+layer))
		if err != nil || digest.FromBytes(b).String() == layer {
			t.Errorf("raw: err %v, digest unchanged %v", err, digest.FromBytes(b).String() == layer)
		}
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); err == nil || !strings.Contains(err.Error(), "digest") {
			t.Errorf("containerd: %v, want a digest error", err)
		}
		if err := rg.ggcr(clienttest.Context(t), "anon/img", 0); err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Errorf("ggcr: %v, want a checksum error", err)
		}
	})
	t.Run("drip: slow but complete", func(t *testing.T) {
		const every = 5 * time.Millisecond
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Method: "GET", Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindDrip, DripBytes: 512, DripEvery: every}})
		defer rg.faults.Clear(id)
		start := time.Now()
		b, _, err := readAll(t, rg.url("/v2/anon/img/blobs/"+layer))
		if err != nil || digest.FromBytes(b).String() != layer {
			t.Fatalf("raw: %v", err)
		}
		if el, min := time.Since(start), time.Duration((len(b)+511)/512-1)*every; el < min {
			t.Errorf("%d bytes in %v, want at least %v", len(b), el, min)
		}
		if _, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", ""); err != nil {
			t.Errorf("containerd: %v", err)
		}
	})
	t.Run("HEAD is not used up by body faults", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindTruncate}, Times: 1})
		defer rg.faults.Clear(id)
		req, _ := http.NewRequest(http.MethodHead, rg.url("/v2/anon/img/blobs/"+layer), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("HEAD: %v", err)
		}
		res.Body.Close()
		if _, _, err := readAll(t, rg.url("/v2/anon/img/blobs/"+layer)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("GET after HEAD: %v, want the fault", err)
		}
	})
}

func TestStall(t *testing.T) {
	rg := newRig(t)
	layer := rg.layers[0]
	rg.faults.Arm(faults.Rule{Match: blobGET(layer), Action: faults.Action{Kind: faults.KindStall, AfterBytes: 10}, Times: 2})

	t.Run("ends on client cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(clienttest.Context(t))
		res, err := rawGet(t, ctx, rg.url("/v2/anon/img/blobs/"+layer))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		head := make([]byte, 10)
		if _, err := io.ReadFull(res.Body, head); err != nil {
			t.Fatalf("first 10 bytes: %v", err)
		}
		got := make(chan error, 1)
		go func() { _, err := res.Body.Read(make([]byte, 1)); got <- err }()
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v", err)
		}
	})
	t.Run("containerd pull ends on ctx cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(clienttest.Context(t))
		arrived := rg.rec.arrival("GET", layer)
		done := make(chan error, 1)
		go func() { _, err := rg.containerd(ctx, t, "anon/img", "", ""); done <- err }()
		select { // the stalled layer GET has reached the registry
		case <-arrived:
		case err := <-done:
			t.Fatalf("pull ended before the stall: %v", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("pull: %v, want context canceled", err)
		}
	})
	t.Run("HEAD stalls before the headers", func(t *testing.T) {
		rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Method: "HEAD"}, Action: faults.Action{Kind: faults.KindStall}, Times: 1})
		ctx, cancel := context.WithCancel(clienttest.Context(t))
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, rg.url("/v2/anon/img/manifests/v1"), nil)
		got := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			got <- err
		}()
		select { // negative check (cannot fail for a correct stall)
		case err := <-got:
			t.Fatalf("HEAD answered during a stall: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("HEAD after cancel: %v", err)
		}
	})
	t.Run("ends when the set closes", func(t *testing.T) {
		rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Method: "GET"}, Action: faults.Action{Kind: faults.KindStall}, Times: 1})
		res, err := rawGet(t, clienttest.Context(t), rg.url("/v2/anon/img/manifests/v1"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got := make(chan error, 1)
		go func() { _, err := io.ReadAll(res.Body); got <- err }()
		// Negative check (cannot fail for a correct stall): the body must not end by itself.
		select {
		case err := <-got:
			t.Fatalf("stalled response ended before Close: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		rg.faults.Close()
		if err := <-got; !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("read after Close: %v", err)
		}
	})
}

func TestHeaderFaults(t *testing.T) {
	rg := newRig(t)
	t.Run("drop digest header", func(t *testing.T) {
		rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Method: "HEAD"}, Action: faults.Action{Kind: faults.KindDropDigestHeader}, Times: 1})
		req, _ := http.NewRequest(http.MethodHead, rg.url("/v2/anon/img/manifests/v1"), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Docker-Content-Digest") != "" {
			t.Errorf("HEAD %d digest %q", res.StatusCode, res.Header.Get("Docker-Content-Digest"))
		}
		// containerd falls back to GET and hashes the body itself.
		rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest, Method: "HEAD"}, Action: faults.Action{Kind: faults.KindDropDigestHeader}, Times: 1})
		before := rg.rec.count("GET", "/manifests/v1")
		desc, err := rg.containerd(clienttest.Context(t), t, "anon/img", "", "")
		if err != nil || desc.Digest.String() != rg.manifest || rg.rec.count("GET", "/manifests/v1") != before+1 {
			t.Errorf("containerd: %v digest %s", err, desc.Digest)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		const ct = "application/vnd.criimage.wrong+json"
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindContentType, ContentType: ct}})
		defer rg.faults.Clear(id)
		desc, _ := rg.containerd(clienttest.Context(t), t, "anon/img", "", "")
		if desc.MediaType != ct {
			t.Errorf("containerd resolved media type %q, want %q", desc.MediaType, ct)
		}
		ref, _ := name.ParseReference(rg.ref("anon/img"))
		if d, err := remote.Get(ref, remote.WithContext(clienttest.Context(t))); err != nil || string(d.MediaType) != ct {
			t.Errorf("ggcr: %v, descriptor %+v", err, d)
		}
	})
}

func TestRedirects(t *testing.T) {
	rg := newRig(t)
	t.Run("foreign: blobs come from the foreign host, without credentials", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindBlob, Method: "GET"}, Action: faults.Action{Kind: faults.KindRedirectForeign}})
		defer rg.faults.Clear(id)
		_, res, err := readAll(t, rg.url("/v2/anon/img/blobs/"+rg.config))
		if err != nil || res.Request.URL.String() != rg.foreign.URL+"/blobs/"+rg.config {
			t.Fatalf("raw: %v, ended at %v", err, res.Request.URL)
		}
		before := len(rg.frec.all())
		if _, err := rg.containerd(clienttest.Context(t), t, "token/img", auth.FixtureUser, auth.FixturePassword); err != nil {
			t.Fatal(err)
		}
		got := rg.frec.all()[before:]
		if len(got) != 1+len(rg.layers) {
			t.Errorf("foreign saw %+v, want config and layers", got)
		}
		for _, s := range got {
			if s.Auth {
				t.Errorf("foreign host received an Authorization header on %s", s.Path)
			}
		}
	})
	t.Run("challenge: the redirect target answers 401", func(t *testing.T) {
		// One blob only: containerd v2.4.2's doBearerAuth reads an in-flight token fetch's
		// expirationTime without a lock, so two blobs challenged at once by the same new host
		// make `go test -race` report a data race inside containerd.
		id := rg.faults.Arm(faults.Rule{Match: blobGET(rg.layers[0]), Action: faults.Action{Kind: faults.KindRedirectChallenge}})
		defer rg.faults.Clear(id)
		before := len(rg.frec.all())
		_, err := rg.containerd(clienttest.Context(t), t, "token/img", auth.FixtureUser, auth.FixturePassword)
		if err == nil {
			t.Fatal("pull through a challenging redirect target succeeded")
		}
		got := rg.frec.all()[before:]
		if len(got) == 0 || !strings.HasPrefix(got[0].Path, faults.ChallengePath+"blobs/sha256:") {
			t.Fatalf("foreign saw %+v", got)
		}
		// Informational (registry-wire.md §7): does the client hand the password to the target's realm?
		for _, s := range got {
			if s.Path == "/evil-token" {
				t.Logf("containerd sent a token request to the redirect target's realm (password in form: %v)",
					strings.Contains(s.Form, auth.FixturePassword))
			}
		}
	})
	t.Run("away: the same request elsewhere, before the handler runs", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindToken, Method: "POST"},
			Action: faults.Action{Kind: faults.KindRedirectAway, Status: http.StatusPermanentRedirect, Location: "http://127.0.0.1:9/"}, Times: 1})
		defer rg.faults.Clear(id)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Post(rg.url("/token?service=x&scope=repository:a/b:pull"), "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 308 || res.Header.Get("Location") != "http://127.0.0.1:9/token?service=x&scope=repository:a/b:pull" || rg.faults.Used(id) != 0 {
			t.Errorf("got %d %v (rule used %d, want used up)", res.StatusCode, res.Header, rg.faults.Used(id))
		}
		id = rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindToken}, Action: faults.Action{Kind: faults.KindRedirectAway}, Times: 1})
		res, err = client.Get(rg.url("/token?scope=x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 307 || res.Header.Get("Location") != rg.foreign.URL+"/token?scope=x" {
			t.Errorf("default location: %d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("not for non-2xx", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindBlob}, Action: faults.Action{Kind: faults.KindRedirectForeign}, Times: 1})
		defer rg.faults.Clear(id)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get(rg.url("/v2/token/img/blobs/" + rg.config)) // no token: 401 from auth
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || rg.faults.Used(id) != 0 {
			t.Errorf("unauthenticated: %d, used %d; want 401 and the rule unused", res.StatusCode, rg.faults.Used(id))
		}
		res, err = client.Get(rg.url("/v2/anon/img/blobs/" + rg.config))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 307 || res.Header.Get("Location") != rg.foreign.URL+"/blobs/"+rg.config || res.Header.Get("Docker-Content-Digest") != "" {
			t.Errorf("got %d %v", res.StatusCode, res.Header)
		}
	})
}

func TestMatchScoping(t *testing.T) {
	rg := newRig(t)
	truncate := faults.Action{Kind: faults.KindTruncate}
	fails := func(path string) bool {
		_, _, err := readAll(t, rg.url(path))
		return err != nil
	}
	manifest := "/v2/anon/img/manifests/v1"
	for _, c := range []struct {
		name  string
		match route.Match
		hits  bool
	}{
		{"zero match", route.Match{}, true},
		{"repo", route.Match{Repo: "anon/img"}, true},
		{"other repo", route.Match{Repo: "anon/other"}, false},
		{"listener", route.Match{Listener: route.ListenerPlain}, true},
		{"other listener", route.Match{Listener: route.ListenerTLS}, false},
		{"reference", route.Match{Reference: "v1"}, true},
		{"other reference", route.Match{Reference: "v2"}, false},
		{"kind", route.Match{Kind: route.KindManifest}, true},
		{"other kind", route.Match{Kind: route.KindBlob}, false},
		{"method", route.Match{Method: "GET"}, true},
		{"other method", route.Match{Method: "HEAD"}, false},
		{"digest", route.Match{Digest: digest.Digest(rg.manifest)}, false}, // a tag path names no digest
	} {
		t.Run(c.name, func(t *testing.T) {
			id := rg.faults.Arm(faults.Rule{Match: c.match, Action: truncate})
			defer rg.faults.Clear(id)
			if got := fails(manifest); got != c.hits {
				t.Errorf("fault applied: %v, want %v", got, c.hits)
			}
		})
	}
	t.Run("times", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Kind: route.KindManifest}, Action: truncate, Times: 2})
		if !fails(manifest) || rg.faults.Used(id) != 1 || !fails(manifest) || fails(manifest) {
			t.Error("want exactly two faulted responses")
		}
	})
	t.Run("clear all", func(t *testing.T) {
		rg.faults.Arm(faults.Rule{Match: route.Match{}, Action: truncate})
		rg.faults.ClearAll()
		if fails(manifest) {
			t.Error("fault after ClearAll")
		}
	})
	t.Run("body faults skip unauthorized responses", func(t *testing.T) {
		id := rg.faults.Arm(faults.Rule{Match: route.Match{Repo: "token/img"}, Action: truncate, Times: 1})
		defer rg.faults.Clear(id)
		b, res, err := readAll(t, rg.url("/v2/token/img/manifests/v1"))
		if err != nil || res.StatusCode != 401 || !json.Valid(b) || rg.faults.Used(id) != 0 {
			t.Errorf("401 got faulted: %v %s", err, b)
		}
		err = rg.ggcr(clienttest.Context(t), "token/img", 0, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: auth.FixtureUser, Password: auth.FixturePassword})))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("authorized pull: %v, want the truncation", err)
		}
	})
	t.Run("bad rules panic", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "bogus") {
				t.Errorf("recover() = %v, want a panic naming the kind", r)
			}
		}()
		rg.faults.Arm(faults.Rule{Action: faults.Action{Kind: "bogus"}})
	})
}

// TestResetOverTLS: the reset reaches the TCP connection under TLS too (and at byte 0).
func TestResetOverTLS(t *testing.T) {
	set := faults.New(faults.Options{})
	body := strings.Repeat("x", 4096)
	srv := httptest.NewTLSServer(set.Middleware("tls", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		_, _ = io.WriteString(w, body)
	})))
	defer srv.Close()
	for _, after := range []int64{0, 1000} {
		id := set.Arm(faults.Rule{Match: route.Match{Listener: route.ListenerTLS}, Action: faults.Action{Kind: faults.KindReset, AfterBytes: after}, Times: 1})
		res, err := srv.Client().Get(srv.URL + "/v2/anon/x/blobs/sha256:" + strings.Repeat("a", 64))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if !errors.Is(err, syscall.ECONNRESET) || int64(len(b)) != after {
			t.Errorf("after %d: read %d bytes, err %v; want ECONNRESET", after, len(b), err)
		}
		set.Clear(id)
	}
}
