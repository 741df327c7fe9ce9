package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
)

// Options choose the cases, their sizes and how often each runs: what Measure does on any
// target. NewFlags sets them from the command line of the driver and of `criimage bench`.
type Options struct {
	Runs int // runs per case and runtime (≥ 1; the issue asks ≥ 5)

	Large      int64 // bytes of the first large image (256 MiB)
	LargeN     int   // its layers (8)
	Huge       int64 // bytes of the second (1 GiB)
	HugeN      int   // its layers (4)
	ManyLayers int   // layers of the many-layers image (200)
	Fresh      int64 // bytes of the fresh image of the concurrent cases (64 MiB, 4 layers)
	Concurrent []int // concurrent pulls of one reference (16, 64)
	ListN      int   // images in the store for list/stream (10,000; 0 = no list cases)
	FillPar    int   // concurrent PullImage calls while filling (and removing)

	Cases []string // run only cases whose name starts with one of these (nil = all)

	Log io.Writer // progress (nil = none)
}

// freshLayers is the layer count of the fresh images (pull-<Fresh> and the concurrent cases).
const freshLayers = 4

func (o *Options) want(name string) bool {
	if len(o.Cases) == 0 {
		return true
	}
	for _, c := range o.Cases {
		if strings.HasPrefix(name, c) {
			return true
		}
	}
	return false
}

// Case names. They carry the sizes, so a table says what it measured.
func (o *Options) largeCase() string { return fmt.Sprintf("pull-%s-%d", human(o.Large), o.LargeN) }
func (o *Options) hugeCase() string  { return fmt.Sprintf("pull-%s-%d", human(o.Huge), o.HugeN) }
func (o *Options) manyCase() string  { return fmt.Sprintf("pull-%d-layers", o.ManyLayers) }
func (o *Options) freshCase() string { return "pull-" + human(o.Fresh) }
func (o *Options) listCase() string  { return "list-" + count(o.ListN) }
func (o *Options) streamCase() string {
	return "stream-" + count(o.ListN)
}

func (o *Options) wantList() bool {
	return o.ListN > 0 && (o.want(o.listCase()) || o.want(o.streamCase()))
}

// check rejects options no run can use.
func (o *Options) check() error {
	switch {
	case o.Runs < 1:
		return fmt.Errorf("runs %d: want at least 1", o.Runs)
	case o.LargeN < 1 || o.HugeN < 1 || o.ManyLayers < 1:
		return fmt.Errorf("layers (large %d, huge %d, many %d): want at least 1 each", o.LargeN, o.HugeN, o.ManyLayers)
	case o.Large < int64(o.LargeN) || o.Huge < int64(o.HugeN):
		return fmt.Errorf("large %d B over %d layers, huge %d B over %d layers: want at least one byte per layer", o.Large, o.LargeN, o.Huge, o.HugeN)
	case o.Fresh < freshLayers:
		return fmt.Errorf("fresh %d B: want at least %d (one byte per layer)", o.Fresh, freshLayers)
	case o.ListN < 0:
		return fmt.Errorf("list %d: want 0 (none) or more", o.ListN)
	case o.FillPar < 1:
		return fmt.Errorf("fill-par %d: want at least 1", o.FillPar)
	}
	for _, n := range o.Concurrent {
		if n < 1 {
			return fmt.Errorf("concurrent %d: want at least 1", n)
		}
	}
	names := []string{o.largeCase(), o.hugeCase(), o.manyCase(), o.freshCase()}
	for i, n := range names {
		if slices.Contains(names[i+1:], n) {
			return fmt.Errorf("two cases would be named %s: choose other sizes", n)
		}
	}
	return nil
}

// Sample is one case's measurements on one runtime.
type Sample struct {
	Values []float64 // seconds, or bytes for rss
	Err    string    // the case failed or is unsupported
	GETs   int       // max GETs of one blob over all runs (concurrent cases)
}

// Results are a whole run.
type Results struct {
	Opts     Options
	Runtimes []string // the columns, in the targets' order
	// Baseline is the runtime the targets are stated against ("containerd 2.4.2" in
	// make bench); "" leaves the target columns out.
	Baseline string
	Cases    []Case
	Data     map[string]map[string]*Sample // case → runtime → sample
	Started  time.Time
	Elapsed  time.Duration
	Extra    []string // informational lines (fill times, …)
}

// Case names a row of the table.
type Case struct {
	Name, Unit, Desc string
}

func (r *Results) sample(c, rt string) *Sample {
	m := r.Data[c]
	if m == nil {
		m = map[string]*Sample{}
		r.Data[c] = m
	}
	s := m[rt]
	if s == nil {
		s = &Sample{}
		m[rt] = s
	}
	return s
}

// lockedWriter serializes the progress lines of concurrent goroutines (the fills, the removals).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lockLog makes o.Log safe for concurrent progress lines.
func (o *Options) lockLog() {
	if _, ok := o.Log.(*lockedWriter); !ok && o.Log != nil {
		o.Log = &lockedWriter{w: o.Log}
	}
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "%s bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Measure runs the cases of o on targets and returns the results: every run of a case on every
// target in turn, the first target rotating per run, so that none always comes first after an
// idle period. Pulls are cold: after each, the image is removed through CRI, its absence checked
// with ImageStatus, the file system synced and the target's process left to settle.
//
// relist, if not nil, is called once before the list cases and returns the targets they run on,
// under the same names (the driver restarts its daemons on a tmpfs); nil keeps targets. The list
// cases leave their images in the targets' stores: a caller that keeps the runtime removes them.
func Measure(ctx context.Context, o Options, imgs *Images, targets []*Target, relist func(context.Context) ([]*Target, error)) (*Results, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	o.lockLog()
	start := time.Now()
	res := &Results{Opts: o, Data: map[string]map[string]*Sample{}, Started: start}
	for _, t := range targets {
		res.Runtimes = append(res.Runtimes, t.Name)
	}
	order := func(run int) []*Target {
		out := make([]*Target, 0, len(targets))
		for i := range targets {
			out = append(out, targets[(i+run)%len(targets)])
		}
		return out
	}

	pullCase := func(c Case, img func(run int) (pushed, error), rss bool) error {
		if !o.want(c.Name) {
			return nil
		}
		res.Cases = append(res.Cases, c)
		rssName := "rss-" + strings.TrimPrefix(c.Name, "pull-")
		if rss {
			res.Cases = append(res.Cases, Case{rssName, "bytes", "peak RSS of the daemon during " + c.Name})
		}
		for run := range o.Runs {
			p, err := img(run)
			if err != nil {
				return err
			}
			for _, t := range order(run) {
				s := res.sample(c.Name, t.Name)
				if s.Err != "" {
					continue
				}
				var r *Sample
				if rss {
					if r = res.sample(rssName, t.Name); r.Err == "" {
						if err := t.ResetPeakRSS(); err != nil {
							r.Err = err.Error()
						}
					}
				}
				dt, err := coldPull(ctx, t, p.Ref, func() {
					if r == nil || r.Err != "" {
						return
					}
					peak, err := t.PeakRSS()
					if err != nil {
						r.Err = err.Error()
						return
					}
					r.Values = append(r.Values, float64(peak))
				})
				if err != nil {
					s.Err = err.Error()
					o.logf("%s %s run %d: %v", c.Name, t.Name, run+1, err)
					continue
				}
				s.Values = append(s.Values, dt.Seconds())
				o.logf("%-16s run %d/%d %-18s %7.3fs%s", c.Name, run+1, o.Runs, t.Name, dt.Seconds(), rssNote(r))
			}
		}
		return nil
	}
	fixed := func(p pushed) func(int) (pushed, error) { return func(int) (pushed, error) { return p, nil } }

	if err := pullCase(Case{o.largeCase(), "s", fmt.Sprintf("cold pull, %s in %d incompressible gzip layers", human(o.Large), o.LargeN)}, fixed(imgs.large), true); err != nil {
		return nil, err
	}
	if err := pullCase(Case{o.hugeCase(), "s", fmt.Sprintf("cold pull, %s in %d layers", human(o.Huge), o.HugeN)}, fixed(imgs.huge), false); err != nil {
		return nil, err
	}
	if err := pullCase(Case{o.manyCase(), "s", fmt.Sprintf("cold pull, %d small layers", o.ManyLayers)}, fixed(imgs.many), false); err != nil {
		return nil, err
	}
	fresh := func(tag string) func(int) (pushed, error) {
		return func(run int) (pushed, error) {
			seed := fmt.Sprintf("criimage-bench %s %d %d", tag, run, start.UnixNano())
			img := fixtures.Unique(seed, freshLayers, int(o.Fresh)/freshLayers)
			return push(imgs.reg, img, RepoPrefix+tag, fmt.Sprintf("r%d", run))
		}
	}
	if err := pullCase(Case{o.freshCase(), "s", fmt.Sprintf("cold pull, one fresh %s image (%d layers): the baseline of the concurrent cases", human(o.Fresh), freshLayers)}, fresh("one"), false); err != nil {
		return nil, err
	}
	for _, n := range o.Concurrent {
		name := fmt.Sprintf("concurrent-%d", n)
		if !o.want(name) {
			continue
		}
		res.Cases = append(res.Cases, Case{name, "s", fmt.Sprintf("%d concurrent pulls of one fresh %s image (wall time; max GETs of one blob)", n, human(o.Fresh))})
		img := fresh(name)
		for run := range o.Runs {
			p, err := img(run)
			if err != nil {
				return nil, err
			}
			for _, t := range order(run) {
				s := res.sample(name, t.Name)
				if s.Err != "" {
					continue
				}
				seq := imgs.reg.Journal().Last()
				dt, err := concurrentPull(ctx, t, p.Ref, n)
				if err == nil {
					err = removeCold(ctx, t, p.Ref)
				}
				if err != nil {
					s.Err = err.Error()
					o.logf("%s %s run %d: %v", name, t.Name, run+1, err)
					continue
				}
				maxPer, total := blobGets(imgs.reg.Journal().Since(seq), p.Repo, p.Blobs)
				s.Values = append(s.Values, dt.Seconds())
				s.GETs = max(s.GETs, maxPer)
				o.logf("%-16s run %d/%d %-18s %7.3fs  blob GETs: %d for %d blobs (max %d per blob)", name, run+1, o.Runs, t.Name, dt.Seconds(), total, len(p.Blobs), maxPer)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: %w", context.Cause(ctx))
	}

	// List and stream: fill every store with the same ListN images, then time the calls.
	if o.wantList() {
		if relist != nil {
			var err error
			if targets, err = relist(ctx); err != nil {
				return nil, err
			}
		}
		fillErrs := map[string]error{}
		var wg sync.WaitGroup
		var mu sync.Mutex
		// Every store at once: a fill is bound by per-pull latency (fsyncs), not CPU.
		for _, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o.logf("fill %s: pulling %d images", t.Name, len(imgs.list))
				t0 := time.Now()
				err := each(ctx, imgs.list, o.FillPar, func(ctx context.Context, ref string) error {
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					if _, err := t.Images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
						return fmt.Errorf("pull %s: %w", ref, err)
					}
					return nil
				}, func(n int) { o.logf("fill %s: %d/%d", t.Name, n, len(imgs.list)) })
				el := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				fillErrs[t.Name] = err
				if err != nil {
					o.logf("fill %s: %v", t.Name, err)
					return
				}
				res.Extra = append(res.Extra, fmt.Sprintf("filling %s with %d images (%d concurrent PullImage calls, all runtimes at once) took %.0f s", t.Name, len(imgs.list), o.FillPar, el.Seconds()))
				o.logf("fill %s: %d images in %.1fs", t.Name, len(imgs.list), el.Seconds())
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bench: %w", context.Cause(ctx))
		}
		slices.Sort(res.Extra) // the fills finish in any order
		for _, t := range targets {
			settle(t)
		}
		listName, streamName := o.listCase(), o.streamCase()
		res.Cases = append(res.Cases,
			Case{listName, "s", fmt.Sprintf("ListImages with %d images in the store", o.ListN)},
			Case{streamName, "s", fmt.Sprintf("StreamImages with %d images in the store (all messages)", o.ListN)})
		for run := range o.Runs {
			for _, t := range order(run) {
				if err := fillErrs[t.Name]; err != nil {
					res.sample(listName, t.Name).Err = "fill failed: " + err.Error()
					res.sample(streamName, t.Name).Err = "fill failed: " + err.Error()
					continue
				}
				for _, c := range []struct {
					name string
					f    func(context.Context, *Target) (int, error)
				}{{listName, listAll}, {streamName, streamAll}} {
					s := res.sample(c.name, t.Name)
					if s.Err != "" {
						continue
					}
					t0 := time.Now()
					n, err := c.f(ctx, t)
					dt := time.Since(t0)
					if err == nil && n < o.ListN {
						err = fmt.Errorf("got %d images, want at least %d", n, o.ListN)
					}
					if err != nil {
						s.Err = err.Error()
						o.logf("%s %s: %v", c.name, t.Name, err)
						continue
					}
					s.Values = append(s.Values, dt.Seconds())
					o.logf("%-16s run %d/%d %-18s %7.3fs (%d images)", c.name, run+1, o.Runs, t.Name, dt.Seconds(), n)
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: %w", context.Cause(ctx))
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func rssNote(r *Sample) string {
	if r == nil || r.Err != "" || len(r.Values) == 0 {
		return ""
	}
	return fmt.Sprintf("  peak RSS %d MiB", int64(r.Values[len(r.Values)-1])>>20)
}

// coldPull pulls ref on t, timing the PullImage call, calls after (the peak RSS is read there,
// before the removal), then removes the image (a synchronous GC on every runtime measured so far)
// and syncs the file system, so that the next pull is cold again.
func coldPull(ctx context.Context, t *Target, ref string, after func()) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err := t.Images.PullImage(pctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	dt := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("pull %s: %w", ref, err)
	}
	after()
	return dt, removeCold(ctx, t, ref)
}

func removeCold(ctx context.Context, t *Target, ref string) error {
	if _, err := t.Images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
		return fmt.Errorf("remove %s: %w", ref, err)
	}
	st, err := t.Images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		return fmt.Errorf("status %s after remove: %w", ref, err)
	}
	if st.GetImage() != nil {
		return fmt.Errorf("%s still present after RemoveImage", ref)
	}
	syncFS()
	settle(t)
	return nil
}

// concurrentPull starts n PullImage calls of ref at once and returns when all returned.
func concurrentPull(ctx context.Context, t *Target, ref string, n int) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, errs[i] = t.Images.PullImage(pctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	dt := time.Since(t0)
	return dt, errors.Join(errs...)
}

// each calls f on every item, par calls at a time, and returns the first error (no new call
// starts after it). progress, if not nil, gets the count done every 2,000 items.
func each(ctx context.Context, items []string, par int, f func(context.Context, string) error, progress func(int)) error {
	var (
		mu    sync.Mutex
		next  int
		done  int
		first error
		wg    sync.WaitGroup
	)
	for range max(par, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(items) || first != nil {
					mu.Unlock()
					return
				}
				if err := ctx.Err(); err != nil {
					first = err
					mu.Unlock()
					return
				}
				item := items[next]
				next++
				mu.Unlock()
				err := f(ctx, item)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				done++
				if done%2000 == 0 && progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func listAll(ctx context.Context, t *Target) (int, error) {
	r, err := t.Images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return 0, err
	}
	return len(r.Images), nil
}

func streamAll(ctx context.Context, t *Target) (int, error) {
	st, err := t.Images.StreamImages(ctx, &runtime.StreamImagesRequest{})
	if err != nil {
		return 0, err
	}
	batches, err := criendpoint.Drain(st)
	return len(criendpoint.Flatten(batches)), err
}

// human is a byte count as the case names spell it: 256MiB, 1GiB, 512KiB, 1000B.
func human(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	default:
		return fmt.Sprintf("%dB", b)
	}
}

func count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
