package bench

import (
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strings"
	"time"
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

// ratio is the reference's median over rt's for case c (false without both).
func (r *Results) ratio(c, rt string) (float64, bool) {
	rs, _ := r.stats(c, ReferenceName)
	cs, _ := r.stats(c, rt)
	if rs.N == 0 || cs.N == 0 || cs.Median == 0 {
		return 0, false
	}
	return rs.Median / cs.Median, true
}

// ratioRuntimes are the runtimes with a ratio column: every one but the reference, when the
// reference was measured.
func (r *Results) ratioRuntimes() []string {
	if !slices.Contains(r.Runtimes, ReferenceName) {
		return nil
	}
	var out []string
	for _, rt := range r.Runtimes {
		if rt != ReferenceName {
			out = append(out, rt)
		}
	}
	return out
}

// target returns the target for case c as (text, met?) against r.Baseline; "" if none.
func (r *Results) target(c Case) (string, string) {
	if r.Baseline == "" {
		return "", ""
	}
	base := strings.TrimPrefix(r.Baseline, "containerd ")
	verdict := func(limit float64) string {
		q, ok := r.ratio(c.Name, r.Baseline)
		switch {
		case !ok:
			return "n/a"
		case q <= limit:
			return "met"
		}
		return "**missed**"
	}
	fresh := "pull-" + human(r.Opts.Fresh)
	switch {
	case c.Name == fresh:
		return "(baseline)", ""
	case strings.HasPrefix(c.Name, "pull-"):
		return "≤ 0.7× " + base, verdict(0.7)
	case strings.HasPrefix(c.Name, "rss-"):
		return "≤ 1.0× " + base, verdict(1.0)
	case strings.HasPrefix(c.Name, "list-"), strings.HasPrefix(c.Name, "stream-"):
		return "≤ 0.5× " + base, verdict(0.5)
	case strings.HasPrefix(c.Name, "concurrent-"):
		rs, s := r.stats(c.Name, ReferenceName)
		one, _ := r.stats(fresh, ReferenceName)
		if rs.N == 0 || one.N == 0 || s == nil {
			return "≤ 1.1× one pull, 1 GET/blob", "n/a"
		}
		v := "met"
		if rs.Median/one.Median > 1.1 || s.GETs != 1 {
			v = "**missed**"
		}
		return fmt.Sprintf("≤ 1.1× one pull (%.2f×), 1 GET/blob", rs.Median/one.Median), v
	}
	return "", ""
}

// Markdown renders the table: per case and runtime the median (min–max over the runs), the
// ratios reference/other runtime (when the reference was measured), and the target
// (when r.Baseline names one).
func (r *Results) Markdown() string {
	var b strings.Builder
	hdr := []string{"case"}
	hdr = append(hdr, r.Runtimes...)
	others := r.ratioRuntimes()
	for _, rt := range others {
		hdr = append(hdr, "ref/"+strings.TrimPrefix(rt, "containerd "))
	}
	if r.Baseline != "" {
		hdr = append(hdr, "target", "")
	}
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
		for _, rt := range others {
			q, ok := r.ratio(c.Name, rt)
			if !ok {
				row = append(row, "—")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f×", q))
		}
		if r.Baseline != "" {
			t, v := r.target(c)
			row = append(row, t, v)
		}
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

// Report is the machine-readable form of Results (`criimage bench --json`).
type Report struct {
	Started        time.Time    `json:"started"`
	ElapsedSeconds float64      `json:"elapsedSeconds"`
	Runs           int          `json:"runs"`
	Runtimes       []string     `json:"runtimes"`
	Machine        string       `json:"machine"`
	Cases          []ReportCase `json:"cases"`
	Notes          []string     `json:"notes,omitempty"`
}

// ReportCase is one row of the table.
type ReportCase struct {
	Name        string                  `json:"name"`
	Unit        string                  `json:"unit"` // "s" or "bytes"
	Description string                  `json:"description"`
	Results     map[string]ReportSample `json:"results"`          // by runtime
	Ratios      map[string]float64      `json:"ratios,omitempty"` // runtime → reference median / its median
}

// ReportSample is one case on one runtime: every run's value and their summary.
type ReportSample struct {
	Values      []float64 `json:"values"`
	Median      float64   `json:"median"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	MaxBlobGETs int       `json:"maxBlobGets,omitempty"` // concurrent cases: GETs of the most-fetched blob
	Error       string    `json:"error,omitempty"`
}

// Report returns r's machine-readable form.
func (r *Results) Report() Report {
	rep := Report{Started: r.Started.UTC(), ElapsedSeconds: r.Elapsed.Seconds(), Runs: r.Opts.Runs,
		Runtimes: r.Runtimes, Machine: Machine(), Notes: r.Extra, Cases: []ReportCase{}}
	for _, c := range r.Cases {
		rc := ReportCase{Name: c.Name, Unit: c.Unit, Description: c.Desc, Results: map[string]ReportSample{}}
		for _, rt := range r.Runtimes {
			st, s := r.stats(c.Name, rt)
			if s == nil {
				continue
			}
			rc.Results[rt] = ReportSample{Values: append([]float64{}, s.Values...), Median: st.Median, Min: st.Min, Max: st.Max, MaxBlobGETs: s.GETs, Error: s.Err}
		}
		for _, rt := range r.ratioRuntimes() {
			if q, ok := r.ratio(c.Name, rt); ok {
				if rc.Ratios == nil {
					rc.Ratios = map[string]float64{}
				}
				rc.Ratios[rt] = q
			}
		}
		rep.Cases = append(rep.Cases, rc)
	}
	return rep
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
