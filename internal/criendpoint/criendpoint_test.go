package criendpoint

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseListen(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"unix:///run/criimage.sock", "unix:///run/criimage.sock"},
		{"tcp://127.0.0.1:10010", "tcp://127.0.0.1:10010"},
		{"tcp://127.1:10010", "tcp://127.0.0.1:10010"},
		{"tcp://127.0.1:0", "tcp://127.0.0.1:0"},
		{"tcp://2130706433:1", "tcp://127.0.0.1:1"},
		{"tcp://127.255.1:1", "tcp://127.255.0.1:1"},
		{"tcp://[::1]:1", "tcp://[::1]:1"},
		{"tcp://localhost:1", "tcp://localhost:1"},
	} {
		e, err := ParseListen(tc.in)
		if err != nil || e.String() != tc.want {
			t.Errorf("ParseListen(%q) = %v %v, want %s", tc.in, e, err, tc.want)
		}
	}
	for _, bad := range []string{"tcp://10.1.2.3:1", "tcp://10.1:1", "tcp://0177.1:1", "tcp://0x7f.1:1", "tcp://127.1.2.3.4:1",
		"tcp://127.16777216:1", "tcp://example.com:1", "unix://relative", "http://127.0.0.1:1", "tcp://127.0.0.1"} {
		if _, err := ParseListen(bad); err == nil {
			t.Errorf("ParseListen(%q) accepted", bad)
		}
	}
	// A client may reach any host.
	if e, err := Parse("tcp://node-1.example:10010"); err != nil || e.Address != "node-1.example:10010" {
		t.Errorf("Parse of a remote tcp endpoint: %v %v", e, err)
	}
}

func TestListenReplacesStaleSocketRefusesLiveOne(t *testing.T) {
	dir, err := os.MkdirTemp("", "cep")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sub", "s.sock")
	ctx := context.Background()
	lis, ep, err := Listen(ctx, Endpoint{"unix", path})
	if err != nil {
		t.Fatal(err)
	}
	if ep.String() != "unix://"+path {
		t.Errorf("endpoint %s", ep)
	}
	if _, _, err := Listen(ctx, Endpoint{"unix", path}); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	// Closing a unix listener removes its file; leave a stale one as a killed process would.
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	lis.Close()
	lis, _, err = Listen(ctx, Endpoint{"unix", path})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	lis.Close()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen(ctx, Endpoint{"unix", filepath.Join(dir, "file")}); err == nil {
		t.Error("a regular file was replaced by a socket")
	}
	lis, ep, err = Listen(ctx, Endpoint{"tcp", "127.0.0.1:0"})
	if err != nil || strings.HasSuffix(ep.Address, ":0") {
		t.Errorf("tcp port 0: %v %v", ep, err)
	}
	lis.Close()
}

// TestParsePipe: kubelet's Windows endpoint spellings parse to the pipe path; anything but a
// local pipe is refused, and a server never listens on one.
func TestParsePipe(t *testing.T) {
	for _, in := range []string{"npipe:////./pipe/containerd-containerd", "npipe://./pipe/containerd-containerd"} {
		e, err := Parse(in)
		if err != nil || e.Network != "npipe" || e.Address != `\\.\pipe\containerd-containerd` {
			t.Errorf("Parse(%q) = %+v %v, want the pipe \\\\.\\pipe\\containerd-containerd", in, e, err)
			continue
		}
		if e.String() != "npipe:////./pipe/containerd-containerd" {
			t.Errorf("Parse(%q).String() = %s", in, e)
		}
		if _, err := ParseListen(in); err == nil {
			t.Errorf("ParseListen(%q) accepted a named pipe", in)
		}
	}
	for _, bad := range []string{"npipe://", "npipe:////./pipe/", "npipe:////server/pipe/x", "npipe:////./pipe/a/b", "npipe:////./notpipe/x"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestDialPipeOffWindows: dialing a pipe elsewhere fails with an error that says why.
func TestDialPipeOffWindows(t *testing.T) {
	if _, err := dialPipe(context.Background(), `\\.\pipe\x`); err == nil || !strings.Contains(err.Error(), "Windows") {
		t.Errorf("dialPipe off Windows: %v, want an error naming Windows", err)
	}
}
