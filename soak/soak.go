// Package soak is criimage's reliability run: it drives a real `criimage serve` process over its
// unix socket, pulling from real fixture registries on loopback, the way an overloaded node
// would, and then checks that nothing is left inconsistent. Three phases:
//
//  1. storm — Workers goroutines mix PullImage (healthy, credentialed, faulted and
//     credential-baiting images), RemoveImage, ListImages, StreamImages, ImageStatus and
//     ImageFsInfo for Duration;
//  2. consistency — every listed image agrees between List, Stream and Status and re-pulls to
//     the same ID; then every image is removed and, with the server stopped, the root must hold
//     no blob, snapshot, lease, partial download or orphan snapshot directory;
//  3. crash loop — Crashes rounds of: start, pull big images concurrently, kill -9 at a random
//     moment, restart on the same root, check List/Status agree, remove everything, stop and
//     count what survived.
//
// Figures: operations per second, errors by RPC and gRPC code, unexpected outcomes, failed
// ImageFsInfo calls, latency of failing pulls, leftovers, and credential hits — a fixture
// credential seen by any host other than the registry (the foreign host and the recorder on the
// registry's IP and another port, to which a bait registry's token service redirects).
// Everything listens on 127.0.0.0/8, and the run stops by itself.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options of a run.
type Options struct {
	Binary   string        // a built criimage (its serve command is what is soaked)
	Dir      string        // work directory ("" = a temp dir, removed at the end)
	Duration time.Duration // length of the storm
	Workers  int           // goroutines of the storm
	Crashes  int           // kill -9 rounds
	Seed     uint64        // seeds the choice of operations and kill moments (0 = from the clock)
	Log      io.Writer     // progress lines (nil = discard)
}

// Figures are a run's results.
type Figures struct {
	Seed           uint64                    `json:"seed"`
	StormSeconds   float64                   `json:"storm_seconds"`
	Workers        int                       `json:"workers"`
	Ops            map[string]int            `json:"ops"`              // by RPC (pull-healthy, pull-faulted, …)
	Errors         map[string]map[string]int `json:"errors"`           // RPC → gRPC code → count
	Latency        map[string]LatencySummary `json:"latency"`          // RPC → latency of its calls
	Unexpected     []string                  `json:"unexpected"`       // first few unexpected outcomes
	UnexpectedN    int                       `json:"unexpected_count"` // all of them
	FsInfoFailures int                       `json:"fsinfo_failures"`
	CredentialHits map[string]int            `json:"credential_hits"` // listener → requests carrying a fixture secret
	Consistency    []string                  `json:"consistency_problems"`
	Listed         int                       `json:"listed_after_storm"`
	CrashRounds    int                       `json:"crash_rounds"`
	Problems       []string                  `json:"problems"`
	Leftovers      map[string]int            `json:"leftovers"` // kind → count, over every check
	FailedPulls    LatencySummary            `json:"failed_pull_latency"`
	Phases         map[string]float64        `json:"phase_seconds"`

	mu  sync.Mutex
	lat map[string][]time.Duration
}

// LatencySummary is the distribution of one kind of call.
type LatencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func newFigures(seed uint64, workers int) *Figures {
	return &Figures{Seed: seed, Workers: workers, Ops: map[string]int{}, Errors: map[string]map[string]int{},
		Latency: map[string]LatencySummary{}, CredentialHits: map[string]int{}, Leftovers: map[string]int{},
		Phases: map[string]float64{}, lat: map[string][]time.Duration{}}
}

// maxUnexpected is how many unexpected outcomes are kept verbatim.
const maxUnexpected = 20

// record counts one call.
func (f *Figures) record(op string, d time.Duration, code string, unexpected string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Ops[op]++
	f.lat[op] = append(f.lat[op], d)
	if code != "OK" {
		if f.Errors[op] == nil {
			f.Errors[op] = map[string]int{}
		}
		f.Errors[op][code]++
		if strings.HasPrefix(op, "pull-") {
			f.lat["failed-pull"] = append(f.lat["failed-pull"], d)
		}
	}
	if op == "fsinfo" && code != "OK" {
		f.FsInfoFailures++
	}
	if unexpected != "" {
		f.UnexpectedN++
		if len(f.Unexpected) < maxUnexpected {
			f.Unexpected = append(f.Unexpected, unexpected)
		}
	}
}

// note records an unexpected outcome that is not a call's own.
func (f *Figures) note(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.UnexpectedN++
	if len(f.Unexpected) < maxUnexpected {
		f.Unexpected = append(f.Unexpected, msg)
	}
}

func (f *Figures) leftover(kind string, n int, where string) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Leftovers[kind] += n
	f.Problems = append(f.Problems, fmt.Sprintf("%s: %d %s left", where, n, kind))
}

func (f *Figures) summarize() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for op, ds := range f.lat {
		s := summarize(ds)
		if op == "failed-pull" {
			f.FailedPulls = s
			continue
		}
		f.Latency[op] = s
	}
}

func summarize(ds []time.Duration) LatencySummary {
	if len(ds) == 0 {
		return LatencySummary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return LatencySummary{N: len(s), P50: ms(s[len(s)/2]), P99: ms(s[min(len(s)-1, len(s)*99/100)]), Max: ms(s[len(s)-1])}
}

// OK reports whether the run found nothing wrong: no unexpected outcome, no failed ImageFsInfo,
// no credential at a host other than the registry, no inconsistency and nothing left behind.
func (f *Figures) OK() bool {
	hits := 0
	for _, n := range f.CredentialHits {
		hits += n
	}
	left := 0
	for _, n := range f.Leftovers {
		left += n
	}
	return f.UnexpectedN == 0 && f.FsInfoFailures == 0 && hits == 0 && len(f.Consistency) == 0 && len(f.Problems) == 0 && left == 0
}

// Text renders the figures for a terminal or a Markdown file.
func (f *Figures) Text() string {
	var b strings.Builder
	total := 0
	for _, n := range f.Ops {
		total += n
	}
	fmt.Fprintf(&b, "storm: %d workers, %.0fs, %d calls, %.0f ops/s (seed %d)\n\n", f.Workers, f.StormSeconds, total, float64(total)/max(f.StormSeconds, 1e-9), f.Seed)
	ops := make([]string, 0, len(f.Ops))
	for op := range f.Ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	b.WriteString("| call | n | errors by gRPC code | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n")
	for _, op := range ops {
		var errs []string
		for code, n := range f.Errors[op] {
			errs = append(errs, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(errs)
		l := f.Latency[op]
		fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %.1f | %.1f |\n", op, f.Ops[op], strings.Join(errs, ", "), l.P50, l.P99, l.Max)
	}
	fmt.Fprintf(&b, "\nfailing pulls: n=%d, p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", f.FailedPulls.N, f.FailedPulls.P50, f.FailedPulls.P99, f.FailedPulls.Max)
	fmt.Fprintf(&b, "failed ImageFsInfo calls: %d\n", f.FsInfoFailures)
	fmt.Fprintf(&b, "unexpected outcomes: %d\n", f.UnexpectedN)
	for _, u := range f.Unexpected {
		fmt.Fprintf(&b, "  - %s\n", u)
	}
	hits := 0
	for l, n := range f.CredentialHits {
		hits += n
		fmt.Fprintf(&b, "credential hits at %s: %d\n", l, n)
	}
	if hits == 0 {
		b.WriteString("credential hits at hosts other than the registry: 0\n")
	}
	fmt.Fprintf(&b, "after the storm: %d images listed, %d consistency problems\n", f.Listed, len(f.Consistency))
	for _, p := range f.Consistency {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	fmt.Fprintf(&b, "crash loop: %d rounds of kill -9 mid-pull, %d problems\n", f.CrashRounds, len(f.Problems))
	for _, p := range f.Problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	left := 0
	kinds := make([]string, 0, len(f.Leftovers))
	for k, n := range f.Leftovers {
		left += n
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "leftovers (leases, partial downloads, orphan snapshot dirs, blobs, snapshots): %d %s\n", left, strings.Join(kinds, ", "))
	phases := make([]string, 0, len(f.Phases))
	for p, s := range f.Phases {
		phases = append(phases, fmt.Sprintf("%s %.0fs", p, s))
	}
	sort.Strings(phases)
	fmt.Fprintf(&b, "phases: %s\n", strings.Join(phases, ", "))
	if f.OK() {
		b.WriteString("result: OK\n")
	} else {
		b.WriteString("result: FAILED\n")
	}
	return b.String()
}

// JSON renders the figures as indented JSON.
func (f *Figures) JSON() ([]byte, error) { return json.MarshalIndent(f, "", "  ") }

// Run runs the three phases.
func Run(ctx context.Context, opts Options) (*Figures, error) {
	if opts.Binary == "" {
		return nil, errors.New("soak: no criimage binary")
	}
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Duration <= 0 {
		opts.Duration = time.Minute
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "criimage-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// A short path for the socket (sun_path is 108 bytes).
	sockDir, err := os.MkdirTemp("", "cisk")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(sockDir)
	fx, err := newFixtures(ctx)
	if err != nil {
		return nil, err
	}
	defer fx.close()
	r := &run{opts: opts, fx: fx, root: filepath.Join(dir, "root"), sock: filepath.Join(sockDir, "s.sock"),
		fig: newFigures(opts.Seed, opts.Workers), rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	defer func() {
		// Whatever the phases found, and also when one stopped the run.
		r.fig.CredentialHits = fx.credentialHits()
		r.fig.summarize()
	}()
	for _, phase := range []struct {
		name string
		fn   func(context.Context) error
	}{{"storm", r.storm}, {"consistency", r.consistency}, {"crash", r.crashLoop}} {
		start := time.Now()
		fmt.Fprintf(opts.Log, "soak: %s…\n", phase.name)
		if err := phase.fn(ctx); err != nil {
			return r.fig, fmt.Errorf("soak: %s: %w", phase.name, err)
		}
		r.fig.Phases[phase.name] = time.Since(start).Seconds()
	}
	return r.fig, nil
}

// run is one soak's state.
type run struct {
	opts Options
	fx   *fixtures
	root string
	sock string
	fig  *Figures
	rngM sync.Mutex
	rng  *rand.Rand
}

func (r *run) intn(n int) int {
	r.rngM.Lock()
	defer r.rngM.Unlock()
	return r.rng.IntN(n)
}
