//go:build unix

package ginkgopar

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownGroup starts cmd as the leader of a new process group, so that the worker and whatever it
// starts can be signalled together.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// interruptGroup sends SIGINT to p's process group: ginkgo's interrupt (the running spec is
// interrupted, cleanup and reports run), as Ctrl-C at a terminal would.
func interruptGroup(p *os.Process) error {
	return signalGroup(p, syscall.SIGINT)
}

// killGroup sends SIGKILL to p's process group.
func killGroup(p *os.Process) error {
	return signalGroup(p, syscall.SIGKILL)
}

func signalGroup(p *os.Process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
