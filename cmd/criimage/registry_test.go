package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// startRegistryCommand runs `criimage registry -json args…` until ctx ends and returns the
// endpoints it printed and the channel its result arrives on.
func startRegistryCommand(ctx context.Context, t *testing.T, args ...string) (registryInfo, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- runRegistry(ctx, append([]string{"-json"}, args...), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading endpoints: %v (run: %v)", err, <-errc)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var info registryInfo
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("endpoints %q: %v", line, err)
	}
	return info, errc
}

func TestRunRegistryServesCatalogUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	info, errc := startRegistryCommand(ctx, t)
	if info.Images == 0 || info.Control == "" || info.Plain == "" || !strings.HasPrefix(info.Foreign, "http://127.0.0.2:") {
		t.Fatalf("info %+v", info)
	}
	resp, err := http.Get(info.Control + "/endpoints")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control: %d", resp.StatusCode)
	}
	// A catalog image is there: a tags list in the anon namespace answers with tags.
	resp, err = http.Get("http://" + info.Plain + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	var cat struct{ Repositories []string }
	_ = json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	if len(cat.Repositories) == 0 {
		t.Fatal("no repositories seeded")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("runRegistry after cancel: %v", err)
	}
	if _, err := http.Get(info.Control + "/endpoints"); err == nil {
		t.Error("control still answering after shutdown")
	}
}

func TestRunRegistryBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-plain", "0.0.0.0:5000"},
		{"-foreign", "192.168.1.1:0"},
		{"-nope"},
		{"extra"},
	} {
		err := runRegistry(t.Context(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
