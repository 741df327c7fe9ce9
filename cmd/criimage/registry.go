package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/control"
	"github.com/criimage/criimage/registry/store"
)

// registryInfo is what "criimage registry" prints once it serves (also as JSON with -json).
type registryInfo struct {
	control.Endpoints
	Control  string `json:"control"`  // base URL of the control API
	User     string `json:"user"`     // fixture user (a documented fixture value, not a secret)
	Password string `json:"password"` // fixture password (documented fixture value)
	CAOut    string `json:"caOut,omitempty"`
	Images   int    `json:"images"` // catalog references seeded
}

// runRegistry implements "criimage registry": it starts the fixture registry, seeds the catalog,
// prints the endpoints and serves until ctx ends (SIGTERM, SIGINT).
func runRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "config" {
		return runRegistryConfig(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("criimage registry", stderr)
	plain := fs.String("plain", "127.0.0.1:0", "listen address of the plain HTTP listener (loopback only)")
	tlsAddr := fs.String("tls", "127.0.0.1:0", "listen address of the TLS listener (loopback only)")
	foreign := fs.String("foreign", "127.0.0.2:0", "listen address of the foreign host (loopback only; use another IP than the registry)")
	ctl := fs.String("control", "127.0.0.1:0", "listen address of the control API (loopback only)")
	tlsHost := fs.String("tls-host", registry.DefaultTLSHostName, "DNS name in the TLS certificate (plus 127.0.0.1, ::1, localhost)")
	caOut := fs.String("ca-out", "", "also write the CA certificate (PEM) to this file")
	catalog := fs.Bool("catalog", true, "seed the fixture catalog")
	seed := fs.String("catalog-seed", "", "salt for the catalog's content (\"\" = the golden catalog)")
	largeSize := fs.Int64("large-size", 0, "payload bytes of the \"large\" image (0 leaves it out)")
	asJSON := fs.Bool("json", false, "print the endpoints as one JSON object")
	verbose := fs.Bool("v", false, "log every listener event to stderr")
	journalEntries := fs.Int("journal-entries", 10000, "keep only the newest N requests in the journal (0 = all; a long-running registry needs a bound)")
	def := store.DefaultLimits()
	maxUpload := fs.Int64("max-upload-bytes", def.MaxUploadBytes, "bytes one blob upload session may receive (413 DENIED beyond; -1 = no limit)")
	maxUploads := fs.Int("max-uploads", def.MaxUploads, "upload sessions open at once (429 TOOMANYREQUESTS beyond; -1 = no limit)")
	maxPending := fs.Int64("max-pending-upload-bytes", def.MaxPendingBytes, "bytes all open upload sessions may hold together (-1 = no limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *journalEntries < 0 {
		return fmt.Errorf("%w: -journal-entries %d: want 0 (all) or more", errUsage, *journalEntries)
	}
	for name, addr := range map[string]string{"-plain": *plain, "-tls": *tlsAddr, "-foreign": *foreign, "-control": *ctl} {
		if err := registry.CheckLoopback(addr); err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, name, err)
		}
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg, err := registry.Start(ctx, registry.Options{
		PlainAddr: *plain, TLSAddr: *tlsAddr, ForeignAddr: *foreign, TLSHostName: *tlsHost, Logger: logger,
		Limits:            store.Limits{MaxUploadBytes: *maxUpload, MaxUploads: *maxUploads, MaxPendingBytes: *maxPending},
		MaxJournalEntries: *journalEntries,
	})
	if err != nil {
		return err
	}
	defer reg.Close()

	info := registryInfo{Endpoints: control.EndpointsOf(reg), User: auth.FixtureUser, Password: auth.FixturePassword}
	if *caOut != "" {
		if err := os.WriteFile(*caOut, reg.CAPEM(), 0o644); err != nil {
			return fmt.Errorf("writing CA to -ca-out: %w", err)
		}
		info.CAOut = *caOut
	}
	if *catalog {
		start := time.Now()
		set, err := fixtures.Catalog(fixtures.Options{ForeignURL: reg.ForeignURL(), Seed: *seed, LargeSize: *largeSize})
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if err := set.Seed(reg); err != nil {
			return fmt.Errorf("seeding the catalog: %w", err)
		}
		info.Images = len(set.Refs())
		logger.Info("catalog seeded", "refs", info.Images, "took", time.Since(start))
	}
	srv, err := control.Start(ctx, *ctl, reg)
	if err != nil {
		return err
	}
	defer srv.Close()
	info.Control = srv.URL()

	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(info); err != nil {
			return fmt.Errorf("printing endpoints: %w", err)
		}
	} else {
		printRegistryInfo(stdout, info)
	}
	<-ctx.Done()
	return nil
}

func printRegistryInfo(w io.Writer, i registryInfo) {
	fmt.Fprintf(w, "fixture registry serving (stop with SIGTERM or Ctrl-C)\n")
	fmt.Fprintf(w, "  plain HTTP   %s           e.g. %s/anon/<repo>:<tag>\n", i.Plain, i.Plain)
	fmt.Fprintf(w, "  TLS          %s (listening on %s; resolve %s to 127.0.0.1)\n", i.TLS, i.TLSAddr, i.TLSHostName)
	fmt.Fprintf(w, "  foreign host %s\n", i.Foreign)
	fmt.Fprintf(w, "  CA file      %s\n", i.CAFile)
	if i.CAOut != "" {
		fmt.Fprintf(w, "  CA copy      %s\n", i.CAOut)
	}
	fmt.Fprintf(w, "  control API  %s (GET /endpoints, /journal; POST /faults, /tokens/…)\n", i.Control)
	fmt.Fprintf(w, "  fixture user %s / password %s (documented fixture credentials)\n", i.User, i.Password)
	fmt.Fprintf(w, "  catalog      %d references seeded\n", i.Images)
}
