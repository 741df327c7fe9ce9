package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/internal/testbin"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// The two "machines": the registry's end of the veth pair and the runtime's. Traffic to these
// addresses exists only inside the test's own namespaces.
const (
	registryIP = "10.213.0.1"
	runtimeIP  = "10.213.0.2"
	prefixLen  = "/30"

	// advertised is the registry's host name as the runtime knows it (B's hosts file).
	advertised = "registry.remote.criimage.test"
	// wrongName is advertised by a second registry and resolves nowhere in B.
	wrongName = "unresolvable.remote.criimage.test"
)

// registryInfo is the line `criimage registry -json` prints once it serves.
type registryInfo struct {
	Plain       string `json:"plain"`
	TLS         string `json:"tls"`
	TLSAddr     string `json:"tlsAddr"`
	TLSHostName string `json:"tlsHostName"`
	Foreign     string `json:"foreign"`
	OtherPort   string `json:"otherPort"`
	Remote      bool   `json:"remote"`
	Control     string `json:"control"`
	CAOut       string `json:"caOut"`
	Images      int    `json:"images"`
}

// TestRemoteRuntime: the fixture registry in namespace A listens on registryIP and advertises a
// host name; criimage serve in namespace B (where that name resolves to registryIP) pulls over
// the veth pair by the advertised name — plain HTTP, TLS verified with the generated CA by the
// advertised name, by the certificate's name and by the listen IP, bearer auth, the docker.io
// mirror, and the foreign host (foreign-layer URLs and blob redirects). A second registry that
// advertises a name B cannot resolve shows the pulls depend on the advertised name.
func TestRemoteRuntime(t *testing.T) {
	ns := newNamespaces(t, "r")
	bin := testbin.Criimage(t, "CRIIMAGE_NETNS_TEST_BIN")
	dir := shortTempDir(t)
	start := time.Now()

	t.Run("refused without opt-in", func(t *testing.T) {
		out, err := ns.exec(ns.a, bin, "registry", "-listen", registryIP).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "-allow-remote") {
			t.Fatalf("criimage registry -listen %s without -allow-remote: %v, want exit 2 naming -allow-remote; output:\n%s", registryIP, err, out)
		}
	})

	info := startRegistry(t, ns, bin, dir, "registry", advertised, "-ca-out", filepath.Join(dir, "ca.pem"))
	if host(t, info.Plain) != advertised || host(t, info.TLSAddr) != advertised || host(t, info.OtherPort) != advertised {
		t.Fatalf("endpoints not under the advertised host %s: %+v", advertised, info)
	}
	if host(t, info.Foreign) != registryIP || !info.Remote || info.Images == 0 {
		t.Fatalf("foreign host not on the listen IP %s, or not remote, or no catalog: %+v", registryIP, info)
	}
	ca, err := os.ReadFile(info.CAOut)
	if err != nil {
		t.Fatal(err)
	}
	wrong := startRegistry(t, ns, bin, dir, "wrong-registry", wrongName, "-catalog=false")

	// The runtime's certs.d trees, written from each registry's control API (on A's loopback)
	// by the same command a user runs.
	certs, wrongCerts := filepath.Join(dir, "certs.d"), filepath.Join(dir, "wrong-certs.d")
	for _, c := range []struct{ dir, control string }{{certs, info.Control}, {wrongCerts, wrong.Control}} {
		if out, err := ns.exec(ns.a, bin, "registry", "config", "containerd", "--dir", c.dir, "--control", c.control).CombinedOutput(); err != nil {
			t.Fatalf("criimage registry config containerd: %v\n%s", err, out)
		}
	}
	ns.writeRuntimeEtc(t, registryIP+" "+advertised+" "+info.TLSHostName)

	sock := filepath.Join(dir, "criimage.sock")
	startProcess(t, ns, ns.b, filepath.Join(dir, "serve.log"), bin, "serve", "-listen", "unix://"+sock,
		"-root", filepath.Join(dir, "root"), "-hosts-dir", certs+string(filepath.ListSeparator)+wrongCerts)
	conn, err := criendpoint.Dial("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	images := cri.NewImageServiceClient(conn)
	t.Logf("namespaces, two registries and the runtime up in %s", time.Since(start).Round(time.Millisecond))

	set, err := fixtures.Catalog(fixtures.Options{ForeignURL: info.Foreign})
	if err != nil {
		t.Fatal(err)
	}
	_, tlsPort, _ := net.SplitHostPort(info.TLSAddr)
	byIP := net.JoinHostPort(registryIP, tlsPort)
	user := &cri.AuthConfig{Username: auth.FixtureUser, Password: auth.FixturePassword}
	for _, c := range []struct {
		what, ref, image string
		auth             *cri.AuthConfig
	}{
		{"plain HTTP by the advertised name", info.Plain + "/anon/" + fixtures.NameSchema2OneLayer + ":latest", fixtures.NameSchema2OneLayer, nil},
		{"TLS by the advertised name", info.TLSAddr + "/anon/" + fixtures.NameOCI + ":latest", fixtures.NameOCI, nil},
		{"TLS by the certificate's name, bearer auth", info.TLS + "/token/small:latest", fixtures.NameAuthToken, user},
		{"a foreign layer from the foreign host", info.Plain + "/anon/foreign-layer:latest", fixtures.NameForeignLayer, nil},
		{"blobs redirected to the foreign host", info.Plain + "/cdn/small:latest", fixtures.NameCDN, nil},
		{"docker.io through the mirror", "docker.io/library/busybox:latest", fixtures.NameBusybox, nil},
	} {
		t.Run(c.what, func(t *testing.T) {
			expectPull(t, images, c.ref, set.MustImage(c.image).ID, c.auth)
		})
	}

	t.Run("TLS by the listen IP", func(t *testing.T) {
		ref := byIP + "/anon/" + fixtures.NameSchema2Layers + ":latest"
		// No hosts.toml for the IP yet: the system roots do not know the fixture CA.
		if _, err := pull(images, ref, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("PullImage(%s) without the CA: %v, want a certificate error", ref, err)
		}
		ep := runtimeconfig.Endpoints{Plain: info.Plain, TLS: byIP, TLSIP: byIP, CA: ca, AllowRemote: true}
		if _, err := runtimeconfig.WriteCertsDir(certs, ep, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
			t.Fatal(err)
		}
		expectPull(t, images, ref, set.MustImage(fixtures.NameSchema2Layers).ID, nil)
	})

	t.Run("wrong advertised name", func(t *testing.T) {
		if host(t, wrong.Plain) != wrongName {
			t.Fatalf("second registry's plain host %s, want it under %s", wrong.Plain, wrongName)
		}
		ref := wrong.Plain + "/anon/x:v1"
		_, err := pull(images, ref, nil)
		if err == nil || !strings.Contains(err.Error(), wrongName) {
			t.Fatalf("PullImage(%s) from a registry advertised under a name the runtime cannot resolve: %v, want an error naming %s", ref, err, wrongName)
		}
		t.Logf("as expected: %v", err)
	})
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

func pull(images cri.ImageServiceClient, ref string, a *cri.AuthConfig) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := images.PullImage(ctx, &cri.PullImageRequest{Image: &cri.ImageSpec{Image: ref}, Auth: a})
	return resp.GetImageRef(), err
}

// expectPull pulls ref and checks that ImageStatus knows it under the catalog's image ID.
func expectPull(t *testing.T, images cri.ImageServiceClient, ref, wantID string, a *cri.AuthConfig) {
	t.Helper()
	start := time.Now()
	got, err := pull(images, ref, a)
	if err != nil {
		t.Fatalf("PullImage(%s): %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := images.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("ImageStatus(%s): %v", ref, err)
	}
	if id := st.GetImage().GetId(); id != wantID || got != wantID {
		t.Fatalf("%s: PullImage returned %q, ImageStatus ID %q; want the catalog's %q", ref, got, id, wantID)
	}
	t.Logf("pulled %s in %s", ref, time.Since(start).Round(time.Millisecond))
}

func host(t *testing.T, hostPortOrURL string) string {
	t.Helper()
	hp := strings.TrimPrefix(hostPortOrURL, "http://")
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatalf("endpoint %q: %v", hostPortOrURL, err)
	}
	return h
}

// ---- namespaces ------------------------------------------------------------------------------

// namespaces are a test's two network namespaces: a (the registry's machine) and b (the
// runtime's), named after the test process's pid and a tag per test, joined by a veth pair.
type namespaces struct {
	ip   string // the ip command
	a, b string
}

// newNamespaces creates the namespaces, or skips the test where that is impossible (not Linux,
// not root, no iproute2, ip netns refused). Everything it creates is removed in cleanup, also
// after a failure.
func newNamespaces(t *testing.T, tag string) namespaces {
	t.Helper()
	if runtime.GOOS != "linux" {
		skip(t, "network namespaces are Linux only")
	}
	if os.Geteuid() != 0 {
		skip(t, "creating network namespaces needs root (run make netns-test as root)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		skip(t, "no ip command (iproute2) to create network namespaces")
	}
	pid := os.Getpid()
	ns := namespaces{ip: ip, a: fmt.Sprintf("criimage-%s-a-%d", tag, pid), b: fmt.Sprintf("criimage-%s-b-%d", tag, pid)}
	etcDir := filepath.Join("/etc/netns", ns.b)
	_, statErr := os.Stat("/etc/netns")
	createdEtcNetns := errors.Is(statErr, os.ErrNotExist)
	t.Cleanup(func() {
		for _, n := range []string{ns.a, ns.b} {
			if out, err := exec.Command(ip, "netns", "delete", n).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
				t.Errorf("ip netns delete %s: %v: %s", n, err, out)
			}
		}
		if err := os.RemoveAll(etcDir); err != nil {
			t.Errorf("removing %s: %v", etcDir, err)
		}
		if createdEtcNetns {
			_ = os.Remove("/etc/netns") // only if empty: another user may have added theirs since
		}
	})
	if out, err := exec.Command(ip, "netns", "add", ns.a).CombinedOutput(); err != nil {
		skip(t, "network namespaces are unavailable here (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	vethA, vethB := fmt.Sprintf("cr%sa%d", tag, pid), fmt.Sprintf("cr%sb%d", tag, pid)
	for _, args := range [][]string{
		{"netns", "add", ns.b},
		// Created directly inside the namespaces: the root namespace never sees the pair.
		{"link", "add", vethA, "netns", ns.a, "type", "veth", "peer", "name", vethB, "netns", ns.b},
		{"-n", ns.a, "addr", "add", registryIP + prefixLen, "dev", vethA},
		{"-n", ns.b, "addr", "add", runtimeIP + prefixLen, "dev", vethB},
		{"-n", ns.a, "link", "set", vethA, "up"},
		{"-n", ns.b, "link", "set", vethB, "up"},
		// Loopback up: the registry's control API listens on A's 127.0.0.1.
		{"-n", ns.a, "link", "set", "lo", "up"},
		{"-n", ns.b, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return ns
}

// skip skips the test, saying why — or fails it when $CRIIMAGE_NETNS_TEST_REQUIRE is set (CI,
// where a skip would hide that the test never ran).
func skip(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv("CRIIMAGE_NETNS_TEST_REQUIRE") != "" {
		t.Fatalf("cannot run: %s (and CRIIMAGE_NETNS_TEST_REQUIRE is set)", why)
	}
	t.Skipf("skipped: %s", why)
}

// exec is a command run in namespace n, with no proxy settings (a proxy from the environment
// would take the pulls elsewhere).
func (ns namespaces) exec(n string, args ...string) *exec.Cmd {
	cmd := exec.Command(ns.ip, append([]string{"netns", "exec", n}, args...)...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	return cmd
}

// writeRuntimeEtc writes the hosts file (and a resolv.conf with no reachable nameserver) that
// `ip netns exec` bind-mounts over /etc/hosts and /etc/resolv.conf for namespace b only.
func (ns namespaces) writeRuntimeEtc(t *testing.T, hostsLine string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", ns.b)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"hosts":       "# criimage netns test: the runtime's machine\n127.0.0.1 localhost\n" + hostsLine + "\n",
		"resolv.conf": "# criimage netns test: no DNS, names resolve from hosts only\nnameserver 127.0.0.1\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ---- processes -------------------------------------------------------------------------------

// startRegistry runs `criimage registry` in namespace a on registryIP, advertised as name, and
// returns the endpoints it printed.
func startRegistry(t *testing.T, ns namespaces, bin, dir, logName, name string, extra ...string) registryInfo {
	t.Helper()
	args := append([]string{bin, "registry", "-listen", registryIP, "-advertise", name, "-allow-remote", "-json"}, extra...)
	line := startProcess(t, ns, ns.a, filepath.Join(dir, logName+".log"), args...)
	var info registryInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("criimage registry printed %q: %v", line, err)
	}
	return info
}

// startProcess starts args in namespace n, waits for its first line on stdout and returns it. The
// process's stderr goes to logPath (shown if it fails to start); cleanup stops it with SIGTERM
// (SIGKILL after 15 s).
func startProcess(t *testing.T, ns namespaces, n, logPath string, args ...string) string {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.exec(n, args...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", args[1], err, readLog(logPath))
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 15 s of SIGTERM", args[1])
		}
		logFile.Close()
	})
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		if line == "" {
			t.Fatalf("%s printed nothing:\n%s", strings.Join(args[1:], " "), readLog(logPath))
		}
		return line
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not start within 2 minutes:\n%s", strings.Join(args[1:], " "), readLog(logPath))
	}
	return ""
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// shortTempDir is a temp dir with a short path: the runtime's unix socket lives there.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "criimage-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}
