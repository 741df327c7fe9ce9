// Command census collects a flake census from the run directories hack/flake-census.sh wrote
// (DIR/TARGET/run-NN/{results.json,census-run.json}) into one JSON file and a Markdown table.
//
//	go run ./hack/census -in _output/census/quiet -o census.json -md census.md -name quiet
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/criimage/criimage/suite/census"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "census:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("census", flag.ContinueOnError)
	in := fs.String("in", "", "directory of TARGET/run-NN/ report directories (required)")
	out := fs.String("o", "", "census JSON to write (default: stdout)")
	md := fs.String("md", "", "Markdown table to write")
	var meta census.Census
	fs.StringVar(&meta.Name, "name", "quiet", "the census's name")
	fs.StringVar(&meta.Started, "started", "", "when the census started (RFC 3339)")
	fs.StringVar(&meta.Commit, "commit", "", "the commit the runs used")
	fs.StringVar(&meta.Machine, "machine", "", "the machine (cores, memory, kernel)")
	fs.StringVar(&meta.Load, "load", "", "the background load command, if any")
	fs.StringVar(&meta.Focus, "focus", "", "the runs' --focus, if any")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: census -in DIR [-o FILE] [-md FILE] [-name NAME] …")
	}
	c, err := census.Collect(*in)
	if err != nil {
		return err
	}
	c.Name, c.Started, c.Commit, c.Machine, c.Load, c.Focus = meta.Name, meta.Started, meta.Commit, meta.Machine, meta.Load, meta.Focus
	if *out == "" {
		if err := c.Encode(stdout); err != nil {
			return err
		}
	} else if err := c.Write(*out); err != nil {
		return err
	}
	table := census.Markdown([]*census.Census{c}, "##")
	if *md != "" {
		return os.WriteFile(*md, []byte(table), 0o644)
	}
	for _, n := range c.TargetNames() {
		fmt.Fprintf(stdout, "%s: %d runs, %d green, %d specs varied %v\n", n, c.Targets[n].Runs, c.Targets[n].Green, len(c.Varied(n)), c.Varied(n))
	}
	return nil
}
