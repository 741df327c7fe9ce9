package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startRegistryForConfig runs "criimage registry -json -catalog=false" and returns what it printed.
func startRegistryForConfig(t *testing.T) registryInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- runRegistry(ctx, []string{"-json", "-catalog=false"}, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() { cancel(); <-errc })
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading endpoints: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var info registryInfo
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("endpoints %q: %v", line, err)
	}
	return info
}

func TestRegistryConfigContainerdFromControlAPI(t *testing.T) {
	info := startRegistryForConfig(t)
	dir := t.TempDir()
	if err := runRegistryConfig(t.Context(), []string{"containerd", "--dir", dir, "--control", info.Control}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	mirror, err := os.ReadFile(filepath.Join(dir, "docker.io", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mirror), info.Plain) {
		t.Errorf("docker.io hosts.toml does not mirror to %s:\n%s", info.Plain, mirror)
	}
	tlsHosts, err := filepath.Glob(filepath.Join(dir, "*", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var sawCA bool
	for _, f := range tlsHosts {
		b, _ := os.ReadFile(f)
		sawCA = sawCA || strings.Contains(string(b), "ca = ")
	}
	if !sawCA {
		t.Errorf("no hosts.toml names the fixture CA: %v", tlsHosts)
	}
}

func TestRegistryConfigCRIOFromControlAPI(t *testing.T) {
	info := startRegistryForConfig(t)
	dir := t.TempDir()
	if err := runRegistryConfig(t.Context(), []string{"crio", "--dir", dir, "--control", info.Control}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "registries.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), info.Plain) {
		t.Errorf("registries.conf does not name %s:\n%s", info.Plain, conf)
	}
	if _, err := os.Stat(filepath.Join(dir, "auth.json")); err != nil {
		t.Errorf("auth file: %v", err)
	}
}

func TestRegistryConfigUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"docker", "--dir", "x", "--control", "http://127.0.0.1:1"},
		{"containerd", "--dir", "x"},
		{"containerd", "--dir", "x", "--control", "http://192.0.2.1:80"},
		{"containerd", "--dir", "x", "--control", "not a url"},
	} {
		if err := runRegistryConfig(t.Context(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
}
