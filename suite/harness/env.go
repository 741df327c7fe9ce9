// Package harness is what every conformance spec stands on: the suite-level Env (configuration,
// the in-process fixture registry, the CRI connections, the secret scanner) and the per-spec
// helpers (unique repositories, pulls, status, cleanup, journal transcripts).
//
// Env is the one piece of suite-level state; it is created by the entry point (go test or
// `criimage test`) and handed to specs.Register, never stored in a package variable.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/suite/config"
)

// Target is how an entry point provides a target the suite starts itself (the embedded
// reference). Only process 1 of a parallel run starts it; the others connect to Endpoint.
type Target interface {
	Endpoint() string
	Close() error
}

// StartFunc starts an embedded target. hostsDir is the registry config dir the suite will write.
type StartFunc func(ctx context.Context, hostsDir string) (Target, error)

// RestartFunc restarts the target in place (same endpoint, same state).
type RestartFunc func(ctx context.Context) error

// Env is the suite-level state of one process.
type Env struct {
	Cfg *config.Config

	// Start, if set, starts the target when Cfg.ImageEndpoint is empty (go test entry).
	Start StartFunc
	// Restart, if set, overrides the restart=CMD feature (the embedded reference restarts in-process).
	Restart RestartFunc

	// Set up by Setup.
	Reg     *registry.Registry
	Images  runtime.ImageServiceClient
	Runtime runtime.RuntimeServiceClient // nil without --runtime-endpoint
	// Nonce makes repository names unique per run, so that reruns against a persistent target
	// never meet a previous run's images.
	Nonce   string
	Process int

	Secrets *SecretScanner

	conns  []*grpc.ClientConn
	target Target
	ownDir string // a registry config dir StartTarget created
	// What WriteHostsConfig changed in Cfg.RegistryConfigDir: this process's registry entries
	// (undone by Teardown) and the docker.io mirror entry (process 1; undone by StopTarget, after
	// every process is done).
	hostsOwn, hostsMirror *HostsChange
}

// NewEnv returns an Env for cfg; call Setup in BeforeSuite.
func NewEnv(cfg *config.Config) *Env {
	return &Env{Cfg: cfg, Secrets: NewSecretScanner()}
}

// Shared is what process 1 tells the other processes of a parallel run.
type Shared struct {
	Endpoint  string `json:"endpoint"`
	ConfigDir string `json:"configDir,omitempty"`
	// RuntimeEndpoint is set for an embedded target that serves RuntimeService too.
	RuntimeEndpoint string `json:"runtimeEndpoint,omitempty"`
}

// StartTarget runs on process 1 only: it starts the embedded target if there is no endpoint (with
// a fresh registry config dir if none was given) and returns what every process needs.
func (e *Env) StartTarget(ctx context.Context) ([]byte, error) {
	sh := Shared{Endpoint: e.Cfg.ImageEndpoint, ConfigDir: e.Cfg.RegistryConfigDir}
	if sh.Endpoint == "" {
		if e.Start == nil {
			return nil, errors.New("no --image-endpoint given (and no embedded target in this binary)")
		}
		if sh.ConfigDir == "" {
			dir, err := os.MkdirTemp("", "criimage-hosts-")
			if err != nil {
				return nil, err
			}
			sh.ConfigDir = dir
			e.ownDir = dir
		}
		t, err := e.Start(ctx, sh.ConfigDir)
		if err != nil {
			return nil, fmt.Errorf("start embedded target: %w", err)
		}
		e.target = t
		sh.Endpoint = t.Endpoint()
		sh.RuntimeEndpoint = t.Endpoint() // the reference also serves RuntimeService Version
	}
	return json.Marshal(sh)
}

// StopTarget closes a target started by StartTarget.
func (e *Env) StopTarget() error {
	err := e.hostsMirror.Undo() // process 1's docker.io entry, now that every process is done
	if e.target != nil {
		err = errors.Join(err, e.target.Close())
	}
	if e.ownDir != "" {
		err = errors.Join(err, os.RemoveAll(e.ownDir))
	}
	return err
}

// Setup connects to endpoint, starts this process's fixture registry and writes its hosts config.
func (e *Env) Setup(ctx context.Context, shared []byte, process int) error {
	var sh Shared
	if err := json.Unmarshal(shared, &sh); err != nil {
		return err
	}
	endpoint := sh.Endpoint
	e.Cfg.ImageEndpoint = endpoint
	e.Cfg.RegistryConfigDir = sh.ConfigDir
	if sh.RuntimeEndpoint != "" && e.Cfg.RuntimeEndpoint == "" {
		e.Cfg.RuntimeEndpoint = sh.RuntimeEndpoint
	}
	e.Process = process
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.Nonce = hex.EncodeToString(b[:])

	conn, err := Dial(endpoint, e.Secrets)
	if err != nil {
		return fmt.Errorf("image endpoint %s: %w", endpoint, err)
	}
	e.conns = append(e.conns, conn)
	e.Images = runtime.NewImageServiceClient(conn)
	// The connect-time probe kubelet's client uses (CV-07): without it, every spec would fail on
	// its own, slowly.
	pctx, cancel := context.WithTimeout(ctx, e.Cfg.RPCTimeout)
	_, err = e.Images.ImageFsInfo(pctx, &runtime.ImageFsInfoRequest{}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return fmt.Errorf("the image endpoint %s does not answer ImageFsInfo (is the runtime running, and is this its CRI socket?): %w", endpoint, err)
	}
	if e.Cfg.RuntimeEndpoint != "" {
		rc, err := Dial(e.Cfg.RuntimeEndpoint, e.Secrets)
		if err != nil {
			return fmt.Errorf("runtime endpoint %s: %w", e.Cfg.RuntimeEndpoint, err)
		}
		e.conns = append(e.conns, rc)
		e.Runtime = runtime.NewRuntimeServiceClient(rc)
	}

	reg, err := registry.Start(ctx, registry.Options{
		PlainAddr:   offsetPort(e.Cfg.RegistryPlainAddr, process),
		TLSAddr:     offsetPort(e.Cfg.RegistryTLSAddr, process),
		ForeignAddr: offsetPort(e.Cfg.RegistryForeignAddr, process),
		TLSHostName: e.Cfg.RegistryTLSHostName,
		ListenIP:    e.Cfg.RegistryListen,
		Advertise:   e.Cfg.RegistryAdvertise,
		AllowRemote: e.Cfg.RegistryAllowRemote,
	})
	if err != nil {
		return fmt.Errorf("start fixture registry: %w", err)
	}
	e.Reg = reg
	if e.Cfg.RegistryConfigDir != "" {
		own, mirror, err := WriteHostsConfig(e.Cfg.RegistryConfigDir, reg, HostsOptions{
			Mirror: process == 1 && e.Cfg.Features.Has(config.FeatureMirror),
		})
		e.hostsOwn, e.hostsMirror = own, mirror
		if err != nil {
			return fmt.Errorf("write registry config: %w", err)
		}
	}
	return nil
}

// Teardown closes the connections and the registry, and takes this process's registry entries
// out of the registry config dir (as it found it).
func (e *Env) Teardown() error {
	errs := []error{e.hostsOwn.Undo()}
	for _, c := range e.conns {
		errs = append(errs, c.Close())
	}
	if e.Reg != nil {
		errs = append(errs, e.Reg.Close())
	}
	return errors.Join(errs...)
}

// Dial connects to a CRI endpoint ("unix:///path" or "tcp://host:port"). Every error a call
// returns passes through scanner.
func Dial(endpoint string, scanner *SecretScanner) (*grpc.ClientConn, error) {
	return criendpoint.Dial(endpoint, grpc.WithUnaryInterceptor(scanner.unary), grpc.WithStreamInterceptor(scanner.stream))
}

// offsetPort adds process-1 to a fixed port so parallel processes don't collide.
func offsetPort(addr string, process int) string {
	if addr == "" || process <= 1 {
		return addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+process-1))
}

// RunRestart restarts the target: Env.Restart if set, else the restart=CMD feature's command.
func (e *Env) RunRestart(ctx context.Context) error {
	if e.Restart != nil {
		return e.Restart(ctx)
	}
	cmd, ok := e.Cfg.Features.Value(config.FeatureRestart)
	if !ok || cmd == "" {
		return errors.New("restart: no command (declare restart=CMD)")
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restart command %q: %w: %s", cmd, err, out)
	}
	return nil
}

// Wait helps specs bound asynchronous conditions.
func (e *Env) Wait() time.Duration { return e.Cfg.CleanupTimeout }

// ClosedPort returns a loopback host:port nobody listens on (it was just released).
func ClosedPort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:9"
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
