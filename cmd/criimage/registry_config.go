package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/control"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

const registryConfigUsage = `usage:
  criimage registry config containerd --dir DIR --control URL
      write a containerd certs.d tree for a running "criimage registry" (docker.io mirrored to it,
      its CA for the TLS host); point containerd's config_path at DIR
  criimage registry config crio --dir DIR --control URL [--no-auth]
      write CRI-O's registries.conf, auth.json (fixture credentials) and certs.d for it

URL is the control API that "criimage registry" prints (http://127.0.0.1:PORT).
`

// runRegistryConfig implements "criimage registry config containerd|crio": it asks a running
// fixture registry's control API for its endpoints (ports are random per run) and writes the
// runtime's configuration with registry/runtimeconfig, like "criimage config certs|crio".
func runRegistryConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, registryConfigUsage)
		return fmt.Errorf("%w: registry config needs a target: containerd or crio", errUsage)
	}
	target := args[0]
	if target != "containerd" && target != "crio" && target != "cri-o" {
		fmt.Fprint(stderr, registryConfigUsage)
		return fmt.Errorf("%w: unknown registry config target %q", errUsage, target)
	}
	fs := newFlagSet("criimage registry config "+target, stderr)
	dir := fs.String("dir", "", "output directory (required)")
	ctlURL := fs.String("control", "", "control API URL printed by \"criimage registry\" (required)")
	anon := fs.Bool("no-auth", false, "crio: write an auth file without credentials")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" || *ctlURL == "" {
		return fmt.Errorf("%w: --dir and --control are required", errUsage)
	}
	ep, err := endpointsFromControl(ctx, *ctlURL)
	if err != nil {
		return err
	}
	if target == "containerd" {
		return writeCerts(stdout, *dir, ep)
	}
	return writeCRIO(stdout, ep, runtimeconfig.CRIOOptions{Dir: *dir}, *anon)
}

// endpointsFromControl reads GET <control>/endpoints and the CA file it names.
func endpointsFromControl(ctx context.Context, controlURL string) (runtimeconfig.Endpoints, error) {
	u, err := url.Parse(controlURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return runtimeconfig.Endpoints{}, fmt.Errorf("%w: --control %q is not an http://HOST:PORT URL", errUsage, controlURL)
	}
	if err := registry.CheckLoopback(u.Host); err != nil {
		return runtimeconfig.Endpoints{}, fmt.Errorf("%w: --control: %v", errUsage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, controlURL+"/endpoints", nil)
	if err != nil {
		return runtimeconfig.Endpoints{}, fmt.Errorf("control API request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return runtimeconfig.Endpoints{}, fmt.Errorf("asking the registry's control API at %s for its endpoints: %w", controlURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return runtimeconfig.Endpoints{}, fmt.Errorf("control API %s/endpoints answered %s", controlURL, resp.Status)
	}
	var e control.Endpoints
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return runtimeconfig.Endpoints{}, fmt.Errorf("decoding %s/endpoints: %w", controlURL, err)
	}
	ca, err := os.ReadFile(e.CAFile)
	if err != nil {
		return runtimeconfig.Endpoints{}, fmt.Errorf("reading the registry's CA: %w", err)
	}
	ep := runtimeconfig.Endpoints{Plain: e.Plain, TLS: e.TLS, TLSIP: e.TLSAddr, CA: ca, Foreign: e.Foreign, AllowRemote: e.Remote}
	if err := ep.Validate(); err != nil {
		return ep, fmt.Errorf("endpoints from %s: %w", controlURL, err)
	}
	return ep, nil
}
