package runtimeconfig

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CRIOOptions selects what WriteCRIOConfig writes.
type CRIOOptions struct {
	Dir string // output directory
	// Username and Password go into the auth file for every fixture host (the documented fixture
	// credentials). Both empty → an auth file with no entries.
	Username, Password string
}

// CRIO is the layout WriteCRIOConfig produced.
type CRIO struct {
	Dir            string
	RegistriesConf string // containers-registries.conf(5), version 2
	AuthFile       string // containers-auth.json(5)
	CertsDir       string // containers-certs.d(5): <host:port>/ca.crt
}

// WriteCRIOConfig writes CRI-O's (containers/image's) registry configuration for src into
// opts.Dir: registries.conf (docker.io rewritten to the fixture's plain host, the plain host
// insecure, the TLS hosts secure), auth.json, and a certs.d tree with the fixture CA. Point CRI-O
// at them with the registries.conf and global auth file settings, and the per-host cert dir.
func WriteCRIOConfig(src Source, opts CRIOOptions) (*CRIO, error) {
	ep := EndpointsOf(src)
	if err := ep.Validate(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("runtimeconfig: CRI-O config dir is required")
	}
	if (opts.Username == "") != (opts.Password == "") {
		return nil, errors.New("runtimeconfig: auth file needs both a username and a password")
	}
	if strings.Contains(opts.Username, ":") {
		return nil, errors.New("runtimeconfig: auth file username must not contain ':'")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("runtimeconfig: %w", err)
	}
	out := &CRIO{
		Dir:            dir,
		RegistriesConf: filepath.Join(dir, "registries.conf"),
		AuthFile:       filepath.Join(dir, "auth.json"),
		CertsDir:       filepath.Join(dir, "certs.d"),
	}
	if err := os.MkdirAll(out.CertsDir, 0o755); err != nil {
		return nil, fmt.Errorf("runtimeconfig: %w", err)
	}
	if err := writeFileAtomic(out.RegistriesConf, []byte(RegistriesConf(ep)), 0o644); err != nil {
		return nil, err
	}
	auths := map[string]map[string]string{}
	if opts.Username != "" {
		a := base64.StdEncoding.EncodeToString([]byte(opts.Username + ":" + opts.Password))
		for _, h := range uniq(ep.Plain, ep.TLS, ep.TLSIP) {
			auths[h] = map[string]string{"auth": a}
		}
	}
	js, err := json.MarshalIndent(map[string]any{"auths": auths}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("runtimeconfig: %w", err)
	}
	if err := writeFileAtomic(out.AuthFile, append(js, '\n'), 0o600); err != nil {
		return nil, err
	}
	for _, h := range uniq(ep.TLS, ep.TLSIP) {
		hd := filepath.Join(out.CertsDir, h)
		if err := os.MkdirAll(hd, 0o755); err != nil {
			return nil, fmt.Errorf("runtimeconfig: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(hd, "ca.crt"), ep.CA, 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RegistriesConf renders a containers-registries.conf(5) (version 2) for the fixture registry.
func RegistriesConf(ep Endpoints) string {
	var b strings.Builder
	b.WriteString("# Written by criimage: containers/image (CRI-O) registry configuration for the criimage fixture registry.\n")
	b.WriteString("unqualified-search-registries = [\"docker.io\"]\n")
	b.WriteString("short-name-mode = \"permissive\"\n\n")
	b.WriteString("# docker.io is rewritten to the fixture (library/… namespace), never the internet.\n")
	b.WriteString("[[registry]]\n")
	b.WriteString("prefix = \"docker.io\"\n")
	fmt.Fprintf(&b, "location = %s\n", tomlString(ep.Plain))
	b.WriteString("insecure = true\n\n")
	b.WriteString("[[registry]]\n")
	fmt.Fprintf(&b, "location = %s\n", tomlString(ep.Plain))
	b.WriteString("insecure = true\n")
	for _, h := range uniq(ep.TLS, ep.TLSIP) {
		b.WriteString("\n# TLS listener: verified with the fixture CA from the certs.d directory beside this file.\n")
		b.WriteString("[[registry]]\n")
		fmt.Fprintf(&b, "location = %s\n", tomlString(h))
		b.WriteString("insecure = false\n")
	}
	return b.String()
}
