package runtimeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criimage/criimage/registry"
)

// The endpoints of a registry that serves other machines: names and IPs outside loopback, only
// with AllowRemote, never the unspecified address.
func TestRemoteEndpoints(t *testing.T) {
	remote := Endpoints{
		Plain: "registry.remote.test:5000", TLS: tlsName + ":5001", TLSIP: "registry.remote.test:5001",
		CA: []byte("x"), Foreign: "http://10.213.0.1:5002", AllowRemote: true,
	}
	if err := remote.Validate(); err != nil {
		t.Fatalf("remote endpoints: %v", err)
	}
	without := remote
	without.AllowRemote = false
	if err := without.Validate(); !errors.Is(err, registry.ErrNotLoopback) {
		t.Errorf("remote endpoints without AllowRemote: %v, want ErrNotLoopback", err)
	}
	for name, mut := range map[string]func(*Endpoints){
		"plain unspecified":   func(e *Endpoints) { e.Plain = "0.0.0.0:5000" },
		"tls addr no port":    func(e *Endpoints) { e.TLSIP = "registry.remote.test" },
		"foreign unspecified": func(e *Endpoints) { e.Foreign = "http://[::]:5002" },
		"plain with a path":   func(e *Endpoints) { e.Plain = "registry.remote.test/x:5000" },
	} {
		e := remote
		mut(&e)
		if err := e.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, e)
		}
	}

	cd, err := WriteCertsDir(t.TempDir(), remote, CertsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		DockerIOHost:                `server = "http://registry.remote.test:5000"`,
		"registry.remote.test:5000": `server = "http://registry.remote.test:5000"`,
		"registry.remote.test:5001": `server = "https://registry.remote.test:5001"`,
	}
	for h, line := range want {
		b, err := os.ReadFile(cd.Hosts[h])
		if err != nil || !strings.Contains(string(b), line) {
			t.Errorf("hosts.toml for %s: %v\n%s\nwant %s", h, err, b, line)
		}
	}
	if _, err := os.Stat(filepath.Join(cd.Dir, "registry.remote.test:5001", "ca.crt")); err != nil {
		t.Errorf("no CA beside the advertised TLS host's hosts.toml: %v", err)
	}
	conf := RegistriesConf(remote)
	for _, line := range []string{`location = "registry.remote.test:5000"`, `location = "registry.remote.test:5001"`} {
		if !strings.Contains(conf, line) {
			t.Errorf("registries.conf lacks %s:\n%s", line, conf)
		}
	}
}
