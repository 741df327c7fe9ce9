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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/criimage/criimage/registry/runtimeconfig"
)

// Daemon is a runtime process the driver started in its own temp dir: a Target, plus what it
// takes to stop the process and remove the dir.
type Daemon struct {
	*Target

	dir  string
	stop func() error
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
	d := &Daemon{dir: dir}
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
	return d, d.dial(ReferenceName, "unix://"+sock, cmd.Process.Pid)
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
	d := &Daemon{dir: dir}
	d.stop = func() error {
		out, err := exec.Command("bash", script, "stop", dir).CombinedOutput()
		if err != nil {
			// Never leave our daemon behind: kill it by its pid (ours, started above).
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "containerd" {
				_ = killPID(pid)
			}
			return fmt.Errorf("containerd-daemon.sh stop: %v: %s", err, out)
		}
		return nil
	}
	return d, d.dial("containerd "+version, c.Endpoint, pid)
}

// dial connects d's Target; on failure it stops d.
func (d *Daemon) dial(name, endpoint string, pid int) error {
	t, err := DialTarget(name, endpoint, pid)
	if err != nil {
		_ = d.Close()
		return err
	}
	d.Target = t
	return nil
}

// Close stops the daemon, unmounts anything it left under its dir and removes the dir.
func (d *Daemon) Close() error {
	errs := []error{d.Target.Close()}
	if d.stop != nil {
		errs = append(errs, d.stop())
	}
	errs = append(errs, unmountUnder(d.dir), os.RemoveAll(d.dir))
	return errors.Join(errs...)
}
