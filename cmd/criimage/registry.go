package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
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
	plain := fs.String("plain", "", "listen address of the plain HTTP listener (default LISTEN:0)")
	tlsAddr := fs.String("tls", "", "listen address of the TLS listener (default LISTEN:0)")
	foreign := fs.String("foreign", "", "listen address of the foreign host, another IP than the registry's unless -advertise names it (default 127.0.0.2:0; LISTEN:0 outside loopback)")
	listenIP := fs.String("listen", "127.0.0.1", "IP of the listeners whose address is not given; outside loopback needs -allow-remote")
	advertise := fs.String("advertise", "", "host name or IP a runtime reaches the registry under: written into its endpoints (and so into image references and runtime configs) and the TLS certificate")
	allowRemote := fs.Bool("allow-remote", false, "let the registry listen on a non-loopback IP and advertise a non-loopback host, for a runtime on another machine (docs/remote.md)")
	ctl := fs.String("control", "127.0.0.1:0", "listen address of the control API (loopback only)")
	tlsHost := fs.String("tls-host", registry.DefaultTLSHostName, "DNS name in the TLS certificate (plus -advertise, the TLS listen IP, 127.0.0.1, ::1, localhost)")
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
	if err := registry.CheckLoopback(*ctl); err != nil {
		return fmt.Errorf("%w: -control: %v", errUsage, err)
	}
	listenAddrs := map[string]string{"-plain": *plain, "-tls": *tlsAddr, "-foreign": *foreign, "-listen": net.JoinHostPort(*listenIP, "0")}
	for _, name := range slices.Sorted(maps.Keys(listenAddrs)) {
		if listenAddrs[name] == "" {
			continue
		}
		if err := registry.CheckListen(listenAddrs[name], *allowRemote); err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, name, remoteHint(err))
		}
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg, err := registry.Start(ctx, registry.Options{
		PlainAddr: *plain, TLSAddr: *tlsAddr, ForeignAddr: *foreign, TLSHostName: *tlsHost, Logger: logger,
		ListenIP: *listenIP, Advertise: *advertise, AllowRemote: *allowRemote,
		Limits:            store.Limits{MaxUploadBytes: *maxUpload, MaxUploads: *maxUploads, MaxPendingBytes: *maxPending},
		MaxJournalEntries: *journalEntries,
	})
	if errors.Is(err, registry.ErrNotLoopback) {
		return fmt.Errorf("%w: %v", errUsage, remoteHint(err))
	}
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

// remoteHint adds the opt-in flag to an error that only lacks it.
func remoteHint(err error) error {
	if errors.Is(err, registry.ErrNotLoopback) {
		return fmt.Errorf("%w; to serve a runtime on another machine, add -allow-remote (docs/remote.md)", err)
	}
	return err
}

func printRegistryInfo(w io.Writer, i registryInfo) {
	fmt.Fprintf(w, "fixture registry serving (stop with SIGTERM or Ctrl-C)\n")
	if i.Remote {
		fmt.Fprintf(w, "  remote       serving other machines under the hosts below (docs/remote.md)\n")
	}
	fmt.Fprintf(w, "  plain HTTP   %s           e.g. %s/anon/<repo>:<tag>\n", i.Plain, i.Plain)
	to, _, _ := net.SplitHostPort(i.TLSAddr)
	if net.ParseIP(to) == nil {
		to += "'s address"
	}
	fmt.Fprintf(w, "  TLS          %s (also %s; resolve %s to %s)\n", i.TLS, i.TLSAddr, i.TLSHostName, to)
	fmt.Fprintf(w, "  foreign host %s\n", i.Foreign)
	fmt.Fprintf(w, "  CA file      %s\n", i.CAFile)
	if i.CAOut != "" {
		fmt.Fprintf(w, "  CA copy      %s\n", i.CAOut)
	}
	fmt.Fprintf(w, "  control API  %s (GET /endpoints, /journal; POST /faults, /tokens/…)\n", i.Control)
	fmt.Fprintf(w, "  fixture user %s / password %s (documented fixture credentials)\n", i.User, i.Password)
	fmt.Fprintf(w, "  catalog      %d references seeded\n", i.Images)
}
