package runtimeconfig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/version"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pelletier/go-toml/v2"
)

const tlsName = "registry.criimage.test"

// testRegistry is a real distribution registry (go-containerregistry's) on a plain and a TLS
// loopback listener, the TLS one with a certificate for tlsName signed by its own CA. It records
// the Host and path of every request.
type testRegistry struct {
	ep   Endpoints
	mu   sync.Mutex
	seen []string // "plain GET /v2/…?ns=…" / "tls …"
}

func (r *testRegistry) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func startTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	handler := func(listener string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			tr.mu.Lock()
			tr.seen = append(tr.seen, listener+" "+req.Method+" "+req.URL.RequestURI())
			tr.mu.Unlock()
			h.ServeHTTP(w, req)
		})
	}
	plain := httptest.NewServer(handler("plain"))
	t.Cleanup(plain.Close)

	caPEM, cert := testCA(t)
	tlsSrv := httptest.NewUnstartedServer(handler("tls"))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	plainHost := strings.TrimPrefix(plain.URL, "http://")
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	tr.ep = Endpoints{
		Plain:   plainHost,
		TLS:     net.JoinHostPort(tlsName, tlsPort),
		TLSIP:   tlsAddr,
		CA:      caPEM,
		Foreign: "http://127.0.0.2:1",
	}
	for _, repo := range []string{"anon/x:v1", "library/busybox:latest"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(plainHost + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	tr.mu.Lock()
	tr.seen = nil
	tr.mu.Unlock()
	return tr
}

func testCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtimeconfig test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: tlsName},
		DNSNames: []string{tlsName}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// resolverFor builds containerd v2.4.2's own resolver from a certs.d root, the way its CRI plugin
// does, with one change: tlsName resolves to 127.0.0.1 (instead of an /etc/hosts line).
func resolverFor(t *testing.T, certsDir string) docker.RegistryHosts {
	t.Helper()
	return config.ConfigureHosts(context.Background(), config.HostOptions{
		HostDir: config.HostDirFromRoot(certsDir),
		UpdateClient: func(c *http.Client) error {
			tr, ok := c.Transport.(*http.Transport)
			if !ok {
				t.Fatalf("unexpected transport %T", c.Transport)
			}
			d := &net.Dialer{Timeout: 5 * time.Second}
			tr.Proxy = nil
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if host == tlsName {
					addr = net.JoinHostPort("127.0.0.1", port)
				} else if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
					t.Errorf("resolver dialled a non-loopback address %q", addr)
					return nil, &net.AddrError{Err: "not loopback", Addr: addr}
				}
				return d.DialContext(ctx, network, addr)
			}
			return nil
		},
	})
}

func resolve(t *testing.T, hosts docker.RegistryHosts, ref string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := docker.NewResolver(docker.ResolverOptions{Hosts: hosts}).Resolve(ctx, ref)
	return err
}

func TestCertsDirDrivesContainerdResolver(t *testing.T) {
	reg := startTestRegistry(t)
	dir := t.TempDir()
	cd, err := WriteCertsDir(filepath.Join(dir, "certs.d"), reg.ep, CertsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"docker.io", reg.ep.Plain, reg.ep.TLS, reg.ep.TLSIP} {
		if _, ok := cd.Hosts[h]; !ok {
			t.Errorf("no hosts.toml for %s (have %v)", h, cd.Hosts)
		}
	}
	hosts := resolverFor(t, cd.Dir)

	// docker.io goes to the fixture's library/ namespace, as a mirror (ns=docker.io).
	if err := resolve(t, hosts, "docker.io/library/busybox:latest"); err != nil {
		t.Fatalf("docker.io through the mirror: %v", err)
	}
	if got := reg.requests(); len(got) == 0 || got[0] != "plain HEAD /v2/library/busybox/manifests/latest?ns=docker.io" {
		t.Fatalf("docker.io resolve: requests %q", got)
	}

	// The TLS host by name verifies against the fixture CA.
	if err := resolve(t, hosts, reg.ep.TLS+"/anon/x:v1"); err != nil {
		t.Fatalf("TLS host by name: %v", err)
	}
	// … and by IP (containerd 1.6 would otherwise talk plain HTTP to it).
	if err := resolve(t, hosts, reg.ep.TLSIP+"/anon/x:v1"); err != nil {
		t.Fatalf("TLS address: %v", err)
	}
	if err := resolve(t, hosts, reg.ep.Plain+"/anon/x:v1"); err != nil {
		t.Fatalf("plain host: %v", err)
	}
	// A miss on a fixture host is asked exactly once (no second, default endpoint).
	before := len(reg.requests())
	if err := resolve(t, hosts, reg.ep.TLS+"/anon/missing:v1"); err == nil {
		t.Fatal("resolving a missing image succeeded")
	}
	if n := len(reg.requests()) - before; n != 1 {
		t.Errorf("missing image on the TLS host: %d requests, want 1: %q", n, reg.requests()[before:])
	}

	// Without the certs.d tree the TLS host by name must fail verification: the CA matters.
	if err := resolve(t, resolverFor(t, t.TempDir()), reg.ep.TLS+"/anon/x:v1"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("TLS host without the CA: err = %v, want a certificate error", err)
	}
}

func TestCertsDirFiles(t *testing.T) {
	reg := startTestRegistry(t)
	cd, err := WriteCertsDir(t.TempDir(), reg.ep, CertsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for host, path := range cd.Hosts {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := toml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v\n%s", host, err, b)
		}
		// containerd 1.6 needs a host table in every file.
		if _, ok := m["host"].(map[string]any); !ok {
			t.Errorf("%s: no [host] table:\n%s", host, b)
		}
		server, _ := m["server"].(string)
		if !strings.HasPrefix(server, "http://127.0.0.1:") && !strings.HasPrefix(server, "https://") {
			t.Errorf("%s: server %q", host, server)
		}
		if ca, ok := m["ca"].(string); ok {
			got, err := os.ReadFile(ca)
			if err != nil || string(got) != string(reg.ep.CA) {
				t.Errorf("%s: ca %q does not hold the fixture CA (%v)", host, ca, err)
			}
		}
	}
	if ca, _ := os.ReadFile(filepath.Join(cd.Dir, "docker.io", "ca.crt")); ca != nil {
		t.Error("docker.io has a CA file but is plain HTTP")
	}
	// NoDockerIO leaves docker.io out (another registry owns the mirror).
	other, err := WriteCertsDir(t.TempDir(), reg.ep, CertsOptions{NoDockerIO: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Hosts[DockerIOHost]; ok {
		t.Error("NoDockerIO wrote docker.io")
	}
	if _, err := os.Stat(filepath.Join(other.Dir, DockerIOHost)); !os.IsNotExist(err) {
		t.Errorf("NoDockerIO: docker.io dir exists (%v)", err)
	}
	// Rewriting is idempotent and leaves no temp files behind.
	if _, err := WriteCertsDir(cd.Dir, reg.ep, CertsOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(cd.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") {
			t.Errorf("leftover temp file %s", p)
		}
		return nil
	})
}

func TestValidateRefusesNonLoopback(t *testing.T) {
	good := Endpoints{Plain: "127.0.0.1:5000", TLS: tlsName + ":5001", TLSIP: "127.0.0.1:5001", CA: []byte("x"), Foreign: "http://127.0.0.2:5002"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good endpoints: %v", err)
	}
	for name, mut := range map[string]func(*Endpoints){
		"plain external":   func(e *Endpoints) { e.Plain = "10.0.0.1:5000" },
		"plain name":       func(e *Endpoints) { e.Plain = "example.com:5000" },
		"plain no port":    func(e *Endpoints) { e.Plain = "127.0.0.1" },
		"plain empty":      func(e *Endpoints) { e.Plain = "" },
		"tls addr extern":  func(e *Endpoints) { e.TLSIP = "192.0.2.1:5001" },
		"tls without ca":   func(e *Endpoints) { e.CA = nil },
		"tls half":         func(e *Endpoints) { e.TLSIP = "" },
		"foreign external": func(e *Endpoints) { e.Foreign = "http://203.0.113.7:80" },
	} {
		e := good
		mut(&e)
		if err := e.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, e)
		}
		if _, err := WriteCertsDir(t.TempDir(), e, CertsOptions{}); err == nil {
			t.Errorf("%s: WriteCertsDir accepted it", name)
		}
	}
}

func TestCRIOConfig(t *testing.T) {
	reg := startTestRegistry(t)
	out, err := WriteCRIOConfig(reg.ep, CRIOOptions{Dir: t.TempDir(), Username: "criimage", Password: "criimage-password"})
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		Unqualified []string `toml:"unqualified-search-registries"`
		Registry    []struct {
			Prefix   string `toml:"prefix"`
			Location string `toml:"location"`
			Insecure bool   `toml:"insecure"`
		} `toml:"registry"`
	}
	b, err := os.ReadFile(out.RegistriesConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal(b, &rc); err != nil {
		t.Fatalf("registries.conf: %v\n%s", err, b)
	}
	if len(rc.Unqualified) != 1 || rc.Unqualified[0] != "docker.io" {
		t.Errorf("unqualified-search-registries = %q", rc.Unqualified)
	}
	locs := map[string]bool{}
	for _, r := range rc.Registry {
		if r.Prefix == "docker.io" && (r.Location != reg.ep.Plain || !r.Insecure) {
			t.Errorf("docker.io → %q insecure=%v, want the plain fixture host", r.Location, r.Insecure)
		}
		if r.Location == reg.ep.TLS && r.Insecure {
			t.Error("TLS host marked insecure")
		}
		locs[r.Location] = true
	}
	for _, h := range []string{reg.ep.Plain, reg.ep.TLS, reg.ep.TLSIP} {
		if !locs[h] {
			t.Errorf("no [[registry]] for %s", h)
		}
	}
	var af struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err = os.ReadFile(out.AuthFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &af); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out.AuthFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("auth file mode %v, want 0600", fi.Mode().Perm())
	}
	want := base64.StdEncoding.EncodeToString([]byte("criimage:criimage-password"))
	for _, h := range []string{reg.ep.Plain, reg.ep.TLS, reg.ep.TLSIP} {
		if af.Auths[h].Auth != want {
			t.Errorf("auth for %s missing or wrong", h)
		}
	}
	if ca, err := os.ReadFile(filepath.Join(out.CertsDir, reg.ep.TLS, "ca.crt")); err != nil || string(ca) != string(reg.ep.CA) {
		t.Errorf("CRI-O certs.d CA for %s: %v", reg.ep.TLS, err)
	}
	if _, err := WriteCRIOConfig(reg.ep, CRIOOptions{Dir: t.TempDir(), Username: "u"}); err == nil {
		t.Error("username without password accepted")
	}
}

func TestContainerdConfigLoadsInContainerd2(t *testing.T) {
	dir := t.TempDir()
	c, err := WriteContainerdConfig(ContainerdOptions{
		Version: "2.4.2", Dir: dir, Snapshotter: "native",
		RuntimeHandlers:     map[string]string{"fast": "overlayfs"},
		PinnedImages:        map[string]string{"extra": "docker.io/library/busybox:pinned"},
		PullProgressTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg srvconfig.Config
	cfg.Version = version.ConfigVersion // migrate to what this containerd runs
	if err := srvconfig.LoadConfig(context.Background(), c.ConfigFile, &cfg); err != nil {
		t.Fatalf("containerd v2.4.2 rejects the config: %v", err)
	}
	if cfg.Root != c.Root || cfg.State != c.State || cfg.TempDir != filepath.Join(dir, "tmp") {
		t.Errorf("root/state/temp = %q %q %q", cfg.Root, cfg.State, cfg.TempDir)
	}
	if len(cfg.Imports) != 0 {
		t.Errorf("imports = %q: the daemon would read /etc/containerd/conf.d", cfg.Imports)
	}
	get := func(path ...string) any {
		var v any = cfg.Plugins
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		}
		return v
	}
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"io.containerd.server.v1.grpc", "address"}, c.Socket}, // migrated from [grpc]
		{[]string{"io.containerd.cri.v1.images", "snapshotter"}, "native"},
		{[]string{"io.containerd.cri.v1.images", "registry", "config_path"}, filepath.Join(dir, "certs.d")},
		{[]string{"io.containerd.cri.v1.images", "pinned_images", "sandbox"}, DefaultSandboxImage},
		{[]string{"io.containerd.cri.v1.images", "pinned_images", "extra"}, "docker.io/library/busybox:pinned"},
		{[]string{"io.containerd.cri.v1.images", "image_pull_progress_timeout"}, "30s"},
		{[]string{"io.containerd.cri.v1.runtime", "containerd", "runtimes", "fast", "snapshotter"}, "overlayfs"},
		{[]string{"io.containerd.transfer.v1.local", "config_path"}, filepath.Join(dir, "certs.d")},
		{[]string{"io.containerd.internal.v1.opt", "path"}, filepath.Join(dir, "opt")},
	} {
		if got := get(tc.path...); got != tc.want {
			t.Errorf("%s = %v, want %v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
	ucs, _ := get("io.containerd.transfer.v1.local", "unpack_config").([]any)
	if len(ucs) == 0 || ucs[0].(map[string]any)["snapshotter"] != "native" {
		t.Errorf("transfer unpack_config = %v, want an entry for native (#11606)", ucs)
	}
	disabled := strings.Join(cfg.DisabledPlugins, " ")
	if !strings.Contains(disabled, "io.containerd.nri.v1.nri") {
		t.Errorf("NRI not disabled (it would open /var/run/nri/nri.sock): %s", disabled)
	}
	assertUnder(t, c.ConfigFile, dir)
}

func TestContainerdConfig16(t *testing.T) {
	dir := t.TempDir()
	c, err := WriteContainerdConfig(ContainerdOptions{Version: "1.6.20", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int
		Root    string
		State   string
		Imports []string
		GRPC    struct{ Address string } `toml:"grpc"`
		Plugins struct {
			CRI struct {
				SandboxImage string `toml:"sandbox_image"`
				Containerd   struct{ Snapshotter string }
				Registry     struct {
					ConfigPath string `toml:"config_path"`
				}
			} `toml:"io.containerd.grpc.v1.cri"`
		}
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if cfg.Version != 2 || cfg.Root != c.Root || cfg.State != c.State || cfg.GRPC.Address != c.Socket {
		t.Errorf("version/root/state/grpc = %d %q %q %q", cfg.Version, cfg.Root, cfg.State, cfg.GRPC.Address)
	}
	if cfg.Plugins.CRI.Containerd.Snapshotter != "overlayfs" || cfg.Plugins.CRI.Registry.ConfigPath != filepath.Join(dir, "certs.d") ||
		cfg.Plugins.CRI.SandboxImage != DefaultSandboxImage {
		t.Errorf("cri plugin = %+v", cfg.Plugins.CRI)
	}
	if strings.Contains(string(b), "io.containerd.cri.v1.") {
		t.Error("1.6 config carries 2.x plugin names")
	}
	assertUnder(t, c.ConfigFile, dir)
	for _, o := range []ContainerdOptions{
		{Version: "1.6.20", Dir: dir, LocalImagePull: true},
		{Version: "1.6.20", Dir: dir, NoPullProgressTimeout: true},
		{Version: "2.4.2", Dir: dir, NoPullProgressTimeout: true, PullProgressTimeout: time.Second},
		{Version: "2.4.2", Dir: dir, PullProgressTimeout: -time.Second},
	} {
		if _, err := WriteContainerdConfig(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
	c0, err := WriteContainerdConfig(ContainerdOptions{Version: "2.4.2", Dir: t.TempDir(), NoPullProgressTimeout: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(c0.ConfigFile); !strings.Contains(string(b), "image_pull_progress_timeout = '0s'") {
		t.Errorf("NoPullProgressTimeout did not write 0s:\n%s", b)
	}
	for _, v := range []string{"", "3.0.0", "1.5.9", "x"} {
		if _, err := WriteContainerdConfig(ContainerdOptions{Version: v, Dir: dir}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	if _, err := WriteContainerdConfig(ContainerdOptions{Version: "2.4.2", Dir: "/" + strings.Repeat("d", 100)}); err == nil {
		t.Error("over-long socket path accepted")
	}
}

// assertUnder checks that every absolute path in the config file lies under dir: the daemon must
// not touch /var/lib/containerd, /run/containerd, /opt/containerd, /etc/containerd, ….
func assertUnder(t *testing.T, file, dir string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if strings.HasPrefix(x, "/") && !strings.HasPrefix(x, dir+"/") {
				t.Errorf("path %q outside %s", x, dir)
			}
		}
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	walk(m)
}
