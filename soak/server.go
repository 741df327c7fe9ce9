package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// server is one `criimage serve` process on the run's root and socket.
type server struct {
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	is     runtime.ImageServiceClient
	stderr *syncBuffer
	exited chan error
}

// startServer starts serve and waits (bounded) until it says it is serving.
func (r *run) startServer(ctx context.Context) (*server, error) {
	stderr := &syncBuffer{}
	cmd := exec.Command(r.opts.Binary, "serve", "--listen", "unix://"+r.sock, "--root", r.root, "--log-level", "warn")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", r.opts.Binary, err)
	}
	s := &server{cmd: cmd, stderr: stderr, exited: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if ep, ok := strings.CutPrefix(sc.Text(), "serving "); ok {
				ready <- ep
			}
		}
		close(ready)
	}()
	go func() { s.exited <- cmd.Wait() }()
	var endpoint string
	select {
	case ep, ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("serve exited before serving: %s", tail(stderr.String()))
		}
		endpoint = ep
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("serve not ready within 30s: %s", tail(stderr.String()))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
	s.conn, err = grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	s.is = runtime.NewImageServiceClient(s.conn)
	return s, nil
}

// stop ends serve with SIGTERM (a clean shutdown) and waits.
func (s *server) stop() error {
	s.conn.Close()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			return fmt.Errorf("serve after SIGTERM: %w: %s", err, tail(s.stderr.String()))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("serve did not stop within 30s of SIGTERM")
	}
}

// kill ends serve with SIGKILL, as a crash would.
func (s *server) kill() {
	s.conn.Close()
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// syncBuffer is a buffer exec writes stderr into from its own goroutine while others read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
