// Package impl is the reference CRI ImageService: containerd's core storage embedded
// (impl/backend), pulls by impl/pull, the RPCs by impl/service, served over gRPC on a unix
// socket (or loopback TCP). Start wires them; Server.Close takes them down in order.
package impl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/pull"
	"github.com/criimage/criimage/impl/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config of the reference ImageService.
type Config struct {
	Root        string   // backend directory (meta.db, content, snapshots)
	HostsDirs   []string // certs.d roots (hosts.toml), tried in order
	Snapshotter string   // "native" (default) | "overlayfs"
	Pinned      []string // references (or IDs) reported pinned=true
	// RuntimeHandlers maps ImageSpec.runtime_handler → snapshotter; unknown handlers are refused.
	RuntimeHandlers     map[string]string
	PullProgressTimeout time.Duration // 0 = none
	StreamBatchSize     int           // 0 = 5000
	Logger              *slog.Logger  // nil = discard
	Version             string        // reported as runtime_version ("" = "devel")
}

// Server is a running ImageService.
type Server struct {
	endpoint string
	sockPath string // removed at Close (unix only)
	b        *backend.Backend
	srv      *grpc.Server
	served   chan error
	log      *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// gracePeriod is how long Close lets in-flight RPCs finish before cancelling them.
const gracePeriod = 2 * time.Second

// Start opens the backend under cfg.Root (reclaiming what a previous process left: leases of
// interrupted pulls, records of unreadable images), and serves runtime.v1 ImageService plus
// RuntimeService Version/Status on listen: "unix:///abs/path" or "tcp://127.0.0.1:port" (loopback
// only; port 0 picks one).
func Start(ctx context.Context, listen string, cfg Config) (*Server, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	network, addr, err := parseListen(listen)
	if err != nil {
		return nil, err
	}
	if cfg.Root == "" {
		return nil, errors.New("impl: Config.Root is empty")
	}
	def := cfg.Snapshotter
	if def == "" {
		def = backend.Native
	}
	sns := []string{def}
	for _, sn := range cfg.RuntimeHandlers {
		sns = append(sns, sn)
	}
	b, err := backend.Open(ctx, cfg.Root, sns...)
	if err != nil {
		return nil, fmt.Errorf("impl: %w", err)
	}
	p := pull.New(b, pull.Options{
		HostsDirs: cfg.HostsDirs, ProgressTimeout: cfg.PullProgressTimeout, Snapshotter: def, Logger: lg,
	})
	svc, err := service.New(ctx, service.Config{
		Backend: b, Puller: p, DefaultSnapshotter: def, RuntimeHandlers: cfg.RuntimeHandlers,
		Pinned: cfg.Pinned, StreamBatchSize: cfg.StreamBatchSize, Version: cfg.Version, Logger: lg,
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("impl: %w", err)
	}
	lis, sockPath, err := listenOn(network, addr)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	srv := grpc.NewServer(
		grpc.WaitForHandlers(true),
		grpc.ChainUnaryInterceptor(logUnary(lg)),
		grpc.ChainStreamInterceptor(logStream(lg)),
	)
	runtime.RegisterImageServiceServer(srv, svc)
	runtime.RegisterRuntimeServiceServer(srv, svc.Runtime())
	s := &Server{b: b, srv: srv, served: make(chan error, 1), sockPath: sockPath, log: lg}
	if network == "unix" {
		s.endpoint = "unix://" + sockPath
	} else {
		s.endpoint = "tcp://" + lis.Addr().String()
	}
	go func() { s.served <- srv.Serve(lis) }()
	lg.Info("serving CRI ImageService", "endpoint", s.endpoint, "root", b.Root, "snapshotter", def)
	return s, nil
}

// Endpoint is where clients connect: "unix:///…" or "tcp://127.0.0.1:PORT".
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops serving (in-flight RPCs get gracePeriod, then are cancelled and awaited), then
// closes the backend and removes the socket. Later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	stopped := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(gracePeriod)
	select {
	case <-stopped:
	case <-t.C:
		s.srv.Stop()
		<-stopped
	}
	t.Stop()
	var errs []error
	if err := <-s.served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		errs = append(errs, fmt.Errorf("impl: serve: %w", err))
	}
	if err := s.b.Close(); err != nil {
		errs = append(errs, fmt.Errorf("impl: %w", err))
	}
	if s.sockPath != "" {
		if err := os.Remove(s.sockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("impl: remove socket: %w", err))
		}
	}
	s.log.Info("stopped", "endpoint", s.endpoint)
	return errors.Join(errs...)
}

// parseListen accepts "unix:///abs/path" and "tcp://HOST:PORT" with HOST a loopback address
// (127.0.0.0/8, ::1) or "localhost".
func parseListen(listen string) (network, addr string, err error) {
	u, err := url.Parse(listen)
	if err != nil {
		return "", "", fmt.Errorf("impl: listen address %q: %w", listen, err)
	}
	switch u.Scheme {
	case "unix":
		p := u.Path
		if u.Host != "" || !filepath.IsAbs(p) {
			return "", "", fmt.Errorf("impl: listen address %q: want unix:///absolute/path", listen)
		}
		return "unix", p, nil
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return "", "", fmt.Errorf("impl: listen address %q: %w", listen, err)
		}
		if host != "localhost" {
			ip, err := netip.ParseAddr(host)
			if err != nil {
				// The inet_aton shorthands ("127.1", "127.0.1", "2130706433") name loopback too.
				ip, err = parseIPv4Shorthand(host)
			}
			if err != nil || !ip.IsLoopback() {
				return "", "", fmt.Errorf("impl: listen address %q: tcp is allowed on loopback addresses only", listen)
			}
			host = ip.String()
		}
		return "tcp", net.JoinHostPort(host, port), nil
	default:
		return "", "", fmt.Errorf("impl: listen address %q: scheme must be unix or tcp", listen)
	}
}

// parseIPv4Shorthand parses the decimal forms inet_aton accepts besides a.b.c.d: "a" (32 bits),
// "a.b" (8.24) and "a.b.c" (8.8.16), as ping and curl do. Octal and hex parts are not accepted.
func parseIPv4Shorthand(s string) (netip.Addr, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return netip.Addr{}, fmt.Errorf("not an IPv4 shorthand: %q", s)
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return netip.Addr{}, fmt.Errorf("not an IPv4 shorthand: %q", s)
		}
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("not an IPv4 shorthand: %q", s)
		}
		vals[i] = v
	}
	last := vals[len(vals)-1]
	lastBits := uint(32 - 8*(len(vals)-1))
	if last >= 1<<lastBits {
		return netip.Addr{}, fmt.Errorf("not an IPv4 shorthand: %q", s)
	}
	n := last
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, fmt.Errorf("not an IPv4 shorthand: %q", s)
		}
		n |= v << (24 - 8*uint(i))
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), nil
}

// listenOn listens; for unix it creates the parent directory, replaces a stale socket (one
// nobody answers on) and refuses a live one or a non-socket file.
func listenOn(network, addr string) (net.Listener, string, error) {
	if network == "tcp" {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", fmt.Errorf("impl: listen on tcp %s: %w", addr, err)
		}
		return lis, "", nil
	}
	if err := os.MkdirAll(filepath.Dir(addr), 0o700); err != nil {
		return nil, "", fmt.Errorf("impl: socket directory: %w", err)
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, "", fmt.Errorf("impl: %s exists and is not a socket", addr)
		}
		if c, err := net.Dial("unix", addr); err == nil {
			c.Close()
			return nil, "", fmt.Errorf("impl: %s: another server is listening there", addr)
		}
		if err := os.Remove(addr); err != nil {
			return nil, "", fmt.Errorf("impl: remove stale socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", addr)
	if err != nil {
		return nil, "", fmt.Errorf("impl: listen on unix %s: %w", addr, err)
	}
	if err := os.Chmod(addr, 0o600); err != nil {
		lis.Close()
		return nil, "", fmt.Errorf("impl: socket permissions: %w", err)
	}
	return lis, addr, nil
}

// The interceptors log method, code and duration; never a request (PullImage carries
// credentials). Error messages come from the service and impl/pull, which keep secrets out.
func logUnary(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		logCall(ctx, lg, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(lg *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		logCall(ss.Context(), lg, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, lg *slog.Logger, method string, start time.Time, err error) {
	method = method[strings.LastIndex(method, "/")+1:]
	if err != nil {
		st := status.Convert(err)
		lg.LogAttrs(ctx, slog.LevelWarn, "rpc failed", slog.String("method", method), slog.String("code", st.Code().String()),
			slog.String("error", st.Message()), slog.Duration("duration", time.Since(start)))
		return
	}
	lg.LogAttrs(ctx, slog.LevelDebug, "rpc", slog.String("method", method), slog.Duration("duration", time.Since(start)))
}
