package config

import (
	"flag"
	"strings"
	"testing"
)

// A registry outside loopback needs --registry-allow-remote, and the refusal names that flag.
func TestRemoteRegistryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"--registry-listen", "127.0.0.1"}, ""},
		{[]string{"--registry-advertise", "localhost"}, ""},
		{[]string{"--registry-listen", "10.213.0.1"}, allowRemoteFlag},
		{[]string{"--registry-plain-addr", "10.213.0.1:5000"}, allowRemoteFlag},
		{[]string{"--registry-advertise", "registry.remote.test"}, allowRemoteFlag},
		{[]string{"--registry-listen", "10.213.0.1", "--registry-advertise", "registry.remote.test", "--registry-allow-remote"}, ""},
		{[]string{"--registry-listen", "0.0.0.0", "--registry-allow-remote"}, "not every interface"},
		{[]string{"--registry-listen", "registry.remote.test", "--registry-allow-remote"}, "want an IP address"},
	} {
		c := &Config{}
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c.RegisterFlags(fs, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("CRIIMAGE_REGISTRY_LISTEN", "10.213.0.1")
	t.Setenv("CRIIMAGE_REGISTRY_ALLOW_REMOTE", "true")
	c := Default()
	if err := c.Validate(); err != nil || !c.RegistryAllowRemote || !strings.Contains(c.Describe(), "serves other machines (listen 10.213.0.1") {
		t.Errorf("from the environment: %v, allow %v, %q", err, c.RegistryAllowRemote, c.Describe())
	}
}
