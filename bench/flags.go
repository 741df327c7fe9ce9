package bench

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// Flags are the measurement flags the driver (criimage-bench) and `criimage bench` share: the
// same names, defaults and meaning in both. Zero values mean "the default, or -quick's".
type Flags struct {
	quick               bool
	runs, list, fillPar int
	largeN, hugeN, many int
	large, huge, fresh  sizeFlag
	cases, concurrent   string
}

// NewFlags defines the measurement flags on fs.
func NewFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.BoolVar(&f.quick, "quick", false, "fewer runs and smaller cases (3 runs; 64 MiB/8, 256 MiB/4, 50 layers, 16 MiB fresh, 16 concurrent, 1,000 images)")
	fs.IntVar(&f.runs, "runs", 0, "runs per case and runtime (default 5, quick 3)")
	fs.IntVar(&f.list, "list", 0, "images in the store for list/stream (default 10000, quick 1000; -1 = skip)")
	fs.StringVar(&f.cases, "cases", "", "comma-separated case-name prefixes to run (default all), e.g. pull-256MiB,concurrent-")
	fs.Var(&f.large, "large", "bytes of the first cold-pull image, e.g. 256MiB (default 256MiB, quick 64MiB)")
	fs.IntVar(&f.largeN, "large-layers", 0, "its layers (default 8)")
	fs.Var(&f.huge, "huge", "bytes of the second cold-pull image (default 1GiB, quick 256MiB)")
	fs.IntVar(&f.hugeN, "huge-layers", 0, "its layers (default 4)")
	fs.IntVar(&f.many, "many-layers", 0, "layers of the many-layers image (default 200, quick 50)")
	fs.Var(&f.fresh, "fresh", "bytes of the fresh image (4 layers) of the pull-SIZE baseline and the concurrent cases (default 64MiB, quick 16MiB)")
	fs.StringVar(&f.concurrent, "concurrent", "", "concurrent pulls of one fresh image, comma-separated (default 16,64, quick 16)")
	fs.IntVar(&f.fillPar, "fill-par", 0, "concurrent PullImage calls filling the stores for list/stream (default 32)")
	return f
}

// Options are the parsed flags as Measure's options (Log unset). An error names the flag.
func (f *Flags) Options() (Options, error) {
	o := Options{
		Runs: 5, Large: 256 << 20, LargeN: 8, Huge: 1 << 30, HugeN: 4, ManyLayers: 200,
		Fresh: 64 << 20, Concurrent: []int{16, 64}, ListN: 10000, FillPar: 32,
	}
	if f.quick {
		o.Runs, o.Large, o.LargeN, o.Huge, o.HugeN, o.ManyLayers = 3, 64<<20, 8, 256<<20, 4, 50
		o.Fresh, o.Concurrent, o.ListN = 16<<20, []int{16}, 1000
	}
	set := func(dst *int, v int, name string) error {
		switch {
		case v < 0:
			return fmt.Errorf("-%s %d: want a positive number", name, v)
		case v > 0:
			*dst = v
		}
		return nil
	}
	for _, s := range []struct {
		dst  *int
		v    int
		name string
	}{{&o.Runs, f.runs, "runs"}, {&o.LargeN, f.largeN, "large-layers"}, {&o.HugeN, f.hugeN, "huge-layers"}, {&o.ManyLayers, f.many, "many-layers"}, {&o.FillPar, f.fillPar, "fill-par"}} {
		if err := set(s.dst, s.v, s.name); err != nil {
			return Options{}, err
		}
	}
	switch {
	case f.list < -1:
		return Options{}, fmt.Errorf("-list %d: want a count, or -1 to skip the list cases", f.list)
	case f.list == -1:
		o.ListN = 0
	case f.list > 0:
		o.ListN = f.list
	}
	for _, s := range []struct {
		dst *int64
		v   sizeFlag
	}{{&o.Large, f.large}, {&o.Huge, f.huge}, {&o.Fresh, f.fresh}} {
		if s.v > 0 {
			*s.dst = int64(s.v)
		}
	}
	if f.concurrent != "" {
		o.Concurrent = nil
		for _, c := range strings.Split(f.concurrent, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 {
				return Options{}, fmt.Errorf("-concurrent %q: want positive counts separated by commas", f.concurrent)
			}
			o.Concurrent = append(o.Concurrent, n)
		}
	}
	for _, c := range strings.Split(f.cases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.Cases = append(o.Cases, c)
		}
	}
	if err := o.check(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// sizeFlag is a byte count: a number with an optional B, KiB, MiB or GiB suffix.
type sizeFlag int64

func (s *sizeFlag) String() string {
	if s == nil || *s == 0 {
		return ""
	}
	return human(int64(*s))
}

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize parses "256MiB", "1GiB", "512KiB", "1000B" or "1000".
func parseSize(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 1 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive byte count such as 256MiB, 1GiB, 512KiB or 1000", v)
	}
	return n * mult, nil
}
