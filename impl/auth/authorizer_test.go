package auth

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const secret = "s3cret-password"

// recorder is a registry-and-token server that records every credential it receives.
type recorder struct {
	mu    sync.Mutex
	saw   []string // "<proto> <method> <path>: <what>"
	realm func(r *http.Request) string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	_ = r.ParseForm()
	rec.mu.Lock()
	if a := r.Header.Get("Authorization"); a != "" {
		rec.saw = append(rec.saw, fmt.Sprintf("%s %s %s: Authorization %s", proto, r.Method, r.URL.Path, a))
	}
	if p := r.PostForm.Get("password"); p != "" {
		rec.saw = append(rec.saw, fmt.Sprintf("%s %s %s: password %s", proto, r.Method, r.URL.Path, p))
	}
	rec.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/token"):
		_ = json.NewEncoder(w).Encode(map[string]any{"token": "tok", "access_token": "tok", "expires_in": 300})
	case r.Header.Get("Authorization") == "Bearer tok", r.Header.Get("Authorization") == "Bearer regtok-"+secret:
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="svc"`, rec.realm(r)))
		w.WriteHeader(http.StatusUnauthorized)
	}
}

func (rec *recorder) leaked() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, s := range rec.saw {
		if strings.Contains(s, secret) || strings.Contains(s, "Basic ") {
			out = append(out, s)
		}
	}
	return out
}

// challenge runs the resolver's 401 dance once: request, AddResponses, request again.
func challenge(t *testing.T, a docker.Authorizer, client *http.Client, url string) int {
	t.Helper()
	ctx := context.Background()
	do := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err := a.Authorize(ctx, req); err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do()
	if resp.StatusCode != http.StatusUnauthorized {
		return resp.StatusCode
	}
	if err := a.AddResponses(ctx, []*http.Response{resp}); err != nil {
		return -1
	}
	return do().StatusCode
}

func TestAuthorizerRealmOnTheRegistry(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	rec.realm = func(*http.Request) string { return srv.URL + "/token" }
	host := strings.TrimPrefix(srv.URL, "http://")
	s, err := NewScope(&runtime.AuthConfig{Username: "u", Password: secret}, host)
	if err != nil {
		t.Fatal(err)
	}
	if got := challenge(t, s.Authorizer(srv.Client(), nil), srv.Client(), srv.URL+"/v2/x/manifests/v1"); got != http.StatusOK {
		t.Fatalf("status %d, want 200", got)
	}
	if len(rec.leaked()) == 0 {
		t.Fatal("the registry's own realm did not get the credentials")
	}
}

func TestAuthorizerRealmElsewhereIsAnonymous(t *testing.T) {
	evil := &recorder{realm: func(*http.Request) string { return "" }}
	evilSrv := httptest.NewServer(evil)
	defer evilSrv.Close()
	rec := &recorder{realm: func(*http.Request) string { return evilSrv.URL + "/token" }}
	// Same IP, other port: still another host.
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, err := NewScope(&runtime.AuthConfig{Username: "u", Password: secret}, strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	challenge(t, s.Authorizer(srv.Client(), nil), srv.Client(), srv.URL+"/v2/x/manifests/v1")
	if l := evil.leaked(); len(l) > 0 {
		t.Fatalf("a realm on another host got credentials: %v", l)
	}
	if len(evil.saw) != 0 && !strings.Contains(strings.Join(evil.saw, ""), "Bearer") {
		t.Logf("realm requests: %v", evil.saw)
	}
}

// sniffListener serves TLS and plain HTTP on one port (first byte 0x16 = TLS handshake), so a
// client that downgrades a TLS registry's realm to http:// on the same host:port is observable.
type sniffListener struct {
	net.Listener
	conf *tls.Config
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	pc := peekedConn{Conn: c, r: br}
	if err == nil && b[0] == 0x16 {
		return tls.Server(pc, l.conf), nil
	}
	return pc, nil
}

func TestAuthorizerRealmDowngradeIsAnonymous(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(rec)
	srv.StartTLS() // for its certificate and client
	conf := srv.TLS
	addr := srv.Listener.Addr().String()
	srv.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot reuse %s: %v", addr, err)
	}
	hs := &http.Server{Handler: rec}
	go func() { _ = hs.Serve(sniffListener{Listener: ln, conf: conf}) }()
	defer hs.Close()
	rec.realm = func(*http.Request) string { return "http://" + addr + "/token" }

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	s, err := NewScope(&runtime.AuthConfig{Username: "u", Password: secret}, addr)
	if err != nil {
		t.Fatal(err)
	}
	challenge(t, s.Authorizer(client, nil), client, "https://"+addr+"/v2/x/manifests/v1")
	for _, l := range rec.leaked() {
		if strings.HasPrefix(l, "http ") {
			t.Fatalf("credentials sent in plain text to the downgraded realm: %s", l)
		}
	}
	// The same realm over https does get them (control).
	rec.realm = func(*http.Request) string { return "https://" + addr + "/token" }
	challenge(t, s.Authorizer(client, nil), client, "https://"+addr+"/v2/x/manifests/v1")
	if len(rec.leaked()) == 0 {
		t.Fatal("the https realm on the registry did not get the credentials")
	}
}

func TestAuthorizerRegistryToken(t *testing.T) {
	rec := &recorder{realm: func(*http.Request) string { return "" }}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	s, err := NewScope(&runtime.AuthConfig{RegistryToken: "regtok-" + secret}, host)
	if err != nil {
		t.Fatal(err)
	}
	if got := challenge(t, s.Authorizer(srv.Client(), nil), srv.Client(), srv.URL+"/v2/x/manifests/v1"); got != http.StatusOK {
		t.Fatalf("status %d, want 200 (token sent directly)", got)
	}
	for _, l := range rec.saw {
		if strings.Contains(l, "/token") {
			t.Fatalf("a token exchange happened: %s", l)
		}
	}
	// Another host never gets it.
	other := &recorder{}
	osrv := httptest.NewServer(other)
	defer osrv.Close()
	other.realm = func(*http.Request) string { return osrv.URL + "/token" }
	challenge(t, s.Authorizer(osrv.Client(), nil), osrv.Client(), osrv.URL+"/v2/x/manifests/v1")
	for _, l := range other.saw {
		if strings.Contains(l, secret) {
			t.Fatalf("registry token sent to another host: %s", l)
		}
	}
}

// TestAuthorizerRedirectSameHostOtherPort: net/http keeps Authorization on a redirect to the same
// host name on another port (moby#13811 class); the authorizer drops it for hosts the credentials
// are not for, as containerd's request.do calls Authorize from CheckRedirect.
func TestAuthorizerRedirectSameHostOtherPort(t *testing.T) {
	cdn := &recorder{realm: func(*http.Request) string { return "" }}
	cdnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdn.mu.Lock()
		if a := r.Header.Get("Authorization"); a != "" {
			cdn.saw = append(cdn.saw, "Authorization "+a)
		}
		cdn.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer cdnSrv.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, cdnSrv.URL+"/blob", http.StatusTemporaryRedirect)
	}))
	defer reg.Close()
	s, err := NewScope(&runtime.AuthConfig{Username: "u", Password: secret}, strings.TrimPrefix(reg.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Authorizer(reg.Client(), nil)
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		return a.Authorize(req.Context(), req)
	}}
	if got := challenge(t, a, client, reg.URL+"/v2/x/blobs/sha256:0"); got != http.StatusOK {
		t.Fatalf("status %d, want 200 from the CDN", got)
	}
	if len(cdn.saw) != 0 {
		t.Fatalf("the CDN on the same host name got %v", cdn.saw)
	}
}

func TestTokenClientKeepsCredentialsOnTheirOrigin(t *testing.T) {
	var hits []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	var realm *httptest.Server
	realm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
		case "/same":
			http.Redirect(w, r, realm.URL+"/final", http.StatusPermanentRedirect)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer realm.Close()
	c := TokenClient(realm.Client())

	post := func(path string) error {
		res, err := c.Post(realm.URL+path, "application/x-www-form-urlencoded", strings.NewReader("grant_type=password&password=secret"))
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	if err := post("/token"); err == nil || !strings.Contains(err.Error(), "redirected to another origin") {
		t.Errorf("POST form redirected to another origin: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, realm.URL+"/token", nil)
	req.SetBasicAuth("user", "secret")
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
		t.Error("GET with Basic followed a redirect to another origin")
	}
	if len(hits) != 0 {
		t.Errorf("credentials reached another origin: %v", hits)
	}
	// Without credentials, or on the same origin, redirects are followed.
	if res, err := c.Get(realm.URL + "/token"); err != nil || len(hits) != 1 {
		t.Errorf("anonymous GET: %v, hits %v", err, hits)
	} else {
		res.Body.Close()
	}
	if err := post("/same"); err != nil {
		t.Errorf("same-origin 308: %v", err)
	}

	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://r.example/token", "https://r.example:443/x", true},
		{"https://R.example/token", "https://r.example/x", true},
		{"https://r.example/token", "http://r.example/x", false},
		{"http://127.0.0.1:5000/token", "http://127.0.0.1:5001/token", false},
		{"http://127.0.0.1:80/token", "http://127.0.0.1/token", true},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if sameOrigin(a, b) != tc.same {
			t.Errorf("sameOrigin(%s, %s) = %v", tc.a, tc.b, !tc.same)
		}
	}
}
