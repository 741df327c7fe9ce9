package bench

import "testing"

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
