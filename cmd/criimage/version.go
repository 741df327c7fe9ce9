package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/buildinfo"
	suiterun "github.com/criimage/criimage/suite/run"
)

// versionInfo is what `criimage version` reports: the build, and what a run of this binary
// checks — how many specs, and which fixture catalog (its fingerprint: equal fingerprints mean
// the same fixture bytes).
type versionInfo struct {
	buildinfo.Info
	Specs    int    `json:"specs"`
	Fixtures string `json:"fixtures"`
}

// runVersion implements "criimage version" (and "criimage --version").
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("criimage version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	ids, err := suiterun.SpecIDs()
	if err != nil {
		return fmt.Errorf("build the spec tree: %w", err)
	}
	fp, err := fixtures.Fingerprint()
	if err != nil {
		return fmt.Errorf("fixture catalog fingerprint: %w", err)
	}
	v := versionInfo{Info: buildinfo.Read(), Specs: len(ids), Fixtures: fp.String()}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err = io.WriteString(stdout, v.text())
	return err
}

func (v versionInfo) text() string {
	rev := v.Revision
	switch {
	case rev == "":
		rev = "(none recorded)"
	case v.Modified:
		rev += " (modified)"
	}
	s := fmt.Sprintf("criimage %s\n", v.Version)
	s += fmt.Sprintf("  revision    %s\n", rev)
	if v.Time != "" {
		s += fmt.Sprintf("  commit time %s\n", v.Time)
	}
	s += fmt.Sprintf("  go          %s %s\n", v.GoVersion, v.Platform)
	s += fmt.Sprintf("  cri-api     %s %s (runtime.v1)\n", buildinfo.CRIAPIModule, v.CRIAPI)
	s += fmt.Sprintf("  reference   %s %s\n", buildinfo.ContainerdModule, v.Containerd)
	s += fmt.Sprintf("  specs       %d\n", v.Specs)
	s += fmt.Sprintf("  fixtures    %s\n", v.Fixtures)
	return s
}
