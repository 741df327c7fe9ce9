package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Profile is one runtime's whole suite configuration in a file (`criimage test --profile FILE`):
// endpoints, the features it declares, its expectations and the certs.d directory it reads.
// Relative paths (expectations, registryConfigDir) are relative to the profile file, so a
// profile next to its expectations file works from any directory.
type Profile struct {
	// Name identifies the runtime in reports ("containerd-2.4.2").
	Name            string `json:"name"`
	ImageEndpoint   string `json:"imageEndpoint,omitempty"`
	RuntimeEndpoint string `json:"runtimeEndpoint,omitempty"`
	// Features, one declaration per item ("mirror", "pinned=REF", "restart=systemctl restart x").
	Features          []string `json:"features,omitempty"`
	Expectations      string   `json:"expectations,omitempty"`
	RegistryConfigDir string   `json:"registryConfigDir,omitempty"`
	RPCTimeout        string   `json:"rpcTimeout,omitempty"` // a Go duration
	// Description is free text for people (what the profile assumes about the runtime's config).
	Description string `json:"description,omitempty"`

	path string
}

// LoadProfile reads a profile strictly: an unknown key (a typo) is an error that names it.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var p Profile
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	p.path = abs
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return &p, nil
}

func (p *Profile) validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: missing"))
	}
	var f Features
	for _, item := range p.Features {
		if strings.Contains(item, ",") && !strings.HasPrefix(item, FeatureRestart.String()+"=") {
			errs = append(errs, fmt.Errorf("features: %q: one declaration per item", item))
			continue
		}
		if err := f.Set(item); err != nil {
			errs = append(errs, fmt.Errorf("features: %w", err))
		}
	}
	if p.RPCTimeout != "" {
		if d, err := time.ParseDuration(p.RPCTimeout); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("rpcTimeout: %q: want a positive duration", p.RPCTimeout))
		}
	}
	return errors.Join(errs...)
}

// resolve makes a path from the profile relative to the profile file's directory.
func (p *Profile) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(p.path), path)
}

// Apply sets c's fields from the profile, except those named in explicit (flag names the
// command line set: the command line wins). Features merge: the profile's declarations, then
// the command line's, a feature given on the command line replacing the profile's values of that
// feature (so --features progress-timeout=0 overrides the profile's progress-timeout=10s, and
// --features restart=CMD adds a restart command).
func (p *Profile) Apply(c *Config, explicit map[string]bool) error {
	set := func(flag string, dst *string, v string) {
		if v != "" && !explicit[flag] {
			*dst = v
		}
	}
	set("image-endpoint", &c.ImageEndpoint, p.ImageEndpoint)
	set("runtime-endpoint", &c.RuntimeEndpoint, p.RuntimeEndpoint)
	set("expectations", &c.ExpectationsFile, p.resolve(p.Expectations))
	set("registry-config-dir", &c.RegistryConfigDir, p.resolve(p.RegistryConfigDir))
	if p.RPCTimeout != "" && !explicit["rpc-timeout"] {
		d, err := time.ParseDuration(p.RPCTimeout)
		if err != nil {
			return fmt.Errorf("profile %s: rpcTimeout: %w", p.path, err)
		}
		c.RPCTimeout = d
	}
	var merged Features
	for _, item := range p.Features {
		if err := merged.Set(item); err != nil {
			return fmt.Errorf("profile %s: %w", p.path, err)
		}
	}
	if explicit["features"] {
		merged.override(&c.Features)
	}
	c.Features = merged
	c.Profile = p.Name
	return nil
}

// override replaces f's values of every feature over declares with over's.
func (f *Features) override(over *Features) {
	if f.m == nil {
		f.m = map[Feature][]string{}
	}
	for feature, vals := range over.m {
		f.m[feature] = append([]string(nil), vals...)
	}
}
