package report

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/criimage/criimage/suite/expectations"
)

// page is what report.html shows; every row in it comes from the Rows that results.json holds.
type page struct {
	Suite, Started, Duration, Configuration, Verdict string
	Total, NotRun                                    int
	ByOutcome                                        []tally
	ByArea, ByLevel                                  matrix
	Specs, Failures                                  []pageRow
	Expectations                                     []pageExpectation
}

// tally is one outcome's count.
type tally struct {
	Outcome string
	N       int
}

// matrix is a table of counts: one row per area or level, one column per outcome.
type matrix struct {
	ID, Key  string // the table's id; what a row is (area, level)
	Outcomes []string
	Groups   []group
}

// group is one area's or level's counts, one per outcome of its matrix.
type group struct {
	Name  string
	Cells []tally
	Total int
}

// pageRow is one spec: its Row, a unique anchor, and the expectation listing it, if any.
type pageRow struct {
	Row
	Anchor      string
	Requests    int // lines of the registry transcript
	Expectation *pageExpectation
}

// pageExpectation is one entry of the expectations file and what this run made of its spec.
type pageExpectation struct {
	ID, Reason, Issue, Declared string
	IssueURL                    string // Issue when it is an http or https URL, else ""
	Outcome                     string // the spec's outcome in this run, or NotRun
}

// writeHTML renders report.html for rows (the rows of results.json) into path.
func writeHTML(path string, r types.Report, rows []Row, exp *expectations.File) error {
	tmpl, err := template.New("report.html").Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("parse template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newPage(r, rows, exp)); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// newPage builds the page's data from rows.
func newPage(r types.Report, rows []Row, exp *expectations.File) page {
	run := ran(rows)
	exps := pageExpectations(exp, run)
	area := func(r Row) string { return r.Area }
	level := func(r Row) string { return r.Level }
	p := page{
		Suite:         Title(r),
		Started:       r.StartTime.UTC().Format("2006-01-02 15:04:05 UTC"),
		Duration:      r.RunTime.Round(1e6).String(),
		Configuration: configuration(r),
		Verdict:       verdict(rows, exp),
		Total:         len(run),
		NotRun:        len(rows) - len(run),
		ByOutcome:     tallies(run),
		ByArea:        matrix{ID: "by-area", Key: "area", Outcomes: ranOutcomes(), Groups: groups(run, area, nil)},
		ByLevel:       matrix{ID: "by-level", Key: "level", Outcomes: ranOutcomes(), Groups: groups(run, level, levels())},
		Specs:         pageRows(run, exps),
		Expectations:  exps,
	}
	for _, row := range p.Specs {
		if row.Outcome == Failed || row.Outcome == UnexpectedPass {
			p.Failures = append(p.Failures, row)
		}
	}
	return p
}

// levels lists the spec levels in the order the level table shows them.
func levels() []string { return []string{"conformance", "recommended", "informational"} }

// pageRows gives each row a unique anchor (SUITE rows may repeat an ID) and its expectation.
func pageRows(rows []Row, exps []pageExpectation) []pageRow {
	byID := map[string]*pageExpectation{}
	for i := range exps {
		byID[exps[i].ID] = &exps[i]
	}
	seen := map[string]int{}
	out := make([]pageRow, 0, len(rows))
	for _, row := range rows {
		seen[row.ID]++
		anchor := row.ID
		if n := seen[row.ID]; n > 1 {
			anchor = fmt.Sprintf("%s-%d", row.ID, n)
		}
		requests := 0
		if t := strings.TrimSpace(row.Transcript); t != "" {
			requests = strings.Count(t, "\n") + 1
		}
		out = append(out, pageRow{Row: row, Anchor: anchor, Requests: requests, Expectation: byID[row.ID]})
	}
	return out
}

// pageExpectations lists every expectation of exp with its spec's outcome in this run.
func pageExpectations(exp *expectations.File, rows []Row) []pageExpectation {
	if exp == nil {
		return nil
	}
	outcome := map[string]string{}
	for _, r := range rows {
		outcome[r.ID] = r.Outcome
	}
	out := make([]pageExpectation, 0, len(exp.Expectations))
	for _, e := range exp.Expectations {
		o, ok := outcome[e.ID]
		if !ok {
			o = NotRun
		}
		out = append(out, pageExpectation{ID: e.ID, Reason: e.Reason, Issue: e.Issue, Declared: e.Outcome,
			IssueURL: webURL(e.Issue), Outcome: o})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// webURL returns s when it is an absolute http or https URL, else "": an expectation's issue is
// rendered as a link only then.
func webURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// tallies counts rows per outcome, every outcome of ranOutcomes included.
func tallies(rows []Row) []tally {
	n := map[string]int{}
	for _, r := range rows {
		n[r.Outcome]++
	}
	out := make([]tally, 0, len(ranOutcomes()))
	for _, o := range ranOutcomes() {
		out = append(out, tally{Outcome: o, N: n[o]})
	}
	return out
}

// groups counts rows per key (area or level) and outcome. Keys in first come first, in that
// order; the others follow sorted.
func groups(rows []Row, key func(Row) string, first []string) []group {
	byKey := map[string][]Row{}
	for _, r := range rows {
		byKey[key(r)] = append(byKey[key(r)], r)
	}
	var names []string
	for k := range byKey {
		names = append(names, k)
	}
	rank := func(k string) int {
		for i, f := range first {
			if f == k {
				return i
			}
		}
		return len(first)
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	out := make([]group, 0, len(names))
	for _, k := range names {
		out = append(out, group{Name: k, Cells: tallies(byKey[k]), Total: len(byKey[k])})
	}
	return out
}

// pageTemplate is report.html. Everything it needs is inline; its Content-Security-Policy lets
// the page load nothing (default-src 'none'), so an external asset added by mistake would not
// load in any browser. Rows and failures carry data-* attributes for machine checks; the filter
// starts hidden and its script shows it, so a browser without scripting shows every row and no
// dead controls. "#show=failed,unexpected-pass" in the URL preselects outcomes.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{{.Suite}}</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.2em; margin: 1.5em 0 .5em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: .2em .5em; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n.zero { color: #8c959f; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .6em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.summary { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.badge { display: inline-block; padding: 0 .4em; border-radius: .3em; font-size: 12px; white-space: nowrap; }
.o-passed { background: #dafbe1; } .o-failed { background: #ffd7d5; } .o-unexpected-pass { background: #ffd7d5; }
.o-unsupported { background: #eaeef2; } .o-informational { background: #ddf4ff; } .o-expected-failure { background: #fff1c5; }
.o-skipped { background: #eaeef2; } .o-not-run { background: #eaeef2; }
.bad { border-left: 4px solid #cf222e; padding-left: .8em; }
.exp { color: #57606a; font-size: 12px; }
td.id, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: nowrap; }
fieldset { border: 1px solid #d0d7de; margin: .5em 0; }
fieldset label { margin-right: 1em; white-space: nowrap; }
article.failure { border-top: 1px solid #d0d7de; }
footer { margin-top: 2em; color: #57606a; font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>{{.Suite}}</h1>
<p id="run">Run {{.Started}}, {{.Duration}}: {{.Total}} specs ran{{if .NotRun}}, {{.NotRun}} filtered out{{end}}.</p>
{{with .Configuration}}<pre id="configuration">{{.}}</pre>{{end}}
{{with .Verdict}}<section id="verdict" class="bad"><h2>Expectations not met</h2><pre>{{.}}</pre></section>{{end}}
</header>

<section id="summary">
<h2>Summary</h2>
<div class="summary">
<table id="by-outcome">
<thead><tr><th>outcome</th><th>specs</th></tr></thead>
<tbody>
{{range .ByOutcome}}<tr data-outcome="{{.Outcome}}"><td><span class="badge o-{{.Outcome}}">{{.Outcome}}</span></td><td class="n{{if not .N}} zero{{end}}">{{.N}}</td></tr>
{{end}}</tbody>
</table>
{{template "matrix" .ByLevel}}
</div>
{{template "matrix" .ByArea}}
</section>

<section id="specs-section">
<h2>Specs</h2>
<fieldset id="filter" hidden><legend>Show outcomes</legend>
{{range .ByOutcome}}<label><input type="checkbox" name="outcome" value="{{.Outcome}}" checked> <span class="badge o-{{.Outcome}}">{{.Outcome}}</span> ({{.N}})</label>
{{end}}<button type="button" data-show="failed,unexpected-pass">failures only</button> <button type="button" data-show="">all</button>
</fieldset>
<table id="specs">
<thead><tr><th>ID</th><th>spec</th><th>area</th><th>level</th><th>outcome</th><th>note</th></tr></thead>
<tbody>
{{range .Specs}}{{$note := .Note}}<tr class="spec" id="spec-{{.Anchor}}" data-id="{{.ID}}" data-outcome="{{.Outcome}}" data-level="{{.Level}}" data-area="{{.Area}}">
<td class="id">{{.ID}}</td><td>{{.Text}}</td><td>{{.Area}}</td><td>{{.Level}}</td><td><span class="badge o-{{.Outcome}}">{{.Outcome}}</span></td>
<td>{{.Note}}{{if .Failure}} <a href="#failure-{{.Anchor}}">details</a>{{end}}{{with .Expectation}}<div class="exp">expected ({{.Declared}}){{if ne .Reason $note}}: {{.Reason}}{{end}}{{template "issue" .}}</div>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
</section>

{{with .Failures}}<section id="failures">
<h2>Failures</h2>
{{range .}}<article class="failure" id="failure-{{.Anchor}}" data-id="{{.ID}}" data-outcome="{{.Outcome}}">
<h3><span class="mono">{{.ID}}</span> {{.Text}} <span class="badge o-{{.Outcome}}">{{.Outcome}}</span></h3>
{{with .Expectation}}<p class="exp">expected ({{.Declared}}): {{.Reason}}{{template "issue" .}}</p>{{end}}
<pre class="message">{{.Failure}}</pre>
{{if .Transcript}}<details class="transcript"><summary>registry transcript: {{.Requests}} requests (secrets shown only as fingerprints)</summary>
<pre>{{.Transcript}}</pre></details>{{else}}<p class="exp">no registry transcript</p>{{end}}
</article>
{{end}}</section>{{end}}

{{with .Expectations}}<section id="expectations-section">
<h2>Expectations</h2>
<table id="expectations">
<thead><tr><th>ID</th><th>declared</th><th>this run</th><th>reason</th><th>issue</th></tr></thead>
<tbody>
{{range .}}<tr class="expectation" data-id="{{.ID}}" data-declared="{{.Declared}}" data-outcome="{{.Outcome}}">
<td class="id">{{if eq .Outcome "not-run"}}{{.ID}}{{else}}<a href="#spec-{{.ID}}">{{.ID}}</a>{{end}}</td><td>{{.Declared}}</td><td><span class="badge o-{{.Outcome}}">{{.Outcome}}</span></td><td>{{.Reason}}</td><td>{{template "issue" .}}</td>
</tr>
{{end}}</tbody>
</table>
</section>{{end}}

<footer>Written by criimage. This page is self-contained: it loads nothing, and every row shows without scripting.</footer>
<script>
(function () {
  var filter = document.getElementById('filter');
  var boxes = filter.querySelectorAll('input[name=outcome]');
  function apply() {
    var show = {};
    boxes.forEach(function (b) { show[b.value] = b.checked; });
    document.querySelectorAll('tr.spec, article.failure').forEach(function (el) {
      el.hidden = !show[el.getAttribute('data-outcome')];
    });
  }
  function only(list) {
    boxes.forEach(function (b) { b.checked = list.length === 0 || list.indexOf(b.value) >= 0; });
    apply();
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  filter.querySelectorAll('button').forEach(function (b) {
    b.addEventListener('click', function () {
      var v = b.getAttribute('data-show');
      only(v ? v.split(',') : []);
    });
  });
  var m = location.hash.match(/^#show=(.*)$/);
  if (m) {
    only(decodeURIComponent(m[1]).split(','));
  }
  filter.hidden = false;
})();
</script>
</body>
</html>
{{define "issue"}}{{with .IssueURL}} <a href="{{.}}">{{.}}</a>{{else}}{{with .Issue}} ({{.}}){{end}}{{end}}{{end}}
{{define "matrix"}}<table id="{{.ID}}">
<thead><tr><th>{{.Key}}</th>{{range .Outcomes}}<th><span class="badge o-{{.}}">{{.}}</span></th>{{end}}<th>total</th></tr></thead>
<tbody>
{{range .Groups}}<tr data-group="{{.Name}}"><th>{{if .Name}}{{.Name}}{{else}}(none){{end}}</th>{{range .Cells}}<td class="n{{if not .N}} zero{{end}}" data-outcome="{{.Outcome}}">{{.N}}</td>{{end}}<td class="n total">{{.Total}}</td></tr>
{{end}}</tbody>
</table>{{end}}`
