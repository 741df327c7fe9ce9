package report_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	xhtml "golang.org/x/net/html"

	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/expectations"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/report"
)

// This file checks report.html as a document: the rows and counts it shows against
// results.json, its links and resources, and that no fixture secret is in it. The same checks
// run on the file as written (TestReportHTML) and on the DOM a real browser built from it
// (TestReportInChromium).

// page is what a report.html shows, read from its DOM through the data-* attributes the
// template gives every row and count.
type page struct {
	rows         []result            // tr.spec in table#specs
	hiddenRows   map[string]bool     // spec IDs whose row is hidden (the filter)
	byOutcome    map[string]int      // table#by-outcome
	byArea       map[[2]string]int   // table#by-area: {area, outcome} → count
	byLevel      map[[2]string]int   // table#by-level
	failures     map[string]failure  // article.failure by spec ID
	filterHidden bool                // fieldset#filter has the hidden attribute (its script did not run)
	csp          string              // the Content-Security-Policy meta
	links        []string            // every a[href] that leaves the page
	resources    []string            // anything that would load something
	scripts      int                 // script elements
	text         string              // every text node and attribute value, unescaped
	expectations map[string][]string // table#expectations: ID → issue links
}

// result is one row as results.json has it and as the page shows it.
type result struct{ ID, Outcome, Level, Area string }

// failure is one article.failure.
type failure struct{ Outcome, Message, Transcript string }

// readPage parses a report.html document (as written, or as a browser dumped its DOM).
func readPage(raw []byte) (page, error) {
	doc, err := xhtml.Parse(strings.NewReader(string(raw)))
	if err != nil {
		return page{}, fmt.Errorf("parse report.html: %w", err)
	}
	p := page{hiddenRows: map[string]bool{}, byOutcome: map[string]int{}, byArea: map[[2]string]int{},
		byLevel: map[[2]string]int{}, failures: map[string]failure{}, expectations: map[string][]string{}}
	var text strings.Builder
	var errs []string
	for n := range doc.Descendants() {
		switch n.Type {
		case xhtml.TextNode:
			text.WriteString(n.Data)
			text.WriteByte('\n')
		case xhtml.ElementNode:
			for _, a := range n.Attr {
				text.WriteString(a.Val)
				text.WriteByte('\n')
			}
			if err := p.readElement(n); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	p.text = text.String()
	if len(errs) > 0 {
		return p, fmt.Errorf("report.html: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// readElement records what one element contributes to the page.
func (p *page) readElement(n *xhtml.Node) error {
	p.readResources(n)
	switch {
	case n.Data == "tr" && hasClass(n, "spec"):
		r := result{ID: attr(n, "data-id"), Outcome: attr(n, "data-outcome"), Level: attr(n, "data-level"), Area: attr(n, "data-area")}
		p.rows = append(p.rows, r)
		if hasAttr(n, "hidden") {
			p.hiddenRows[r.ID] = true
		}
	case n.Data == "tr" && hasAttr(n, "data-outcome") && tableID(n) == "by-outcome":
		c, err := count(n, "td", "n")
		p.byOutcome[attr(n, "data-outcome")] = c
		return err
	case n.Data == "td" && hasAttr(n, "data-outcome") && (tableID(n) == "by-area" || tableID(n) == "by-level"):
		c, err := strconv.Atoi(strings.TrimSpace(textOf(n)))
		key := [2]string{attr(n.Parent, "data-group"), attr(n, "data-outcome")}
		if tableID(n) == "by-area" {
			p.byArea[key] = c
		} else {
			p.byLevel[key] = c
		}
		return err
	case n.Data == "article" && hasClass(n, "failure"):
		f := failure{Outcome: attr(n, "data-outcome")}
		for d := range n.Descendants() {
			switch {
			case d.Data == "pre" && hasClass(d, "message"):
				f.Message = textOf(d)
			case d.Data == "details" && hasClass(d, "transcript"):
				f.Transcript = textOf(d)
			}
		}
		p.failures[attr(n, "data-id")] = f
	case n.Data == "tr" && hasClass(n, "expectation"):
		var links []string
		for d := range n.Descendants() {
			if d.Data == "a" && !strings.HasPrefix(attr(d, "href"), "#") {
				links = append(links, attr(d, "href"))
			}
		}
		p.expectations[attr(n, "data-id")] = links
	case n.Data == "fieldset" && attr(n, "id") == "filter":
		p.filterHidden = hasAttr(n, "hidden")
	case n.Data == "meta" && strings.EqualFold(attr(n, "http-equiv"), "Content-Security-Policy"):
		p.csp = attr(n, "content")
	case n.Data == "a" && hasAttr(n, "href") && !strings.HasPrefix(attr(n, "href"), "#"):
		p.links = append(p.links, attr(n, "href"))
	case n.Data == "script":
		p.scripts++
	}
	return nil
}

// readResources records whatever in n would make a browser load something.
func (p *page) readResources(n *xhtml.Node) {
	for _, a := range n.Attr {
		switch strings.ToLower(a.Key) {
		case "src", "srcset", "poster", "data", "background", "formaction", "action":
			p.resources = append(p.resources, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, a.Val))
		case "style":
			if strings.Contains(strings.ToLower(a.Val), "url(") {
				p.resources = append(p.resources, fmt.Sprintf("<%s style=%q>", n.Data, a.Val))
			}
		}
	}
	switch n.Data {
	case "link", "img", "iframe", "object", "embed", "video", "audio", "source", "base":
		p.resources = append(p.resources, "<"+n.Data+">")
	case "style":
		css := strings.ToLower(textOf(n))
		if strings.Contains(css, "url(") || strings.Contains(css, "@import") || strings.Contains(css, "@font-face") {
			p.resources = append(p.resources, "<style> with url(), @import or @font-face")
		}
	}
}

// readResults reads the report directory's results.json.
func readResults(dir string) ([]result, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var rs []report.Result
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("results.json: %w", err)
	}
	out := make([]result, 0, len(rs))
	for _, r := range rs {
		out = append(out, result{ID: r.ID, Outcome: r.Outcome, Level: r.Level, Area: r.Area})
	}
	return out, nil
}

// problems compares the page with results.json and lists every difference, and every link,
// resource or fixture secret the page must not have. It returns nil for a good page.
func problems(p page, results []result, secrets map[string]string) []string {
	var out []string
	out = append(out, compareRows(p.rows, results)...)
	out = append(out, compareCounts("by outcome", p.byOutcome, countOutcomes(results))...)
	out = append(out, compareCounts("by area", keyedCounts(p.byArea), keyedCounts(countBy(results, func(r result) string { return r.Area })))...)
	out = append(out, compareCounts("by level", keyedCounts(p.byLevel), keyedCounts(countBy(results, func(r result) string { return r.Level })))...)
	for _, r := range results {
		if r.Outcome != report.Failed && r.Outcome != report.UnexpectedPass {
			continue
		}
		f, ok := p.failures[r.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s (%s) has no failure section", r.ID, r.Outcome))
		case strings.TrimSpace(f.Message) == "":
			out = append(out, fmt.Sprintf("%s: its failure section has no message", r.ID))
		case f.Outcome != r.Outcome:
			out = append(out, fmt.Sprintf("%s: failure section says %s, results.json %s", r.ID, f.Outcome, r.Outcome))
		}
	}
	if !strings.Contains(p.csp, "default-src 'none'") {
		out = append(out, fmt.Sprintf("Content-Security-Policy %q does not forbid loading (default-src 'none')", p.csp))
	}
	for _, l := range p.links {
		if u, err := url.Parse(l); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			out = append(out, fmt.Sprintf("link %q is not http or https", l))
		}
	}
	for _, r := range p.resources {
		out = append(out, "external resource: "+r)
	}
	if p.scripts != 1 {
		out = append(out, fmt.Sprintf("%d script elements, want the page's own 1", p.scripts))
	}
	for _, label := range leakedSecrets(p.text, secrets) {
		out = append(out, "the page contains the "+label)
	}
	return out
}

// leakedSecrets returns the labels of the secrets that occur in text (unescaped: html/template
// writes '+' as &#43;, so a base64 secret would not show in the raw bytes).
func leakedSecrets(text string, secrets map[string]string) []string {
	text = html.UnescapeString(text)
	var labels []string
	for label, s := range secrets {
		if strings.Contains(text, s) {
			labels = append(labels, label)
		}
	}
	sort.Strings(labels)
	return labels
}

// compareRows reports rows that one of page and results.json has and the other lacks.
func compareRows(got, want []result) []string {
	key := func(r result) string {
		return fmt.Sprintf("%s outcome=%q level=%q area=%q", r.ID, r.Outcome, r.Level, r.Area)
	}
	g, w := map[string]int{}, map[string]int{}
	for _, r := range got {
		g[key(r)]++
	}
	for _, r := range want {
		w[key(r)]++
	}
	var out []string
	for k, n := range w {
		if g[k] != n {
			out = append(out, fmt.Sprintf("row %s: %d in the page, %d in results.json", k, g[k], n))
		}
	}
	for k, n := range g {
		if _, ok := w[k]; !ok {
			out = append(out, fmt.Sprintf("row %s: %d in the page, none in results.json", k, n))
		}
	}
	sort.Strings(out)
	return out
}

// compareCounts reports every count that differs; a count missing from the page is a difference,
// a zero the page shows for a combination results.json lacks is not.
func compareCounts(table string, got, want map[string]int) []string {
	var out []string
	for k, n := range want {
		if c, ok := got[k]; !ok || c != n {
			out = append(out, fmt.Sprintf("%s %s: the page shows %d (present: %v), results.json has %d", table, k, c, ok, n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n != 0 {
			out = append(out, fmt.Sprintf("%s %s: the page shows %d, results.json has none", table, k, n))
		}
	}
	sort.Strings(out)
	return out
}

func countOutcomes(rs []result) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Outcome]++
	}
	return m
}

func countBy(rs []result, key func(result) string) map[[2]string]int {
	m := map[[2]string]int{}
	for _, r := range rs {
		m[[2]string{key(r), r.Outcome}]++
	}
	return m
}

func keyedCounts(m map[[2]string]int) map[string]int {
	out := map[string]int{}
	for k, n := range m {
		out[k[0]+"/"+k[1]] = n
	}
	return out
}

func attr(n *xhtml.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *xhtml.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a xhtml.Attribute) bool { return a.Key == key })
}

func hasClass(n *xhtml.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// tableID is the id of the table n is in.
func tableID(n *xhtml.Node) string {
	for a := n.Parent; a != nil; a = a.Parent {
		if a.Type == xhtml.ElementNode && a.Data == "table" {
			return attr(a, "id")
		}
	}
	return ""
}

// count reads the number in the first descendant <tag class=class> of n.
func count(n *xhtml.Node, tag, class string) (int, error) {
	for d := range n.Descendants() {
		if d.Type == xhtml.ElementNode && d.Data == tag && hasClass(d, class) {
			return strconv.Atoi(strings.TrimSpace(textOf(d)))
		}
	}
	return 0, fmt.Errorf("no <%s class=%s> in a <%s>", tag, class, n.Data)
}

func textOf(n *xhtml.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == xhtml.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// synthetic is a report directory written by report.Write from a ginkgo report with one spec of
// every outcome, failures with registry transcripts recorded by a real journal, and expectations
// with and without an http issue link.
type synthetic struct {
	dir          string
	fingerprints []string // of fixture secrets, as the journal recorded them; the page shows them
}

// writeSynthetic writes the synthetic report into a temp dir. With leak, one transcript holds the
// fixture password itself (a page the secret check must reject).
func writeSynthetic(t *testing.T, leak bool) synthetic {
	t.Helper()
	j, err := journal.New()
	if err != nil {
		t.Fatal(err)
	}
	transcript := recordTranscript(t, j)
	if leak {
		transcript += "#9 10:00:00.000 plain GET /v2/basic/leak/manifests/v1 → 401 (0 B) password=" + harness.FixturePassword + "\n"
	}
	it := func(text string, state types.SpecState, msg string, labels ...string) types.SpecReport {
		return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, LeafNodeLabels: labels, State: state,
			Failure: types.Failure{Message: msg, Location: types.CodeLocation{FileName: "suite/specs/pull.go", LineNumber: 42}}}
	}
	entry := func(name, value string) types.ReportEntries {
		return types.ReportEntries{{Name: name, Value: types.WrapEntryValue(value)}}
	}
	fp := j.Fingerprint(harness.FixturePassword)
	r := types.Report{SuiteDescription: "synthetic <run>", StartTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RunTime: 90 * time.Second,
		SpecReports: types.SpecReports{
			it("[PULL-001] pulls by tag", types.SpecStatePassed, "", "area:pull", "conformance"),
			it("[PULL-002] pulls <b>by</b> digest", types.SpecStateFailed,
				"Expected <script>alert(1)</script> to pull; the target answered Unauthenticated (credentials "+fp+")", "area:pull", "conformance"),
			it("[LIST-003] lists every image", types.SpecStateFailed, "no image listed", "area:list", "recommended"),
			it("[FMT-010] schema1", types.SpecStateSkipped, report.UnsupportedPrefix+`feature "schema1" not declared`, "area:fmt", "conformance"),
			it("[REF-011] truncated IDs", types.SpecStatePassed, "", "area:ref", "informational"),
			it("[AUTH-009] bad auth", types.SpecStateSkipped, report.ExpectedFailurePrefix+"ParseAuth echoes the decoded auth", "area:auth", "conformance"),
			it("[FAIL-002] retries", types.SpecStateFailed, "FAIL-002 is listed as an expected failure (x) but passed", "area:fail", "conformance"),
			it("[CANCEL-003] stalled pull", types.SpecStatePending, "", "area:cancel", "conformance"),
			it("[RM-001] filtered out", types.SpecStateSkipped, "", "area:rm", "conformance"),
			{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "target did not start"}},
		}}
	r.SpecReports[1].ReportEntries = entry(report.EntryTranscript, transcript)
	r.SpecReports[4].ReportEntries = entry("observed", "ImageStatus(first 12 hex) → image=yes")
	r.SpecReports[6].ReportEntries = entry(report.EntryUnexpectedPass, "x")
	r.SpecReports[0].ReportEntries = entry("configuration", "image endpoint: unix:///run/x.sock\nfeatures: schema1")
	exp, err := expectations.Parse([]byte(`target: synthetic
expectations:
  - {id: AUTH-009, reason: ParseAuth echoes the decoded auth, issue: "https://github.com/containerd/containerd/issues/1"}
  - {id: FAIL-002, reason: x, issue: "javascript:alert(2)"}
  - {id: RM-005, reason: not run here, issue: "http://example.invalid/rm-005", outcome: either}
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := report.Write(dir, "", r, exp); err != nil {
		t.Fatal(err)
	}
	return synthetic{dir: dir, fingerprints: []string{fp, j.Fingerprint(harness.FixtureColonPassword)}}
}

// recordTranscript sends requests carrying fixture secrets (Basic auth, a token query, a token
// form) through the registry's journal and returns its transcript: the form a failed spec's
// report entry has.
func recordTranscript(t *testing.T, j *journal.Journal) string {
	t.Helper()
	done := make(chan struct{}, 4)
	mw := j.Middleware(route.ListenerPlain, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		mw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	send := func(req *http.Request) {
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		<-done
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/basic/x/manifests/v1", nil)
	req.SetBasicAuth(harness.FixtureUser, harness.FixturePassword)
	send(req)
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v2/token/x/manifests/v1?access_token="+url.QueryEscape(harness.FixtureColonPassword), nil)
	send(req)
	form := url.Values{"grant_type": {"password"}, "username": {harness.FixtureColonUser}, "password": {harness.FixtureColonPassword}}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	send(req)
	return j.Transcript(j.Entries())
}

// checkSynthetic checks what only the synthetic report has: every outcome, escaping, the
// fingerprints standing in for the secrets, and which expectations are links.
func checkSynthetic(t *testing.T, s synthetic, p page) {
	t.Helper()
	for _, o := range []string{report.Passed, report.Failed, report.Unsupported, report.Informational,
		report.ExpectedFailure, report.UnexpectedPass, report.Skipped} {
		if p.byOutcome[o] == 0 {
			t.Errorf("the synthetic report shows no %s spec", o)
		}
	}
	if slices.ContainsFunc(p.rows, func(r result) bool { return r.ID == "RM-001" }) {
		t.Error("a filtered-out spec has a row")
	}
	f := p.failures["PULL-002"]
	if !strings.Contains(f.Message, "<script>alert(1)</script>") {
		t.Errorf("PULL-002's message is not shown as text: %q", f.Message)
	}
	for _, fp := range s.fingerprints {
		if !strings.Contains(f.Transcript, fp) {
			t.Errorf("PULL-002's transcript lacks the fingerprint %s:\n%s", fp, f.Transcript)
		}
	}
	if got := p.expectations["AUTH-009"]; !slices.Equal(got, []string{"https://github.com/containerd/containerd/issues/1"}) {
		t.Errorf("AUTH-009's issue links: %q", got)
	}
	if got := p.expectations["FAIL-002"]; len(got) != 0 {
		t.Errorf("FAIL-002's javascript: issue is a link: %q", got)
	}
	if _, ok := p.expectations["RM-005"]; !ok {
		t.Error("the expectation of a spec that did not run is not listed")
	}
}

// TestReportHTML checks report.html as written, without a browser: the checks the browser test
// runs on the DOM, and that they catch a dropped row and a leaked secret.
func TestReportHTML(t *testing.T) {
	s := writeSynthetic(t, false)
	raw, err := os.ReadFile(filepath.Join(s.dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	results, err := readResults(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := readPage(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range problems(p, results, harness.FixtureSecrets()) {
		t.Error(problem)
	}
	checkSynthetic(t, s, p)
	if !p.filterHidden || len(p.hiddenRows) != 0 {
		t.Errorf("as written (no script run): filter hidden %v, hidden rows %v; want the filter hidden and every row shown", p.filterHidden, p.hiddenRows)
	}

	t.Run("a dropped row is caught", func(t *testing.T) {
		start := strings.Index(string(raw), `<tr class="spec"`)
		end := strings.Index(string(raw[start:]), "</tr>") + start + len("</tr>")
		broken, err := readPage(append(raw[:start:start], raw[end:]...))
		if err != nil {
			t.Fatal(err)
		}
		if got := problems(broken, results, harness.FixtureSecrets()); len(got) == 0 {
			t.Error("no problem reported for a page without its first row")
		}
	})
	t.Run("a leaked secret is caught", func(t *testing.T) {
		leaky := writeSynthetic(t, true)
		raw, err := os.ReadFile(filepath.Join(leaky.dir, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := readPage(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := leakedSecrets(p.text, harness.FixtureSecrets()); !slices.Equal(got, []string{"fixture password"}) {
			t.Errorf("secrets found in a page with the fixture password: %q", got)
		}
	})
}
