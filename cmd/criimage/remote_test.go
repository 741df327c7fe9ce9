package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Serving other machines needs -allow-remote, and the refusal says so; every interface is
// refused even with it.
func TestRunRegistryRemoteFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		hint bool // the error names -allow-remote
	}{
		{[]string{"-listen", "10.213.0.1"}, true},
		{[]string{"-plain", "10.213.0.1:0"}, true},
		{[]string{"-advertise", "registry.remote.test"}, true},
		{[]string{"-listen", "0.0.0.0", "-allow-remote"}, false},
		{[]string{"-listen", "10.213.0.1", "-allow-remote", "-control", "10.213.0.1:0"}, false},
	} {
		err := runRegistry(t.Context(), append(tc.args, "-catalog=false"), io.Discard, io.Discard)
		if !errors.Is(err, errUsage) || strings.Contains(err.Error(), "-allow-remote") != tc.hint {
			t.Errorf("%v: %v, want a usage error (naming -allow-remote: %v)", tc.args, err, tc.hint)
		}
	}
}

// With -allow-remote and -advertise, the printed endpoints carry the advertised host.
func TestRunRegistryAdvertises(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	info, errc := startRegistryCommand(ctx, t, "-catalog=false", "-allow-remote", "-advertise", "registry.remote.test")
	if h, _, _ := net.SplitHostPort(info.Plain); h != "registry.remote.test" || !info.Remote {
		t.Errorf("info %+v: want the plain host under the advertised name, remote", info)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("runRegistry after cancel: %v", err)
	}
}

// criimage config certs takes endpoints outside loopback only with --registry-allow-remote.
func TestConfigCertsRemote(t *testing.T) {
	dir := t.TempDir()
	args := []string{"certs", "--dir", dir, "--registry-plain", "registry.remote.test:5000"}
	err := runConfig(t.Context(), args, io.Discard, io.Discard)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--registry-allow-remote") {
		t.Fatalf("remote endpoints without the flag: %v, want a usage error naming --registry-allow-remote", err)
	}
	var out bytes.Buffer
	if err := runConfig(t.Context(), append(args, "--registry-allow-remote"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "registry.remote.test:5000", "hosts.toml"))
	if err != nil || !strings.Contains(string(b), `server = "http://registry.remote.test:5000"`) {
		t.Errorf("plain host's hosts.toml: %v\n%s", err, b)
	}
}
