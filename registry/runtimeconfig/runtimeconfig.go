// Package runtimeconfig writes the configuration a real CRI runtime needs to pull from the fixture
// registry: a containerd certs.d tree (hosts.toml per host, docker.io mirrored to the fixture), a
// containerd daemon config.toml that keeps everything under one directory, and CRI-O's
// registries.conf plus an auth file.
//
// Everything written points at loopback addresses only, unless the registry serves other machines
// (registry.Options.AllowRemote; Endpoints.AllowRemote): then the hosts are its advertised name or
// address, for a runtime on another machine (docs/remote.md). Nothing here starts a process; the
// gate scripts in hack/ start the daemons.
package runtimeconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/criimage/criimage/registry"
)

// Source is what runtimeconfig needs from a running fixture registry. *registry.Registry satisfies
// it; so does Endpoints (for a registry started by another process and described by flags).
type Source interface {
	PlainHost() string  // "127.0.0.1:PORT"
	TLSHost() string    // "registry.criimage.test:PORT"
	TLSAddr() string    // "127.0.0.1:PORT" of the TLS listener
	CAPEM() []byte      // CA that signed the TLS certificate
	ForeignURL() string // "http://127.0.0.2:PORT"
	Remote() bool       // the endpoints may be outside loopback (registry.Options.AllowRemote)
}

// Endpoints is a plain-value Source.
type Endpoints struct {
	Plain   string // PlainHost
	TLS     string // TLSHost
	TLSIP   string // TLSAddr
	CA      []byte // CAPEM
	Foreign string // ForeignURL
	// AllowRemote accepts hosts outside loopback (names and IPs): the endpoints of a registry
	// that serves other machines (Remote).
	AllowRemote bool
}

func (e Endpoints) PlainHost() string  { return e.Plain }
func (e Endpoints) TLSHost() string    { return e.TLS }
func (e Endpoints) TLSAddr() string    { return e.TLSIP }
func (e Endpoints) CAPEM() []byte      { return e.CA }
func (e Endpoints) ForeignURL() string { return e.Foreign }
func (e Endpoints) Remote() bool       { return e.AllowRemote }

// EndpointsOf copies a Source into a value (and so detaches it from a registry's lifetime).
func EndpointsOf(s Source) Endpoints {
	return Endpoints{
		Plain:   s.PlainHost(),
		TLS:     s.TLSHost(),
		TLSIP:   s.TLSAddr(),
		CA:      append([]byte(nil), s.CAPEM()...),
		Foreign: s.ForeignURL(),

		AllowRemote: s.Remote(),
	}
}

// Validate checks that every endpoint is a loopback host:port (the TLS host may be a name, which
// must be made to resolve to loopback by whoever runs the runtime), or — with AllowRemote — any
// host:port but an unspecified address. Empty TLS fields mean "no TLS listener"; an empty plain
// host is an error. A host outside loopback without AllowRemote is an error wrapping
// registry.ErrNotLoopback.
func (e Endpoints) Validate() error {
	if e.Plain == "" {
		return errors.New("runtimeconfig: plain registry host is required")
	}
	if err := e.checkHostPort(e.Plain, false); err != nil {
		return fmt.Errorf("runtimeconfig: plain host: %w", err)
	}
	if e.TLS != "" || e.TLSIP != "" {
		if e.TLS == "" || e.TLSIP == "" {
			return errors.New("runtimeconfig: TLS host and TLS address go together")
		}
		if err := e.checkHostPort(e.TLS, true); err != nil {
			return fmt.Errorf("runtimeconfig: TLS host: %w", err)
		}
		if err := e.checkHostPort(e.TLSIP, false); err != nil {
			return fmt.Errorf("runtimeconfig: TLS address: %w", err)
		}
		if len(e.CA) == 0 {
			return errors.New("runtimeconfig: TLS host given without its CA")
		}
	}
	if e.Foreign != "" {
		u, err := url.Parse(e.Foreign)
		if err != nil {
			return fmt.Errorf("runtimeconfig: foreign URL: %w", err)
		}
		if err := e.checkHostPort(u.Host, false); err != nil {
			return fmt.Errorf("runtimeconfig: foreign URL: %w", err)
		}
	}
	return nil
}

// checkHostPort is loopbackHostPort, or remoteHostPort with AllowRemote.
func (e Endpoints) checkHostPort(hp string, nameOK bool) error {
	if e.AllowRemote {
		return remoteHostPort(hp)
	}
	return loopbackHostPort(hp, nameOK)
}

// remoteHostPort accepts "host:port" with an IP other than an unspecified one, or a DNS name.
func remoteHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", hp)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q is the unspecified address, which no runtime can connect to", hp)
	}
	if host == "" || strings.ContainsAny(host, "/ \t") {
		return fmt.Errorf("%q is not a host name", hp)
	}
	return nil
}

// loopbackHostPort accepts "IP:port" with a 127.0.0.0/8 or ::1 IP, or — when nameOK — "name:port"
// with a DNS name (resolution is the caller's business; the name must not be an external IP).
func loopbackHostPort(hp string, nameOK bool) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", hp)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%q: %w (endpoints of a registry that serves other machines need AllowRemote)", hp, registry.ErrNotLoopback)
		}
		return nil
	}
	if !nameOK && host != "localhost" {
		return fmt.Errorf("%q: %w: not a loopback IP (endpoints of a registry that serves other machines need AllowRemote)", hp, registry.ErrNotLoopback)
	}
	if strings.ContainsAny(host, "/ \t") {
		return fmt.Errorf("%q is not a host name", hp)
	}
	return nil
}

// hostName returns the host part of host:port.
func hostName(hp string) string {
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		return hp
	}
	return h
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
