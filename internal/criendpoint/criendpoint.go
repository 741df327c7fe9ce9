// Package criendpoint owns CRI endpoints — "unix:///path", "tcp://host:port" and, for clients on
// Windows, "npipe:////./pipe/name" — for every server and client of criimage: parsing (a listener
// only on loopback, as criimage never serves beyond the machine), listening (a stale unix socket replaced, a live one refused), dialing with
// kubelet's message size, stopping a server gracefully, and reading a whole StreamImages answer.
package criendpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Endpoint is a parsed CRI endpoint.
type Endpoint struct {
	Network string // "unix", "tcp" or "npipe"
	Address string // socket path, host:port, or pipe path (\\.\pipe\name)
}

// String is the endpoint's URL form.
func (e Endpoint) String() string {
	if e.Network == "npipe" {
		return "npipe://" + strings.ReplaceAll(e.Address, `\`, "/")
	}
	return e.Network + "://" + e.Address
}

// Parse parses a client's endpoint: "unix:///absolute/path", "tcp://host:port" (any host), or a
// Windows named pipe as kubelet writes it, "npipe:////./pipe/NAME" (also "npipe://./pipe/NAME").
func Parse(s string) (Endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return Endpoint{}, fmt.Errorf("endpoint %q: want unix:///absolute/path", s)
		}
		return Endpoint{"unix", u.Path}, nil
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
		}
		return Endpoint{"tcp", u.Host}, nil
	case "npipe":
		return parsePipe(s, u)
	}
	return Endpoint{}, fmt.Errorf("endpoint %q: want unix:///path, tcp://host:port or npipe:////./pipe/name", s)
}

// parsePipe parses the two spellings of a local named pipe into its Windows path.
func parsePipe(s string, u *url.URL) (Endpoint, error) {
	p := u.Host + u.Path // "npipe:////./pipe/x": "" + "//./pipe/x"; "npipe://./pipe/x": "." + "/pipe/x"
	p = strings.TrimPrefix(p, "//")
	name, ok := strings.CutPrefix(p, "./pipe/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return Endpoint{}, fmt.Errorf("endpoint %q: want npipe:////./pipe/NAME (a local named pipe)", s)
	}
	return Endpoint{"npipe", `\\.\pipe\` + name}, nil
}

// ParseListen parses a server's endpoint: as Parse, and a tcp host must be loopback
// (127.0.0.0/8, ::1, localhost, or an inet_aton decimal shorthand such as 127.1), which is
// normalized ("tcp://127.1:5" listens on 127.0.0.1:5).
func ParseListen(s string) (Endpoint, error) {
	e, err := Parse(s)
	if err == nil && e.Network == "npipe" {
		return Endpoint{}, fmt.Errorf("endpoint %q: criimage serves on unix sockets or loopback tcp, not named pipes", s)
	}
	if err != nil || e.Network != "tcp" {
		return e, err
	}
	host, port, _ := net.SplitHostPort(e.Address)
	if host == "localhost" {
		return e, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ip, err = parseIPv4Shorthand(host)
	}
	if err != nil || !ip.IsLoopback() {
		return Endpoint{}, fmt.Errorf("endpoint %q: tcp is allowed on loopback addresses only", s)
	}
	return Endpoint{"tcp", net.JoinHostPort(ip.String(), port)}, nil
}

// parseIPv4Shorthand parses the decimal forms inet_aton accepts besides a.b.c.d: "a" (32 bits),
// "a.b" (8.24) and "a.b.c" (8.8.16), as ping and curl do. Octal and hex parts are not accepted.
func parseIPv4Shorthand(s string) (netip.Addr, error) {
	bad := fmt.Errorf("not an IPv4 shorthand: %q", s)
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return netip.Addr{}, bad
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return netip.Addr{}, bad
		}
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return netip.Addr{}, bad
		}
		vals[i] = v
	}
	last := vals[len(vals)-1]
	if last >= 1<<uint(32-8*(len(vals)-1)) {
		return netip.Addr{}, bad
	}
	n := last
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, bad
		}
		n |= v << (24 - 8*uint(i))
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), nil
}

// Listen listens on e. For unix it creates the parent directory (0700), replaces a stale socket
// (one nobody answers on), refuses a live one or a non-socket file, and makes the socket 0600.
// The returned Endpoint is where clients connect (tcp port 0 resolved).
func Listen(ctx context.Context, e Endpoint) (net.Listener, Endpoint, error) {
	var lc net.ListenConfig
	if e.Network == "tcp" {
		lis, err := lc.Listen(ctx, "tcp", e.Address)
		if err != nil {
			return nil, Endpoint{}, fmt.Errorf("listen on tcp %s: %w", e.Address, err)
		}
		return lis, Endpoint{"tcp", lis.Addr().String()}, nil
	}
	path := e.Address
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, Endpoint{}, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, Endpoint{}, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, Endpoint{}, fmt.Errorf("%s: another server is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, Endpoint{}, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	lis, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, Endpoint{}, fmt.Errorf("listen on unix %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, Endpoint{}, fmt.Errorf("socket permissions: %w", err)
	}
	return lis, e, nil
}

// MaxMessageSize is the largest message a client of ours accepts, as kubelet's CRI client.
const MaxMessageSize = 16 << 20

// Dial returns a client connection to the endpoint s (Parse's forms), plaintext, with kubelet's
// receive limit; opts add to that (interceptors).
func Dial(s string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	e, err := Parse(s)
	if err != nil {
		return nil, err
	}
	target := "unix://" + e.Address
	switch e.Network {
	case "tcp":
		target = "passthrough:///" + e.Address
	case "npipe":
		target = "passthrough:///" + e.Address
		opts = append(opts, grpc.WithContextDialer(dialPipe))
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
	}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s, err)
	}
	return conn, nil
}

// Stop stops srv gracefully: in-flight RPCs get grace, then are cancelled and awaited. served is
// the channel Serve's error was sent on; its error is returned unless it is ErrServerStopped.
func Stop(srv *grpc.Server, served <-chan error, grace time.Duration) error {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		srv.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Drain reads a whole StreamImages answer: the images of each message, in order.
func Drain(st grpc.ServerStreamingClient[runtime.StreamImagesResponse]) ([][]*runtime.Image, error) {
	var batches [][]*runtime.Image
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return batches, nil
		}
		if err != nil {
			return batches, err
		}
		batches = append(batches, resp.GetImages())
	}
}

// Flatten joins Drain's batches.
func Flatten(batches [][]*runtime.Image) []*runtime.Image {
	var out []*runtime.Image
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}
