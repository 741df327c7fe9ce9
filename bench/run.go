package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// Options configure one driver run.
type Options struct {
	RepoRoot    string   // where hack/containerd-daemon.sh lives
	Bin         string   // the criimage binary (serve)
	Versions    []string // containerd versions, first = the ratio's denominator ("2.4.2")
	Runs        int      // runs per case and runtime (≥ 1; the issue asks ≥ 5)
	Snapshotter string   // every runtime's snapshotter ("overlayfs", containerd's CRI default)
	TmpDir      string   // parent of the temp dirs ("" = os.TempDir())
	ListTmpDir  string   // parent of the list cases' daemon dirs (a tmpfs, e.g. /dev/shm; "" = TmpDir)

	Large      int64 // bytes of the first large image (256 MiB)
	LargeN     int   // its layers (8)
	Huge       int64 // bytes of the second (1 GiB)
	HugeN      int   // its layers (4)
	ManyLayers int   // layers of the many-layers image (200)
	Fresh      int64 // bytes of the fresh image of the concurrent cases (64 MiB, 4 layers)
	Concurrent []int // concurrent pulls of one reference (16, 64)
	ListN      int   // images in the store for list/stream (10,000)
	FillPar    int   // concurrent PullImage calls while filling

	NoReference bool     // leave the reference out (containerd alone)
	Cases       []string // run only cases whose name starts with one of these (nil = all)

	Log io.Writer // progress
}

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

// Sample is one case's measurements on one runtime.
type Sample struct {
	Values []float64 // seconds, or bytes for rss
	Err    string    // the case failed or is unsupported
	GETs   int       // max GETs of one blob over all runs (concurrent cases)
	Note   string
}

// Results are a whole driver run.
type Results struct {
	Opts     Options
	Runtimes []string
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

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "%s bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run starts the registry and every runtime, runs every case and returns the results.
func Run(ctx context.Context, o Options) (*Results, error) {
	if o.Runs < 1 {
		return nil, errors.New("bench: Runs must be at least 1")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(o.TmpDir, "criimage-bench.")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	certs := filepath.Join(tmp, "certs.d")
	if _, err := runtimeconfig.WriteCertsDir(certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		return nil, err
	}

	o.logf("building and pushing images (%d MiB/%d, %d MiB/%d, %d layers)", o.Large>>20, o.LargeN, o.Huge>>20, o.HugeN, o.ManyLayers)
	large, err := largeImage(reg, o.Large, o.LargeN, "anon/bench/large")
	if err != nil {
		return nil, err
	}
	huge, err := largeImage(reg, o.Huge, o.HugeN, "anon/bench/huge")
	if err != nil {
		return nil, err
	}
	many, err := manyLayersImage(reg, o.ManyLayers, "anon/bench/many")
	if err != nil {
		return nil, err
	}

	var daemons []*Daemon
	stopAll := func(ds []*Daemon) {
		for _, d := range ds {
			if err := d.Close(); err != nil {
				o.logf("stop %s: %v", d.Name, err)
			}
		}
	}
	defer func() { stopAll(daemons) }()
	if daemons, err = o.startDaemons(ctx, tmp, certs); err != nil {
		return nil, err
	}
	res := &Results{Opts: o, Data: map[string]map[string]*Sample{}, Started: start}
	for _, d := range daemons {
		res.Runtimes = append(res.Runtimes, d.Name)
	}

	// order returns the daemons rotated by run, so none is always first after an idle period.
	order := func(run int) []*Daemon {
		out := make([]*Daemon, 0, len(daemons))
		for i := range daemons {
			out = append(out, daemons[(i+run)%len(daemons)])
		}
		return out
	}

	pullCase := func(c Case, img func(run int) (pushed, error), rss bool) error {
		if !o.want(c.Name) {
			return nil
		}
		res.Cases = append(res.Cases, c)
		if rss {
			res.Cases = append(res.Cases, Case{"rss-" + c.Name[len("pull-"):], "bytes", "peak RSS of the daemon during " + c.Name})
		}
		for run := range o.Runs {
			p, err := img(run)
			if err != nil {
				return err
			}
			for _, d := range order(run) {
				s := res.sample(c.Name, d.Name)
				if s.Err != "" {
					continue
				}
				dt, peak, err := coldPull(ctx, d, p.Ref, rss)
				if err != nil {
					s.Err = err.Error()
					o.logf("%s %s run %d: %v", c.Name, d.Name, run+1, err)
					continue
				}
				s.Values = append(s.Values, dt.Seconds())
				if rss {
					r := res.sample("rss-"+c.Name[len("pull-"):], d.Name)
					r.Values = append(r.Values, float64(peak))
				}
				o.logf("%-16s run %d/%d %-18s %7.3fs%s", c.Name, run+1, o.Runs, d.Name, dt.Seconds(), rssNote(rss, peak))
			}
		}
		return nil
	}
	fixed := func(p pushed) func(int) (pushed, error) { return func(int) (pushed, error) { return p, nil } }

	if err := pullCase(Case{fmt.Sprintf("pull-%s-%d", human(o.Large), o.LargeN), "s", fmt.Sprintf("cold pull, %s in %d incompressible gzip layers", human(o.Large), o.LargeN)}, fixed(large), true); err != nil {
		return nil, err
	}
	if err := pullCase(Case{fmt.Sprintf("pull-%s-%d", human(o.Huge), o.HugeN), "s", fmt.Sprintf("cold pull, %s in %d layers", human(o.Huge), o.HugeN)}, fixed(huge), false); err != nil {
		return nil, err
	}
	if err := pullCase(Case{fmt.Sprintf("pull-%d-layers", o.ManyLayers), "s", fmt.Sprintf("cold pull, %d small layers", o.ManyLayers)}, fixed(many), false); err != nil {
		return nil, err
	}
	freshLayers := 4
	fresh := func(tag string) func(int) (pushed, error) {
		return func(run int) (pushed, error) {
			seed := fmt.Sprintf("criimage-bench %s %d %d", tag, run, start.UnixNano())
			img := fixtures.Unique(seed, freshLayers, int(o.Fresh)/freshLayers)
			return push(reg, img, "anon/bench/"+tag, fmt.Sprintf("r%d", run))
		}
	}
	oneName := fmt.Sprintf("pull-%s", human(o.Fresh))
	if err := pullCase(Case{oneName, "s", fmt.Sprintf("cold pull, one fresh %s image (%d layers): the baseline of the concurrent cases", human(o.Fresh), freshLayers)}, fresh("one"), false); err != nil {
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
			for _, d := range order(run) {
				s := res.sample(name, d.Name)
				if s.Err != "" {
					continue
				}
				seq := reg.Journal().Last()
				dt, err := concurrentPull(ctx, d, p.Ref, n)
				if err == nil {
					err = removeCold(ctx, d, p.Ref)
				}
				if err != nil {
					s.Err = err.Error()
					o.logf("%s %s run %d: %v", name, d.Name, run+1, err)
					continue
				}
				maxPer, total := blobGets(reg.Journal().Since(seq), p.Repo, p.Blobs)
				s.Values = append(s.Values, dt.Seconds())
				s.GETs = max(s.GETs, maxPer)
				o.logf("%-16s run %d/%d %-18s %7.3fs  blob GETs: %d for %d blobs (max %d per blob)", name, run+1, o.Runs, d.Name, dt.Seconds(), total, len(p.Blobs), maxPer)
			}
		}
	}

	// List and stream: fill every store with the same ListN images, then time the calls.
	if o.ListN > 0 && (o.want("list-") || o.want("stream-")) {
		// Fresh daemons on a tmpfs (o.ListTmpDir): the fill is ListN pulls of tiny images, bound
		// by metadata fsyncs, and would take minutes on disk; the list calls never touch the disk.
		stopAll(daemons)
		daemons = nil
		ldir := o.ListTmpDir
		if ldir == "" {
			ldir = o.TmpDir
		}
		ltmp, err := os.MkdirTemp(ldir, "criimage-bench.")
		if err != nil {
			return nil, err
		}
		// Stop these daemons before their dir goes (defers run last-in first-out).
		defer func() {
			stopAll(daemons)
			daemons = nil
			_ = os.RemoveAll(ltmp)
		}()
		if daemons, err = o.startDaemons(ctx, ltmp, certs); err != nil {
			return nil, err
		}
		o.logf("pushing %d tiny unique images", o.ListN)
		refs, err := listImages(reg, o.ListN, "anon/bench/list")
		if err != nil {
			return nil, err
		}
		// Every store at once: a fill is bound by per-pull latency (fsyncs), not CPU.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, d := range daemons {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				err := fill(ctx, d, refs, o.FillPar, func(n int) { o.logf("fill %s: %d/%d", d.Name, n, len(refs)) })
				el := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.sample("list-fill", d.Name).Err = err.Error()
					o.logf("fill %s: %v", d.Name, err)
					return
				}
				res.Extra = append(res.Extra, fmt.Sprintf("filling %s with %d images (%d concurrent PullImage calls, all runtimes at once) took %.0f s", d.Name, len(refs), o.FillPar, el.Seconds()))
				o.logf("fill %s: %d images in %.1fs", d.Name, len(refs), el.Seconds())
			}()
		}
		wg.Wait()
		for _, d := range daemons {
			settle(d)
		}
		listName, streamName := fmt.Sprintf("list-%s", count(o.ListN)), fmt.Sprintf("stream-%s", count(o.ListN))
		res.Cases = append(res.Cases,
			Case{listName, "s", fmt.Sprintf("ListImages with %d images in the store", o.ListN)},
			Case{streamName, "s", fmt.Sprintf("StreamImages with %d images in the store (all messages)", o.ListN)})
		for run := range o.Runs {
			for _, d := range order(run) {
				if f := res.Data["list-fill"]; f != nil && f[d.Name] != nil && f[d.Name].Err != "" {
					res.sample(listName, d.Name).Err = "fill failed"
					res.sample(streamName, d.Name).Err = "fill failed"
					continue
				}
				for _, c := range []struct {
					name string
					f    func(context.Context, *Daemon) (int, error)
				}{{listName, listAll}, {streamName, streamAll}} {
					s := res.sample(c.name, d.Name)
					if s.Err != "" {
						continue
					}
					t0 := time.Now()
					n, err := c.f(ctx, d)
					dt := time.Since(t0)
					if err == nil && n < o.ListN {
						err = fmt.Errorf("got %d images, want at least %d", n, o.ListN)
					}
					if err != nil {
						s.Err = err.Error()
						o.logf("%s %s: %v", c.name, d.Name, err)
						continue
					}
					s.Values = append(s.Values, dt.Seconds())
					o.logf("%-16s run %d/%d %-18s %7.3fs (%d images)", c.name, run+1, o.Runs, d.Name, dt.Seconds(), n)
				}
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func rssNote(rss bool, peak int64) string {
	if !rss {
		return ""
	}
	return fmt.Sprintf("  peak RSS %d MiB", peak>>20)
}

// startDaemons starts the reference (unless NoReference) and every containerd version under base.
func (o *Options) startDaemons(ctx context.Context, base, certs string) (ds []*Daemon, err error) {
	defer func() {
		if err != nil {
			for _, d := range ds {
				_ = d.Close()
			}
			ds = nil
		}
	}()
	if !o.NoReference {
		rd := filepath.Join(base, "ref")
		if err := os.MkdirAll(rd, 0o755); err != nil {
			return ds, err
		}
		ref, err := StartReference(ctx, o.Bin, rd, certs, o.Snapshotter)
		if err != nil {
			return ds, err
		}
		ds = append(ds, ref)
	}
	for i, v := range o.Versions {
		dir := filepath.Join(base, fmt.Sprintf("cd%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return ds, err
		}
		d, err := StartContainerd(ctx, o.RepoRoot, v, dir, certs, o.Snapshotter)
		if err != nil {
			return ds, err
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		o.logf("%s: pid %d, %s", d.Name, d.PID, d.Endpoint)
	}
	return ds, nil
}

// coldPull pulls ref on d, timing the PullImage call, then removes the image (a synchronous GC
// on every runtime) and syncs the file system, so the next pull is cold again.
func coldPull(ctx context.Context, d *Daemon, ref string, rss bool) (time.Duration, int64, error) {
	if rss {
		if err := d.ResetPeakRSS(); err != nil {
			return 0, 0, fmt.Errorf("reset peak RSS: %w", err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err := d.Images.PullImage(pctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	dt := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("pull %s: %w", ref, err)
	}
	var peak int64
	if rss {
		if peak, err = d.PeakRSS(); err != nil {
			return 0, 0, err
		}
	}
	return dt, peak, removeCold(ctx, d, ref)
}

func removeCold(ctx context.Context, d *Daemon, ref string) error {
	if _, err := d.Images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
		return fmt.Errorf("remove %s: %w", ref, err)
	}
	st, err := d.Images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		return fmt.Errorf("status %s after remove: %w", ref, err)
	}
	if st.GetImage() != nil {
		return fmt.Errorf("%s still present after RemoveImage", ref)
	}
	syscall.Sync()
	settle(d)
	return nil
}

// settle waits (at most 10 s) until d has used no CPU for 200 ms: containerd finishes some work
// after RemoveImage returns (snapshot cleanup, event handling), which would otherwise land in
// the next runtime's timed pull. Then it syncs once more.
func settle(d *Daemon) {
	deadline := time.Now().Add(10 * time.Second)
	last := cpuTicks(d.PID)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 4 {
		time.Sleep(50 * time.Millisecond)
		now := cpuTicks(d.PID)
		if now-last <= 1 {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	syscall.Sync()
}

// cpuTicks is utime+stime of pid in clock ticks (-1 if unreadable).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	var u, st int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &st)
	return u + st
}

// concurrentPull starts n PullImage calls of ref at once and returns when all returned.
func concurrentPull(ctx context.Context, d *Daemon, ref string, n int) (time.Duration, error) {
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
			_, errs[i] = d.Images.PullImage(pctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	dt := time.Since(t0)
	return dt, errors.Join(errs...)
}

// fill pulls every ref with par concurrent calls.
func fill(ctx context.Context, d *Daemon, refs []string, par int, progress func(int)) error {
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
				if next >= len(refs) || first != nil {
					mu.Unlock()
					return
				}
				ref := refs[next]
				next++
				mu.Unlock()
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err := d.Images.PullImage(pctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
				cancel()
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("pull %s: %w", ref, err)
				}
				done++
				if done%2000 == 0 {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func listAll(ctx context.Context, d *Daemon) (int, error) {
	r, err := d.Images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return 0, err
	}
	return len(r.Images), nil
}

func streamAll(ctx context.Context, d *Daemon) (int, error) {
	st, err := d.Images.StreamImages(ctx, &runtime.StreamImagesRequest{})
	if err != nil {
		return 0, err
	}
	batches, err := criendpoint.Drain(st)
	return len(criendpoint.Flatten(batches)), err
}

func human(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20:
		return fmt.Sprintf("%dMiB", b>>20)
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
