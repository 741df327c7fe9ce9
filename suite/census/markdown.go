package census

import (
	"fmt"
	"sort"
	"strings"
)

// Markdown renders censuses as tables: per census, its runs (green runs, wall time) and the specs
// that varied on some target, each cell "stable: OUTCOME" or "k of N OUTCOME, …"; then every spec
// in a collapsed table. heading is the Markdown heading level of each census ("###").
func Markdown(cs []*Census, heading string) string {
	var b strings.Builder
	for _, c := range cs {
		names := c.TargetNames()
		fmt.Fprintf(&b, "%s Census %q\n\n", heading, c.Name)
		fmt.Fprintf(&b, "Started %s at commit `%s` on %s; ", c.Started, c.Commit, c.Machine)
		if c.Load != "" {
			fmt.Fprintf(&b, "background load: `%s` run over and over", c.Load)
		} else {
			b.WriteString("no background load")
		}
		if c.Focus != "" {
			fmt.Fprintf(&b, "; focus `%s`", c.Focus)
		}
		b.WriteString(".\n\n")
		for _, n := range c.Notes {
			b.WriteString("- " + n + "\n")
		}
		if len(c.Notes) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("| target | runs | green runs | wall time, median (min–max) | specs that varied |\n|---|---|---|---|---|\n")
		for _, n := range names {
			t := c.Targets[n]
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %d |\n", n, t.Runs, t.Green, wall(t.WallSeconds), len(c.Varied(n)))
		}
		varied := map[string]bool{}
		all := map[string]bool{}
		for _, n := range names {
			for _, id := range c.Varied(n) {
				varied[id] = true
			}
			for id := range c.Targets[n].Specs {
				all[id] = true
			}
		}
		header := func() {
			b.WriteString("| spec |")
			for _, n := range names {
				fmt.Fprintf(&b, " %s |", n)
			}
			b.WriteString("\n|---|")
			for range names {
				b.WriteString("---|")
			}
			b.WriteString("\n")
		}
		row := func(id string) {
			fmt.Fprintf(&b, "| %s |", id)
			for _, n := range names {
				o, ok := c.Targets[n].Specs[id]
				cell := "not run"
				if ok {
					cell = o.String()
				}
				if ok && !o.Stable() {
					cell = "**" + cell + "**"
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		if len(varied) == 0 {
			b.WriteString("\nEvery spec had one outcome in every run of every target.\n\n")
		} else {
			b.WriteString("\nSpecs whose outcome varied on some target:\n\n")
			header()
			for _, id := range sortedKeys(varied) {
				row(id)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "<details><summary>Every spec (%d)</summary>\n\n", len(all))
		header()
		for _, id := range sortedKeys(all) {
			row(id)
		}
		b.WriteString("\n</details>\n\n")
	}
	return b.String()
}

func wall(s []float64) string {
	if len(s) == 0 {
		return ""
	}
	v := append([]float64(nil), s...)
	sort.Float64s(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return fmt.Sprintf("%.0fs (%.0f–%.0fs)", med, v[0], v[len(v)-1])
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
