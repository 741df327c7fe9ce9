package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProfileApply: the profile fills what the command line left alone, its relative paths are
// the profile file's, and features merge by name with the command line's winning.
func TestProfileApply(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadProfile(writeFile(t, dir, "rt.yaml", `
name: rt-1
imageEndpoint: unix:///run/rt/rt.sock
features: [mirror, tls, "progress-timeout=10s", "pinned=docker.io/library/pause:3.10"]
expectations: expectations/rt.yaml
registryConfigDir: /etc/rt/certs.d
rpcTimeout: 45s
`))
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{ImageEndpoint: "unix:///from/env.sock", RPCTimeout: 30 * time.Second}
	if err := c.Features.Set("progress-timeout=0,restart=systemctl restart rt"); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(c, map[string]bool{"features": true, "registry-config-dir": true}); err != nil {
		t.Fatal(err)
	}
	if c.ImageEndpoint != "unix:///run/rt/rt.sock" {
		t.Errorf("image endpoint %q: the profile's should replace an environment default", c.ImageEndpoint)
	}
	if c.ExpectationsFile != filepath.Join(dir, "expectations/rt.yaml") {
		t.Errorf("expectations %q, want it next to the profile", c.ExpectationsFile)
	}
	if c.RegistryConfigDir != "" {
		t.Errorf("registry config dir %q: the command line set it (to empty here), the profile must not override", c.RegistryConfigDir)
	}
	if c.RPCTimeout != 45*time.Second || c.Profile != "rt-1" {
		t.Errorf("rpc timeout %v profile %q", c.RPCTimeout, c.Profile)
	}
	want := "mirror,pinned=docker.io/library/pause:3.10,progress-timeout=0,restart=systemctl restart rt,tls"
	if got := c.Features.String(); got != want {
		t.Errorf("features %q, want %q (profile's, command line's progress-timeout winning, restart added)", got, want)
	}
}

// TestProfileStrict: a typo'd key, an unknown feature, a comma list in one item and a missing
// name are errors that name what is wrong.
func TestProfileStrict(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"name: x\nimageEndpont: unix:///x\n":      "imageEndpont",
		"name: x\nfeatures: [mirorr]\n":           `unknown feature "mirorr"`,
		"name: x\nfeatures: [\"mirror,tls\"]\n":   "one declaration per item",
		"imageEndpoint: unix:///x\n":              "name: missing",
		"name: x\nrpcTimeout: soon\n":             "rpcTimeout",
		"name: x\nfeatures: [progress-timeout]\n": "",
	} {
		_, err := LoadProfile(writeFile(t, dir, "p.yaml", body))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", body, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want one naming %q", body, err, want)
		}
	}
}

// TestCrictlEndpoints: crictl's rules — image endpoint defaults to the runtime endpoint; an
// implicit file may be missing, an explicit one may not; unknown keys are crictl's business.
func TestCrictlEndpoints(t *testing.T) {
	dir := t.TempDir()
	rtOnly := writeFile(t, dir, "a.yaml", "runtime-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\npull-image-on-create: true\n")
	both := writeFile(t, dir, "b.yaml", "runtime-endpoint: unix:///run/rt.sock\nimage-endpoint: tcp://127.0.0.1:5000\n")
	empty := writeFile(t, dir, "c.yaml", "debug: true\n")
	if img, rt, found, err := CrictlEndpoints(rtOnly); err != nil || !found || img != "unix:///run/containerd/containerd.sock" || rt != img {
		t.Errorf("runtime endpoint only: %q %q %v %v", img, rt, found, err)
	}
	if img, rt, _, err := CrictlEndpoints(both); err != nil || img != "tcp://127.0.0.1:5000" || rt != "unix:///run/rt.sock" {
		t.Errorf("both: %q %q %v", img, rt, err)
	}
	if _, _, _, err := CrictlEndpoints(empty); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("no endpoint in the file: %v", err)
	}
	if _, _, _, err := CrictlEndpoints(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("an explicit missing file is not an error")
	}
	t.Setenv("CRI_CONFIG_FILE", both)
	if img, _, found, err := CrictlEndpoints(""); err != nil || !found || img != "tcp://127.0.0.1:5000" {
		t.Errorf("CRI_CONFIG_FILE: %q %v %v", img, found, err)
	}
}

// TestShippedProfiles: every profile in suite/profiles loads strictly, and the expectations file
// it names exists.
func TestShippedProfiles(t *testing.T) {
	paths, err := filepath.Glob("../profiles/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no profiles in suite/profiles: %v", err)
	}
	for _, path := range paths {
		p, err := LoadProfile(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(path), ".yaml"); p.Name != want && p.Name != "criimage-serve" {
			t.Errorf("%s: name %q, want the file's name %q", path, p.Name, want)
		}
		if p.Expectations != "" {
			if _, err := os.Stat(p.resolve(p.Expectations)); err != nil {
				t.Errorf("%s: expectations: %v", path, err)
			}
		}
	}
}
