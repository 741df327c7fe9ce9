package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/registry/runtimeconfig"
)

// Daemon is one runtime under measurement: a process serving CRI on a unix socket.
type Daemon struct {
	Name     string // "reference", "containerd 2.4.2", …
	Kind     string // "reference" | "containerd"
	Version  string // containerd version ("" for the reference)
	Endpoint string
	PID      int
	Images   runtime.ImageServiceClient

	conn  *grpc.ClientConn
	dir   string
	stop  func() error
	cmd   *exec.Cmd
	errLn *bytes.Buffer
}

// StartReference runs `bin serve` under dir with the given certs.d root and snapshotter.
func StartReference(ctx context.Context, bin, dir, hostsDir, snapshotter string) (*Daemon, error) {
	sock := filepath.Join(dir, "criimage.sock")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "-listen", "unix://"+sock, "-root", filepath.Join(dir, "root"),
		"-hosts-dir", hostsDir, "-snapshotter", snapshotter, "-log-level", "warn")
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "serving ") {
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("criimage serve exited before serving: %s", stderr.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("criimage serve not ready after 30s")
	}
	d := &Daemon{Name: "reference", Kind: "reference", Endpoint: "unix://" + sock, PID: cmd.Process.Pid, dir: dir, cmd: cmd, errLn: &stderr}
	d.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			return <-done
		}
	}
	return d, d.dial()
}

// ContainerdBin finds the binary of a containerd version installed by .ci/install-peers.sh.
func ContainerdBin(version string) (string, error) {
	var cands []string
	switch {
	case strings.HasPrefix(version, "1."):
		cands = []string{"/usr/bin/containerd"}
	default:
		cands = []string{"/opt/criimage/containerd-v" + version + "/bin/containerd", "/root/go/bin/containerd"}
	}
	for _, c := range cands {
		out, err := exec.Command(c, "--version").Output()
		if err == nil && (strings.Contains(string(out), " "+version) || strings.Contains(string(out), " v"+version)) {
			return c, nil
		}
	}
	return "", fmt.Errorf("containerd %s not found (tried %s): run .ci/install-peers.sh", version, strings.Join(cands, ", "))
}

// CrictlBin finds crictl (containerd-daemon.sh uses it to wait for CRI).
func CrictlBin() (string, error) {
	for _, c := range []string{"/opt/criimage/bin/crictl", "/root/go/bin/crictl"} {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p, nil
	}
	return "", errors.New("no crictl: run .ci/install-peers.sh")
}

// StartContainerd writes a config with registry/runtimeconfig (own root, state, socket; CRI
// config_path = certsDir) and starts the daemon with hack/containerd-daemon.sh (loopback-only
// proxies, bounded readiness wait).
func StartContainerd(ctx context.Context, repoRoot, version, dir, certsDir, snapshotter string) (*Daemon, error) {
	bin, err := ContainerdBin(version)
	if err != nil {
		return nil, err
	}
	crictl, err := CrictlBin()
	if err != nil {
		return nil, err
	}
	c, err := runtimeconfig.WriteContainerdConfig(runtimeconfig.ContainerdOptions{
		Version: version, Dir: filepath.Join(dir, "cd"), CertsDirs: []string{certsDir}, Snapshotter: snapshotter,
	})
	if err != nil {
		return nil, err
	}
	env := fmt.Sprintf("CONTAINERD_BIN=%q\nCONTAINERD_CONFIG=%q\nCONTAINERD_LOG=%q\nCONTAINERD_SOCKET=%q\nCONTAINERD_ENDPOINT=%q\nCRICTL_BIN=%q\nREADY_TIMEOUT=30\nNO_PROXY_HOSTS=%q\n",
		bin, c.ConfigFile, c.LogFile, c.Socket, c.Endpoint, crictl, "localhost,127.0.0.0/8,::1")
	if err := os.WriteFile(filepath.Join(dir, "daemon.env"), []byte(env), 0o644); err != nil {
		return nil, err
	}
	script := filepath.Join(repoRoot, "hack", "containerd-daemon.sh")
	if out, err := exec.CommandContext(ctx, "bash", script, "start", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("containerd-daemon.sh start: %v: %s", err, out)
	}
	pb, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pb)))
	if err != nil {
		return nil, err
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "containerd" {
		return nil, fmt.Errorf("pid %d is %q, not containerd", pid, strings.TrimSpace(string(comm)))
	}
	d := &Daemon{Name: "containerd " + version, Kind: "containerd", Version: version, Endpoint: c.Endpoint, PID: pid, dir: dir}
	d.stop = func() error {
		out, err := exec.Command("bash", script, "stop", dir).CombinedOutput()
		if err != nil {
			// Never leave our daemon behind: kill it by its pid (ours, started above).
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "containerd" {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return fmt.Errorf("containerd-daemon.sh stop: %v: %s", err, out)
		}
		return nil
	}
	return d, d.dial()
}

func (d *Daemon) dial() error {
	conn, err := grpc.NewClient(d.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		_ = d.Close()
		return err
	}
	d.conn = conn
	d.Images = runtime.NewImageServiceClient(conn)
	return nil
}

// Close stops the daemon, unmounts anything it left under its dir and removes the dir.
func (d *Daemon) Close() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.stop != nil {
		errs = append(errs, d.stop())
	}
	errs = append(errs, unmountUnder(d.dir), os.RemoveAll(d.dir))
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var ms []string
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			ms = append(ms, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ms)))
	var errs []error
	for _, m := range ms {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// ResetPeakRSS resets the process's VmHWM (clear_refs 5, Linux ≥ 4.0).
func (d *Daemon) ResetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.PID), []byte("5"), 0)
}

// PeakRSS reads VmHWM in bytes.
func (d *Daemon) PeakRSS() (int64, error) { return procStatus(d.PID, "VmHWM:") }

func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(ln, key) {
			f := strings.Fields(ln)
			if len(f) < 2 {
				break
			}
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}
