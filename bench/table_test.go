package bench

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Stats
	}{
		{nil, Stats{}},
		{[]float64{3, 1, 2}, Stats{N: 3, Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 2, 3}, Stats{N: 4, Median: 2.5, Min: 1, Max: 4}},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	if got := fmtRange("s", Stats{Median: 0.09, Min: 0.08, Max: 0.12}); got != "80.0–120.0" {
		t.Errorf("fmtRange = %q, want the median's unit (ms)", got)
	}
}

// TestMarkdownColumns: make bench's table has ratio and target columns; criimage bench's has a
// ratio column only with the reference beside the runtime, and no targets.
func TestMarkdownColumns(t *testing.T) {
	res := func(baseline string, runtimes ...string) *Results {
		r := &Results{Opts: Options{Runs: 1, Fresh: 64 << 20}, Runtimes: runtimes, Baseline: baseline,
			Cases: []Case{{"pull-256MiB-8", "s", "cold pull"}}, Data: map[string]map[string]*Sample{}}
		for i, rt := range runtimes {
			r.sample("pull-256MiB-8", rt).Values = []float64{float64(i + 1)}
		}
		return r
	}
	for _, c := range []struct {
		r        *Results
		hdr, row string
	}{
		{res("containerd 2.4.2", "reference", "containerd 2.4.2"),
			"| case | reference | containerd 2.4.2 | ref/2.4.2 | target |  |",
			"| `pull-256MiB-8` | 1.000 s (1.000–1.000) | 2.000 s (2.000–2.000) | 0.50× | ≤ 0.7× 2.4.2 | met |"},
		{res("", "containerd v2.4.2", "reference"),
			"| case | containerd v2.4.2 | reference | ref/v2.4.2 |",
			"| `pull-256MiB-8` | 1.000 s (1.000–1.000) | 2.000 s (2.000–2.000) | 2.00× |"},
		{res("", "my runtime"), "| case | my runtime |", "| `pull-256MiB-8` | 1.000 s (1.000–1.000) |"},
	} {
		md := c.r.Markdown()
		if lines := strings.Split(md, "\n"); lines[0] != c.hdr || lines[2] != c.row {
			t.Errorf("table:\n%s\nwant header %q and row %q", md, c.hdr, c.row)
		}
	}
	if rep := res("", "x", "reference").Report(); rep.Cases[0].Ratios["x"] != 2 || rep.Cases[0].Results["x"].Median != 1 {
		t.Errorf("report: %+v", rep.Cases[0])
	}
}
