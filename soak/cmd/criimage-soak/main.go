// Command criimage-soak runs the reliability soak (package soak) against a built criimage and
// prints its figures; it exits 1 when the soak found anything wrong.
//
//	criimage-soak -bin bin/criimage -duration 5m -workers 32 -crashes 20 -out _output/soak
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/log"

	"github.com/criimage/criimage/soak"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("criimage-soak", flag.ContinueOnError)
	var o soak.Options
	fs.StringVar(&o.Binary, "bin", "bin/criimage", "the criimage binary whose serve command is soaked")
	fs.DurationVar(&o.Duration, "duration", 5*time.Minute, "length of the storm")
	fs.IntVar(&o.Workers, "workers", 32, "goroutines of the storm")
	fs.IntVar(&o.Crashes, "crashes", 20, "kill -9 rounds")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the storm's choices and the kill moments (0 = from the clock)")
	out := fs.String("out", "_output/soak", "directory for report.json and report.md")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "criimage-soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.Log = os.Stderr
	// containerd's packages log through its global logrus logger (the content store's fsverity
	// probe on every backend.Open of the checks): not this command's output.
	log.L.Logger.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fig, err := soak.Run(ctx, o)
	if fig != nil {
		text := fig.Text()
		fmt.Print(text)
		if *out != "" {
			if werr := os.MkdirAll(*out, 0o755); werr == nil {
				js, _ := fig.JSON()
				_ = os.WriteFile(filepath.Join(*out, "report.json"), js, 0o644)
				_ = os.WriteFile(filepath.Join(*out, "report.md"), []byte(text), 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !fig.OK() {
		return 1
	}
	return 0
}
