package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/criimage/criimage/bench"
	"github.com/criimage/criimage/internal/criendpoint"
)

// benchReport is what --json writes: the endpoint measured and bench's report.
type benchReport struct {
	Endpoint string `json:"endpoint"`
	Version  string `json:"criimageVersion"`
	bench.Report
}

// runBench implements "criimage bench": make bench's measurements (package bench) against a
// runtime's image endpoint, with a fixture registry started in-process on loopback and, with
// --compare-reference, the reference (`criimage serve`, this binary) side by side. It prints the
// Markdown table on stdout and progress on stderr; everything it pulled into the runtime is
// removed before it returns, Ctrl-C included.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("criimage bench", stderr)
	endpoint := fs.String("image-endpoint", "", "the runtime's CRI image endpoint: unix:///path, tcp://host:port or npipe:////./pipe/NAME (required)")
	certsDir := fs.String("registry-config-dir", "", "the runtime's certs.d (containerd config_path): the fixture registry's hosts.toml is written there for the run")
	name := fs.String("name", "", "the runtime's column in the table (default: RuntimeName and RuntimeVersion from its Version RPC)")
	pid := fs.Int("pid", 0, "the process serving the endpoint, for peak RSS and idle waits (0 = the unix socket's peer; -1 = none)")
	compare := fs.Bool("compare-reference", false, "also measure the reference (criimage serve, started from this binary) side by side, with a ratio column")
	snapDefault := "native"
	if os.Geteuid() == 0 {
		snapDefault = "overlayfs"
	}
	snap := fs.String("snapshotter", snapDefault, "the reference's snapshotter with --compare-reference: native or overlayfs (needs root)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	mdOut := fs.String("out", "", "also write the Markdown table to this file")
	limit := fs.Duration("timeout", 30*time.Minute, "bound of the measurement (the cleanup after it has --cleanup-timeout)")
	cleanup := fs.Duration("cleanup-timeout", 30*time.Minute, "bound of the removal of what the run pulled into the runtime, also after Ctrl-C or --timeout")
	mf := bench.NewFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *endpoint == "" {
		return fmt.Errorf("%w: --image-endpoint is required", errUsage)
	}
	if _, err := criendpoint.Parse(*endpoint); err != nil {
		return fmt.Errorf("%w: --image-endpoint: %v", errUsage, err)
	}
	if *snap != "native" && *snap != "overlayfs" {
		return fmt.Errorf("%w: --snapshotter %q: want native or overlayfs", errUsage, *snap)
	}
	if *limit <= 0 || *cleanup <= 0 {
		return fmt.Errorf("%w: --timeout %s, --cleanup-timeout %s: want positive durations", errUsage, *limit, *cleanup)
	}
	o, err := mf.Options()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o.Log = stderr
	eo := bench.EndpointOptions{Endpoint: *endpoint, Name: *name, PID: *pid, CertsDir: *certsDir, CompareReference: *compare, Snapshotter: *snap, CleanupTimeout: *cleanup}
	if *compare {
		if eo.ReferenceBin, err = os.Executable(); err != nil {
			return fmt.Errorf("--compare-reference: this binary: %w", err)
		}
	}

	mctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	res, err := bench.RunEndpoint(mctx, o, eo)
	if res == nil {
		return err
	}
	doc := benchMarkdown(res, *endpoint)
	fmt.Fprint(stdout, "\n"+doc)
	if *mdOut != "" {
		if werr := os.WriteFile(*mdOut, []byte(doc), 0o644); werr != nil {
			return fmt.Errorf("--out: %w", werr)
		}
	}
	if *jsonOut != "" {
		b, jerr := json.MarshalIndent(benchReport{Endpoint: *endpoint, Version: version(), Report: res.Report()}, "", "  ")
		if jerr != nil {
			return fmt.Errorf("--json: %w", jerr)
		}
		if werr := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); werr != nil {
			return fmt.Errorf("--json: %w", werr)
		}
	}
	return err // the cleanup's
}

// benchMarkdown is the table with what a reader needs to weigh it: when, against what, where.
func benchMarkdown(res *bench.Results, endpoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Generated %s by `criimage bench` (%s) against `%s` (%d runs per case and runtime, alternating; %s; %.0f s in all).\n\n",
		res.Started.UTC().Format(time.RFC3339), version(), endpoint, res.Opts.Runs, strings.Join(res.Runtimes, ", "), res.Elapsed.Seconds())
	fmt.Fprintf(&b, "Machine: %s.\n\n", bench.Machine())
	b.WriteString("Cells: median (min–max) over the runs.\n\n")
	b.WriteString(res.Markdown())
	return b.String()
}
