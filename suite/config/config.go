// Package config holds what the conformance suite knows about its target and its run: the CRI
// endpoints, the fixture registry's listen addresses, the features the target declares, the
// expectations file and where reports go. Values come from flags, with CRIIMAGE_* environment
// variables as defaults.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/criimage/criimage/internal/criendpoint"
)

// Config is the whole configuration of one suite run.
type Config struct {
	// ImageEndpoint is the CRI ImageService endpoint: "unix:///path" or "tcp://host:port".
	// Empty in `go test` means "start the embedded reference".
	ImageEndpoint string
	// RuntimeEndpoint is optional; a target without a RuntimeService works.
	RuntimeEndpoint string

	// Fixture registry listen addresses ("" = 127.0.0.1:0 / 127.0.0.2:0). With ginkgo -p, a fixed
	// non-zero port is offset by (process-1) so that processes do not collide.
	RegistryPlainAddr, RegistryTLSAddr, RegistryForeignAddr string
	// RegistryTLSHostName is the DNS name of the TLS listener's certificate.
	RegistryTLSHostName string
	// RegistryListen is the IP of the registry's listeners whose address is not given ("" =
	// loopback); RegistryAdvertise the host name or IP written into every reference and hosts.toml
	// instead of the listen IP. Outside loopback both need RegistryAllowRemote (docs/remote.md).
	RegistryListen, RegistryAdvertise string
	RegistryAllowRemote               bool
	// RegistryConfigDir, if set, is a containerd certs.d-style hosts directory the suite writes
	// for its registry (CA trust, mirror entries). The target must read it.
	RegistryConfigDir string

	Features Features

	// ExpectationsFile lists known failures (YAML); see suite/expectations.
	ExpectationsFile string
	// ReportDir receives junit.xml, report.json, results.json, summary.md and report.html ("" = no
	// files).
	ReportDir string
	// ReportPrefix, if set, prefixes every report file's name ("windows" → windows-junit.xml).
	ReportPrefix string
	// StepSummary, if set, is a file the run's Markdown summary is appended to when ReportDir is
	// set: GitHub's step summary, which GitHub Actions names in GITHUB_STEP_SUMMARY.
	StepSummary string

	// RPCTimeout bounds every CRI call except pulls that a spec deliberately holds.
	RPCTimeout time.Duration
	// CleanupTimeout bounds asynchronous cleanup (IS-11), e.g. ImageFsInfo returning to baseline.
	CleanupTimeout time.Duration

	// Profile names the profile the run used ("" = none); reports show it.
	Profile string

	envFeatures string // CRIIMAGE_FEATURES as given, re-checked by Validate
}

// Default returns the configuration with CRIIMAGE_* environment variables applied.
func Default() *Config {
	c := &Config{
		ImageEndpoint:       os.Getenv("CRIIMAGE_IMAGE_ENDPOINT"),
		RuntimeEndpoint:     os.Getenv("CRIIMAGE_RUNTIME_ENDPOINT"),
		RegistryPlainAddr:   os.Getenv("CRIIMAGE_REGISTRY_PLAIN_ADDR"),
		RegistryTLSAddr:     os.Getenv("CRIIMAGE_REGISTRY_TLS_ADDR"),
		RegistryForeignAddr: os.Getenv("CRIIMAGE_REGISTRY_FOREIGN_ADDR"),
		RegistryTLSHostName: envOr("CRIIMAGE_REGISTRY_TLS_HOSTNAME", "registry.criimage.test"),
		RegistryListen:      os.Getenv("CRIIMAGE_REGISTRY_LISTEN"),
		RegistryAdvertise:   os.Getenv("CRIIMAGE_REGISTRY_ADVERTISE"),
		RegistryAllowRemote: envBool("CRIIMAGE_REGISTRY_ALLOW_REMOTE"),
		RegistryConfigDir:   os.Getenv("CRIIMAGE_REGISTRY_CONFIG_DIR"),
		ExpectationsFile:    os.Getenv("CRIIMAGE_EXPECTATIONS"),
		ReportDir:           os.Getenv("CRIIMAGE_REPORT_DIR"),
		ReportPrefix:        os.Getenv("CRIIMAGE_REPORT_PREFIX"),
		StepSummary:         os.Getenv("GITHUB_STEP_SUMMARY"),
		RPCTimeout:          envDuration("CRIIMAGE_RPC_TIMEOUT", 30*time.Second),
		CleanupTimeout:      envDuration("CRIIMAGE_CLEANUP_TIMEOUT", 30*time.Second),
	}
	if f := os.Getenv("CRIIMAGE_FEATURES"); f != "" {
		_ = c.Features.Set(f) // a bad value is reported again by Validate
		c.envFeatures = f
	}
	return c
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if c.envFeatures != "" {
		var f Features
		if err := f.Set(c.envFeatures); err != nil {
			errs = append(errs, fmt.Errorf("CRIIMAGE_FEATURES: %w", err))
		}
	}
	for _, ep := range []struct{ name, v string }{{"image-endpoint", c.ImageEndpoint}, {"runtime-endpoint", c.RuntimeEndpoint}} {
		if ep.v != "" {
			if _, err := criendpoint.Parse(ep.v); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", ep.name, err))
			}
		}
	}
	if c.ReportPrefix != "" && (strings.ContainsAny(c.ReportPrefix, `/\`) || c.ReportPrefix == "." || c.ReportPrefix == "..") {
		errs = append(errs, fmt.Errorf("--report-prefix %q: a file name prefix, not a path", c.ReportPrefix))
	}
	for _, d := range c.Features.Durations() {
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	errs = append(errs, c.validateRemote()...)
	return errors.Join(errs...)
}

// RegisterFlags binds the configuration to fs, using the current values as defaults.
// prefix is prepended to every flag name (e.g. "criimage." inside a `go test` binary).
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&c.ImageEndpoint, prefix+"image-endpoint", c.ImageEndpoint, "CRI image endpoint (unix:///path or tcp://host:port) [CRIIMAGE_IMAGE_ENDPOINT]")
	fs.StringVar(&c.RuntimeEndpoint, prefix+"runtime-endpoint", c.RuntimeEndpoint, "optional CRI runtime endpoint [CRIIMAGE_RUNTIME_ENDPOINT]")
	fs.StringVar(&c.RegistryPlainAddr, prefix+"registry-plain-addr", c.RegistryPlainAddr, "fixture registry plain-HTTP listen address (default 127.0.0.1:0) [CRIIMAGE_REGISTRY_PLAIN_ADDR]")
	fs.StringVar(&c.RegistryTLSAddr, prefix+"registry-tls-addr", c.RegistryTLSAddr, "fixture registry TLS listen address (default 127.0.0.1:0) [CRIIMAGE_REGISTRY_TLS_ADDR]")
	fs.StringVar(&c.RegistryForeignAddr, prefix+"registry-foreign-addr", c.RegistryForeignAddr, "foreign host listen address (default 127.0.0.2:0) [CRIIMAGE_REGISTRY_FOREIGN_ADDR]")
	fs.StringVar(&c.RegistryTLSHostName, prefix+"registry-tls-hostname", c.RegistryTLSHostName, "DNS name in the TLS certificate [CRIIMAGE_REGISTRY_TLS_HOSTNAME]")
	fs.StringVar(&c.RegistryListen, prefix+"registry-listen", c.RegistryListen, "IP the fixture registry listens on where no address flag says otherwise (default loopback; outside it needs --registry-allow-remote) [CRIIMAGE_REGISTRY_LISTEN]")
	fs.StringVar(&c.RegistryAdvertise, prefix+"registry-advertise", c.RegistryAdvertise, "host name or IP the runtime reaches the fixture registry under, written into image references and hosts.toml and its certificate [CRIIMAGE_REGISTRY_ADVERTISE]")
	fs.BoolVar(&c.RegistryAllowRemote, prefix+"registry-allow-remote", c.RegistryAllowRemote, "let the fixture registry listen beyond loopback, for a runtime on another machine (docs/remote.md) [CRIIMAGE_REGISTRY_ALLOW_REMOTE]")
	fs.StringVar(&c.RegistryConfigDir, prefix+"registry-config-dir", c.RegistryConfigDir, "write containerd certs.d hosts files for the run's registry here [CRIIMAGE_REGISTRY_CONFIG_DIR]")
	fs.Var(&c.Features, prefix+"features", "comma-separated features the target declares, repeatable: "+strings.Join(KnownFeatures(), ", ")+" [CRIIMAGE_FEATURES]")
	fs.StringVar(&c.ExpectationsFile, prefix+"expectations", c.ExpectationsFile, "YAML file of expected failures [CRIIMAGE_EXPECTATIONS]")
	fs.StringVar(&c.ReportDir, prefix+"report-dir", c.ReportDir, "directory for junit.xml, report.json, results.json, summary.md, report.html [CRIIMAGE_REPORT_DIR]")
	fs.StringVar(&c.ReportPrefix, prefix+"report-prefix", c.ReportPrefix, "prefix of every report file's name (PREFIX-junit.xml, …), as critest's --report-prefix [CRIIMAGE_REPORT_PREFIX]")
	fs.StringVar(&c.StepSummary, prefix+"step-summary", c.StepSummary, "with --report-dir, append the Markdown summary to this file (GitHub's step summary) [GITHUB_STEP_SUMMARY]")
	fs.DurationVar(&c.RPCTimeout, prefix+"rpc-timeout", c.RPCTimeout, "timeout of each CRI call [CRIIMAGE_RPC_TIMEOUT]")
	fs.DurationVar(&c.CleanupTimeout, prefix+"cleanup-timeout", c.CleanupTimeout, "bound for asynchronous cleanup (IS-11) [CRIIMAGE_CLEANUP_TIMEOUT]")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return d
	}
	return def
}

// Describe renders the configuration for logs and reports (it holds no secret).
func (c *Config) Describe() string {
	var b strings.Builder
	if c.Profile != "" {
		fmt.Fprintf(&b, "profile: %s\n", c.Profile)
	}
	fmt.Fprintf(&b, "image endpoint: %s\n", c.ImageEndpoint)
	if c.RuntimeEndpoint != "" {
		fmt.Fprintf(&b, "runtime endpoint: %s\n", c.RuntimeEndpoint)
	}
	fmt.Fprintf(&b, "features: %s\n", c.Features.String())
	if c.RegistryConfigDir != "" {
		fmt.Fprintf(&b, "registry config dir: %s\n", c.RegistryConfigDir)
	}
	b.WriteString(c.describeRemote())
	if c.ExpectationsFile != "" {
		fmt.Fprintf(&b, "expectations: %s\n", c.ExpectationsFile)
	}
	return b.String()
}
