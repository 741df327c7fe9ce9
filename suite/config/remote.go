package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// allowRemoteFlag is the explicit opt-in that lets the fixture registry serve other machines.
const allowRemoteFlag = "--registry-allow-remote"

// validateRemote checks the registry's listen and advertise settings: a listen IP or address
// outside loopback, or an advertised host other machines reach, needs RegistryAllowRemote.
// The registry checks the rest (unspecified addresses, its foreign host) when it starts.
func (c *Config) validateRemote() []error {
	var errs []error
	refuse := func(flag, v string) {
		errs = append(errs, fmt.Errorf("--%s %s is not a loopback address: the fixture registry serves other machines only with %s (docs/remote.md)", flag, v, allowRemoteFlag))
	}
	if c.RegistryListen != "" {
		ip := net.ParseIP(c.RegistryListen)
		switch {
		case ip == nil:
			errs = append(errs, fmt.Errorf("--registry-listen %q: want an IP address of this machine", c.RegistryListen))
		case ip.IsUnspecified():
			errs = append(errs, fmt.Errorf("--registry-listen %s: name the one address the runtime connects to, not every interface", c.RegistryListen))
		case !ip.IsLoopback() && !c.RegistryAllowRemote:
			refuse("registry-listen", c.RegistryListen)
		}
	}
	for _, a := range []struct{ flag, v string }{
		{"registry-plain-addr", c.RegistryPlainAddr}, {"registry-tls-addr", c.RegistryTLSAddr}, {"registry-foreign-addr", c.RegistryForeignAddr},
	} {
		host, _, err := net.SplitHostPort(a.v)
		if ip := net.ParseIP(host); err == nil && ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() && !c.RegistryAllowRemote {
			refuse(a.flag, a.v)
		}
	}
	if h := c.RegistryAdvertise; h != "" && !c.RegistryAllowRemote && !strings.EqualFold(h, "localhost") {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			refuse("registry-advertise", h)
		}
	}
	return errs
}

// describeRemote is the configuration line of a registry that serves other machines ("" if not).
func (c *Config) describeRemote() string {
	if !c.RegistryAllowRemote {
		return ""
	}
	return fmt.Sprintf("fixture registry: serves other machines (listen %s, advertised as %s)\n",
		orNone(c.RegistryListen, "per address flag"), orNone(c.RegistryAdvertise, "its listen IPs"))
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// envBool is a boolean environment variable: strconv.ParseBool's true values, anything else false.
func envBool(k string) bool {
	b, _ := strconv.ParseBool(os.Getenv(k))
	return b
}
