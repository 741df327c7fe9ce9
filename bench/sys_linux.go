package bench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/criimage/criimage/internal/criendpoint"
)

// syncFS flushes every file system, so that one runtime's writes do not land in the next one's
// timed pull.
func syncFS() { syscall.Sync() }

// killPID sends SIGKILL to pid.
func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// peerPID is the process serving a unix socket endpoint on this machine: the SO_PEERCRED
// credentials of a connection, which name the process that called listen() (0 when it lives in
// a pid namespace this process cannot see).
func peerPID(e criendpoint.Endpoint) (int, error) {
	if e.Network != "unix" {
		return 0, fmt.Errorf("%s: the serving process is known only for unix sockets", e)
	}
	c, err := net.Dial("unix", e.Address)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("SO_PEERCRED of %s: %w", e, cerr)
	}
	return int(cred.Pid), nil
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
