// Package impl is the reference CRI ImageService: containerd's core storage embedded
// (impl/backend), pulls by impl/pull, the RPCs by impl/service, served over gRPC on a unix
// socket (or loopback TCP). Start wires them; Server.Close takes them down in order.
package impl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/pull"
	"github.com/criimage/criimage/impl/service"
	"github.com/criimage/criimage/internal/criendpoint"
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
	ep, err := criendpoint.ParseListen(listen)
	if err != nil {
		return nil, fmt.Errorf("impl: listen address: %w", err)
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
	lis, ep, err := criendpoint.Listen(ctx, ep)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	sockPath := ""
	if ep.Network == "unix" {
		sockPath = ep.Address
	}
	srv := grpc.NewServer(
		grpc.WaitForHandlers(true),
		grpc.ChainUnaryInterceptor(logUnary(lg)),
		grpc.ChainStreamInterceptor(logStream(lg)),
	)
	runtime.RegisterImageServiceServer(srv, svc)
	runtime.RegisterRuntimeServiceServer(srv, svc.Runtime())
	s := &Server{b: b, srv: srv, served: make(chan error, 1), sockPath: sockPath, log: lg}
	s.endpoint = ep.String()
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
	var errs []error
	if err := criendpoint.Stop(s.srv, s.served, gracePeriod); err != nil {
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
