package bench

import (
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strings"
)

// Stats of one sample.
type Stats struct {
	N                int
	Median, Min, Max float64
}

// Summarize returns the median, min and max of vs.
func Summarize(vs []float64) Stats {
	if len(vs) == 0 {
		return Stats{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

func (r *Results) stats(c, rt string) (Stats, *Sample) {
	m := r.Data[c]
	if m == nil || m[rt] == nil {
		return Stats{}, nil
	}
	return Summarize(m[rt].Values), m[rt]
}

func fmtVal(unit string, v float64) string {
	if unit == "bytes" {
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	}
	if v < 0.1 {
		return fmt.Sprintf("%.1f ms", v*1000)
	}
	return fmt.Sprintf("%.3f s", v)
}

func fmtRange(unit string, st Stats) string {
	if unit == "bytes" {
		return fmt.Sprintf("%.0f–%.0f", st.Min/(1<<20), st.Max/(1<<20))
	}
	if st.Median < 0.1 { // the median's unit (fmtVal): ms
		return fmt.Sprintf("%.1f–%.1f", st.Min*1000, st.Max*1000)
	}
	return fmt.Sprintf("%.3f–%.3f", st.Min, st.Max)
}

// target returns the target for case c as (text, ok?) given the results; "" if none.
func (r *Results) target(c Case) (string, string) {
	ref := "reference"
	if len(r.Opts.Versions) == 0 {
		return "", ""
	}
	cd := "containerd " + r.Opts.Versions[0]
	rs, _ := r.stats(c.Name, ref)
	cs, _ := r.stats(c.Name, cd)
	ratio := func(limit float64) string {
		if rs.N == 0 || cs.N == 0 || cs.Median == 0 {
			return "n/a"
		}
		if rs.Median/cs.Median <= limit {
			return "met"
		}
		return "**missed**"
	}
	switch {
	case strings.HasPrefix(c.Name, "pull-"):
		if strings.HasPrefix(c.Name, fmt.Sprintf("pull-%s", human(r.Opts.Fresh))) && !strings.Contains(c.Name, "layers") && c.Name == "pull-"+human(r.Opts.Fresh) {
			return "(baseline)", ""
		}
		return "≤ 0.7× " + r.Opts.Versions[0], ratio(0.7)
	case strings.HasPrefix(c.Name, "rss-"):
		return "≤ 1.0× " + r.Opts.Versions[0], ratio(1.0)
	case strings.HasPrefix(c.Name, "list-"), strings.HasPrefix(c.Name, "stream-"):
		return "≤ 0.5× " + r.Opts.Versions[0], ratio(0.5)
	case strings.HasPrefix(c.Name, "concurrent-"):
		one, _ := r.stats("pull-"+human(r.Opts.Fresh), ref)
		_, s := r.stats(c.Name, ref)
		if rs.N == 0 || one.N == 0 || s == nil {
			return "≤ 1.1× one pull, 1 GET/blob", "n/a"
		}
		ok := rs.Median/one.Median <= 1.1 && s.GETs == 1
		v := "met"
		if !ok {
			v = "**missed**"
		}
		return fmt.Sprintf("≤ 1.1× one pull (%.2f×), 1 GET/blob", rs.Median/one.Median), v
	}
	return "", ""
}

// Markdown renders the table: per case and runtime the median (min–max over the runs), the
// ratios reference/containerd, and the target.
func (r *Results) Markdown() string {
	var b strings.Builder
	hdr := []string{"case"}
	hdr = append(hdr, r.Runtimes...)
	var others []string
	for _, rt := range r.Runtimes {
		if rt != "reference" {
			others = append(others, rt)
			hdr = append(hdr, "ref/"+strings.TrimPrefix(rt, "containerd "))
		}
	}
	hdr = append(hdr, "target", "")
	b.WriteString("| " + strings.Join(hdr, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(hdr)) + "\n")
	for _, c := range r.Cases {
		row := []string{"`" + c.Name + "`"}
		for _, rt := range r.Runtimes {
			st, s := r.stats(c.Name, rt)
			switch {
			case s == nil:
				row = append(row, "—")
			case s.Err != "" && st.N == 0:
				row = append(row, "error: "+shorten(s.Err, 60))
			default:
				cell := fmt.Sprintf("%s (%s)", fmtVal(c.Unit, st.Median), fmtRange(c.Unit, st))
				if strings.HasPrefix(c.Name, "concurrent-") {
					cell += fmt.Sprintf(", ≤%d GET/blob", s.GETs)
				}
				row = append(row, cell)
			}
		}
		rs, _ := r.stats(c.Name, "reference")
		for _, rt := range others {
			cs, _ := r.stats(c.Name, rt)
			if rs.N == 0 || cs.N == 0 || cs.Median == 0 {
				row = append(row, "—")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f×", rs.Median/cs.Median))
		}
		t, v := r.target(c)
		row = append(row, t, v)
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n")
	for _, c := range r.Cases {
		fmt.Fprintf(&b, "- `%s`: %s\n", c.Name, c.Desc)
	}
	for _, e := range r.Extra {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return b.String()
}

// Machine describes the host the run came from.
func Machine() string {
	var parts []string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(ln, "model name") {
				parts = append(parts, strings.TrimSpace(strings.SplitN(ln, ":", 2)[1]))
				break
			}
		}
	}
	parts = append(parts, fmt.Sprintf("%d CPUs", goruntime.NumCPU()))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			parts = append(parts, fmt.Sprintf("%d GiB RAM", (kb+1<<19)>>20))
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("findmnt", "-no", "FSTYPE", "-T", os.TempDir()).Output(); err == nil {
		parts = append(parts, os.TempDir()+" on "+strings.TrimSpace(string(out)))
	}
	parts = append(parts, goruntime.Version())
	return strings.Join(parts, ", ")
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
