package bench

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "1000B": 1000, "1000": 1000} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1TiB", "MiB", "1.5MiB", "2048GiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestFlagsOptions: the driver's defaults, -quick's, and each flag over them; bad values name
// their flag.
func TestFlagsOptions(t *testing.T) {
	parse := func(args ...string) (Options, error) {
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := NewFlags(fs)
		if err := fs.Parse(args); err != nil {
			return Options{}, err
		}
		return f.Options()
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 5 || o.Large != 256<<20 || o.LargeN != 8 || o.Huge != 1<<30 || o.ManyLayers != 200 ||
		o.Fresh != 64<<20 || !slices.Equal(o.Concurrent, []int{16, 64}) || o.ListN != 10000 || o.FillPar != 32 {
		t.Errorf("defaults: %+v", o)
	}
	if o, _ = parse("-quick"); o.Runs != 3 || o.Large != 64<<20 || o.ListN != 1000 || !slices.Equal(o.Concurrent, []int{16}) {
		t.Errorf("-quick: %+v", o)
	}
	o, err = parse("-quick", "-runs", "1", "-large", "2MiB", "-large-layers", "2", "-fresh", "1MiB", "-concurrent", "4, 8", "-list", "-1", "-cases", "pull-,list-")
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 1 || o.Large != 2<<20 || o.LargeN != 2 || o.Fresh != 1<<20 || !slices.Equal(o.Concurrent, []int{4, 8}) ||
		o.ListN != 0 || !slices.Equal(o.Cases, []string{"pull-", "list-"}) || o.largeCase() != "pull-2MiB-2" {
		t.Errorf("overrides: %+v", o)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"-runs", "-2"}, "-runs"},
		{[]string{"-list", "-5"}, "-list"},
		{[]string{"-concurrent", "4,x"}, "-concurrent"},
		{[]string{"-large", "3", "-large-layers", "4"}, "large 3 B over 4 layers"},
		{[]string{"-large", "1GiB", "-large-layers", "4"}, "two cases would be named pull-1GiB-4"},
	} {
		if _, err := parse(c.args...); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%q: error %v, want one naming %s", c.args, err, c.flag)
		}
	}
}

func TestBenchRef(t *testing.T) {
	for ref, want := range map[string]bool{
		"127.0.0.1:5000/anon/bench/large:v1":          true,
		"localhost/anon/bench/list@sha256:0123":       true,
		"docker.io/library/busybox:latest":            false,
		"127.0.0.1:5000/anon/benchmark:v1":            false,
		"127.0.0.1:5000/other/anon/bench/x:v1":        false,
		"sha256:4b825dc642cb6eb9a060e54bf8d69288fbee": false,
	} {
		if got := benchRef(ref); got != want {
			t.Errorf("benchRef(%q) = %v, want %v", ref, got, want)
		}
	}
}
