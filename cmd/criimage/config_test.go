package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigContainerdWritesConfigAndCerts(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nfixture\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := runConfig(context.Background(), []string{"containerd", "--dir", filepath.Join(dir, "cd"), "--version", "1.6.20",
		"--registry-plain", "127.0.0.1:5000", "--registry-tls-host", "registry.criimage.test:5001",
		"--registry-tls-addr", "127.0.0.1:5001", "--registry-ca", ca}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{
		"CONTAINERD_ENDPOINT='unix://" + filepath.Join(dir, "cd", "containerd.sock") + "'",
		"CONTAINERD_CONFIG='" + filepath.Join(dir, "cd", "config.toml") + "'",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
	for _, p := range []string{"config.toml", "certs.d/docker.io/hosts.toml", "certs.d/registry.criimage.test:5001/hosts.toml", "certs.d/127.0.0.1:5001/ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, "cd", p)); err != nil {
			t.Error(err)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "cd", "config.toml"))
	if !strings.Contains(string(cfg), "io.containerd.grpc.v1.cri") {
		t.Errorf("1.6 config lacks the cri plugin:\n%s", cfg)
	}
}

func TestConfigUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args  []string
		usage bool
	}{
		{nil, true},
		{[]string{"podman"}, true},
		{[]string{"containerd", "--dir", dir}, true}, // no version
		{[]string{"containerd", "--dir", dir, "--version", "9"}, false},
		{[]string{"certs", "--dir", dir, "--registry-plain", "192.0.2.1:5000"}, true},
		{[]string{"crio", "--dir", dir}, true},
		{[]string{"containerd", "--dir", dir, "--version", "2.4.2", "stray"}, true},
	} {
		var out, errb bytes.Buffer
		err := runConfig(context.Background(), tc.args, &out, &errb)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
		} else if errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%q: %v: usage error = %v, want %v", tc.args, err, !tc.usage, tc.usage)
		}
	}
}

func TestConfigCRIO(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := runConfig(context.Background(), []string{"crio", "--dir", dir, "--registry-plain", "127.0.0.1:5000"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "auth.json"))
	if err != nil || !strings.Contains(string(b), `"127.0.0.1:5000"`) {
		t.Fatalf("auth.json: %v %s", err, b)
	}
	if strings.Contains(out.String(), "criimage-password") || strings.Contains(errb.String(), "criimage-password") {
		t.Error("the password was printed")
	}
}
