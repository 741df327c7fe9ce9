package registry_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/criimage/criimage/registry"
)

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr        string
		allowRemote bool
		ok, optIn   bool // optIn: refused only for want of allowRemote (ErrNotLoopback)
	}{
		{"127.0.0.1:0", false, true, false},
		{"[::1]:5000", false, true, false},
		{"localhost:0", false, true, false},
		{"10.213.0.1:0", false, false, true},
		{"10.213.0.1:0", true, true, false},
		{"[fd00::5]:0", true, true, false},
		{"0.0.0.0:0", true, false, false},
		{"[::]:0", true, false, false},
		{":0", true, false, false},
		{"example.com:0", true, false, false},
		{"10.213.0.1", true, false, false},
	} {
		err := registry.CheckListen(c.addr, c.allowRemote)
		if (err == nil) != c.ok || errors.Is(err, registry.ErrNotLoopback) != c.optIn {
			t.Errorf("CheckListen(%q, %v) = %v; want ok %v, ErrNotLoopback %v", c.addr, c.allowRemote, err, c.ok, c.optIn)
		}
		if err != nil && !strings.Contains(err.Error(), c.addr) {
			t.Errorf("CheckListen(%q): %v does not name the address", c.addr, err)
		}
	}
}

// Start refuses remote settings without the opt-in, and impossible ones with it, before it
// listens on anything.
func TestRemoteRefusals(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  registry.Options
		optIn bool   // the error is only the missing opt-in (ErrNotLoopback)
		want  string // in the error
	}{
		{"listen address without opt-in", registry.Options{PlainAddr: "10.213.0.1:0"}, true, "10.213.0.1:0"},
		{"listen IP without opt-in", registry.Options{ListenIP: "10.213.0.1"}, true, "10.213.0.1"},
		{"advertised name without opt-in", registry.Options{Advertise: "registry.remote.test"}, true, "registry.remote.test"},
		{"advertised IP without opt-in", registry.Options{Advertise: "192.0.2.7"}, true, "192.0.2.7"},
		{"every interface", registry.Options{AllowRemote: true, ListenIP: "0.0.0.0"}, false, "0.0.0.0"},
		{"listen IP not an IP", registry.Options{AllowRemote: true, ListenIP: "registry.remote.test"}, false, "not an IP"},
		{"TLS left on loopback", registry.Options{AllowRemote: true, PlainAddr: "10.213.0.1:0"}, false, "TLS listener is on loopback"},
		{"foreign left on loopback", registry.Options{AllowRemote: true, PlainAddr: "10.213.0.1:0", TLSAddr: "10.213.0.1:0", ForeignAddr: "127.0.0.2:0"}, false, "foreign listener is on loopback"},
		{"foreign on the advertised host", registry.Options{AllowRemote: true, Advertise: "127.0.0.2"}, false, "registry's own host"},
		{"foreign on the registry's IP", registry.Options{AllowRemote: true, ListenIP: "10.213.0.1", ForeignAddr: "10.213.0.1:0"}, false, "registry's own host"},
		{"advertised with a port", registry.Options{AllowRemote: true, Advertise: "registry.remote.test:5000"}, false, "neither an IP address nor a DNS name"},
		{"advertised URL", registry.Options{AllowRemote: true, Advertise: "http://registry.remote.test"}, false, "neither an IP address nor a DNS name"},
		{"advertised unspecified", registry.Options{AllowRemote: true, Advertise: "0.0.0.0"}, false, "unspecified"},
		{"advertised over two IPs", registry.Options{AllowRemote: true, Advertise: "registry.remote.test", TLSAddr: "127.0.0.3:0"}, false, "not on the plain listener's IP"},
	} {
		_, err := registry.Start(t.Context(), c.opts)
		if err == nil {
			t.Errorf("%s: Start(%+v) succeeded", c.name, c.opts)
			continue
		}
		if errors.Is(err, registry.ErrNotLoopback) != c.optIn || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Start: %v; want ErrNotLoopback %v and %q in it", c.name, err, c.optIn, c.want)
		}
	}
}

// An advertised name replaces the listen IP in every endpoint of the registry's own host, and the
// certificate names it as well as the TLS listen IP and the TLS host name; the foreign host stays
// another host.
func TestAdvertise(t *testing.T) {
	const name = "registry.remote.test"
	reg := start(t, registry.Options{AllowRemote: true, Advertise: name})
	if !reg.Remote() {
		t.Error("Remote() = false with AllowRemote")
	}
	for what, hp := range map[string]string{
		"PlainHost": reg.PlainHost(), "TLSAddr": reg.TLSAddr(), "OtherPortURL": strings.TrimPrefix(reg.OtherPortURL(), "http://"),
	} {
		h, port, err := net.SplitHostPort(hp)
		if err != nil || h != name {
			t.Errorf("%s = %q, want %s:PORT", what, hp, name)
			continue
		}
		// The port is the listener's: it answers on the listen IP.
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Errorf("%s: nothing listens on 127.0.0.1:%s: %v", what, port, err)
			continue
		}
		c.Close()
	}
	if !strings.HasPrefix(reg.TLSHost(), registry.DefaultTLSHostName+":") {
		t.Errorf("TLSHost = %q, want the certificate's name", reg.TLSHost())
	}
	if !strings.HasPrefix(reg.ForeignURL(), "http://127.0.0.2:") {
		t.Errorf("ForeignURL = %q, want the foreign listener's own IP", reg.ForeignURL())
	}

	_, port, _ := net.SplitHostPort(reg.TLSAddr())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(reg.CAPEM())
	for _, serverName := range []string{name, registry.DefaultTLSHostName, "127.0.0.1"} {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: serverName})
		if err != nil {
			t.Errorf("TLS handshake as %s: %v", serverName, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: "other.remote.test"}); err == nil {
		conn.Close()
		t.Error("the certificate is valid for a name nobody advertised")
	}
}

// Without Advertise and AllowRemote the endpoints stay what they were: loopback, not remote.
func TestLoopbackDefault(t *testing.T) {
	reg := start(t, registry.Options{})
	if reg.Remote() || !strings.HasPrefix(reg.PlainHost(), "127.0.0.1:") || !strings.HasPrefix(reg.TLSAddr(), "127.0.0.1:") ||
		!strings.HasPrefix(reg.OtherPortURL(), "http://127.0.0.1:") || !strings.HasPrefix(reg.ForeignURL(), "http://127.0.0.2:") {
		t.Errorf("default endpoints: remote %v, %s %s %s %s", reg.Remote(), reg.PlainHost(), reg.TLSAddr(), reg.OtherPortURL(), reg.ForeignURL())
	}
}
