//go:build !unix

package ginkgopar

import (
	"errors"
	"os"
	"os/exec"
)

// ownGroup does nothing here: without process groups a worker is stopped on its own.
func ownGroup(*exec.Cmd) {}

// interruptGroup kills p: there is no interrupt to send to another process here (a console's
// Ctrl-C reaches the workers by itself).
func interruptGroup(p *os.Process) error {
	return killGroup(p)
}

// killGroup kills p.
func killGroup(p *os.Process) error {
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
