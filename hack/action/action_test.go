package action

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/criimage/criimage/internal/testbin"
)

// ---- action.yml ------------------------------------------------------------------------------

// actionFile is action.yml (strictly: an unknown key is an error, so a misspelt one is caught).
type actionFile struct {
	Name        string                  `json:"name"`
	Description string                  `json:"description"`
	Author      string                  `json:"author"`
	Branding    map[string]string       `json:"branding"`
	Inputs      map[string]actionInput  `json:"inputs"`
	Outputs     map[string]actionOutput `json:"outputs"`
	Runs        struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

type actionInput struct {
	Description string  `json:"description"`
	Required    bool    `json:"required"`
	Default     *string `json:"default"`
}

type actionOutput struct {
	Description string `json:"description"`
	Value       string `json:"value"`
}

type actionStep struct {
	ID    string            `json:"id"`
	Name  string            `json:"name"`
	If    string            `json:"if"`
	Shell string            `json:"shell"`
	Run   string            `json:"run"`
	Uses  string            `json:"uses"`
	Env   map[string]string `json:"env"`
	With  map[string]string `json:"with"`
}

// runStepID is the id of the step that runs run.sh; the outputs read it.
const runStepID = "run"

var (
	inputRefRE  = regexp.MustCompile(`\binputs\.([A-Za-z0-9_-]+)`)
	scriptEnvRE = regexp.MustCompile(`\bINPUT_[A-Z0-9_]+`)
	scriptOutRE = regexp.MustCompile(`(?m)^\s*out ([a-z][a-z-]*) `)
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadAction(t *testing.T, root string) actionFile {
	t.Helper()
	var a actionFile
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(root, "action.yml"))), &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return a
}

// scriptCode is run.sh without its comment lines (which name variables in prose).
func scriptCode(script string) string {
	var b strings.Builder
	for line := range strings.Lines(script) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// scriptOutputs are the output names run.sh writes (its `out NAME VALUE` lines).
func scriptOutputs(script string) []string {
	var names []string
	for _, m := range scriptOutRE.FindAllStringSubmatch(scriptCode(script), -1) {
		names = append(names, m[1])
	}
	return names
}

// checkAction returns every inconsistency between action.yml (a) and run.sh (script).
func checkAction(a actionFile, script string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if a.Name == "" || a.Description == "" {
		bad("action.yml needs a name and a description")
	}
	if a.Runs.Using != "composite" {
		bad("runs.using is %q, want composite", a.Runs.Using)
	}
	var run *actionStep
	referenced := map[string]bool{}
	for i := range a.Runs.Steps {
		s := &a.Runs.Steps[i]
		if s.ID == runStepID {
			run = s
		}
		texts := []string{s.If, s.Run, s.Uses}
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			texts = append(texts, s.Env[k])
		}
		for _, k := range slices.Sorted(maps.Keys(s.With)) {
			texts = append(texts, s.With[k])
		}
		for _, text := range texts {
			for _, m := range inputRefRE.FindAllStringSubmatch(text, -1) {
				referenced[m[1]] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Inputs)) {
		in := a.Inputs[name]
		if in.Description == "" {
			bad("input %s has no description", name)
		}
		if in.Required && in.Default != nil && *in.Default != "" {
			bad("input %s is required and has a default", name)
		}
		if !referenced[name] {
			bad("input %s is used by no step of action.yml", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(referenced)) {
		if _, ok := a.Inputs[name]; !ok {
			bad("action.yml uses inputs.%s, which it does not declare", name)
		}
	}

	if run == nil {
		bad("action.yml has no step with id %q (the outputs read it)", runStepID)
		return problems
	}
	if run.Shell != "bash" {
		bad("the run step's shell is %q, want bash", run.Shell)
	}
	if strings.Contains(run.Run, "${{") {
		bad("the run step interpolates an expression into its shell text (script injection): pass it through env")
	}
	if !strings.Contains(run.Run, "hack/action/run.sh") {
		bad("the run step does not run hack/action/run.sh: %q", run.Run)
	}
	// Every input of the run step's env is INPUT_<NAME> = ${{ inputs.<name> }}; nothing else
	// there reads an input.
	envInputs := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(run.Env)) {
		v := run.Env[k]
		if !strings.HasPrefix(k, "INPUT_") {
			if inputRefRE.MatchString(v) {
				bad("env %s of the run step reads an input; only INPUT_* variables may", k)
			}
			continue
		}
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "INPUT_"), "_", "-"))
		if want := "${{ inputs." + name + " }}"; v != want {
			bad("env %s of the run step is %q, want %q", k, v, want)
		}
		if _, ok := a.Inputs[name]; !ok {
			bad("env %s of the run step maps input %s, which action.yml does not declare", k, name)
		}
		envInputs[k] = true
	}
	reads := map[string]bool{}
	for _, v := range scriptEnvRE.FindAllString(scriptCode(script), -1) {
		reads[v] = true
	}
	for _, v := range slices.Sorted(maps.Keys(reads)) {
		if !envInputs[v] {
			bad("run.sh reads %s, which the run step of action.yml does not set", v)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(envInputs)) {
		if !reads[v] {
			bad("the run step sets %s, which run.sh never reads", v)
		}
	}

	// Outputs: each is the run step's output of the same name, and run.sh writes exactly those.
	writes := map[string]bool{}
	for _, name := range scriptOutputs(script) {
		if writes[name] {
			bad("run.sh writes output %s twice", name)
		}
		writes[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(a.Outputs)) {
		o := a.Outputs[name]
		if o.Description == "" {
			bad("output %s has no description", name)
		}
		if want := "${{ steps." + runStepID + ".outputs." + name + " }}"; o.Value != want {
			bad("output %s has value %q, want %q", name, o.Value, want)
		}
		if !writes[name] {
			bad("output %s is declared in action.yml but run.sh never writes it", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(writes)) {
		if _, ok := a.Outputs[name]; !ok {
			bad("run.sh writes output %s, which action.yml does not declare", name)
		}
	}

	// The report is uploaded also when the run failed.
	var upload *actionStep
	for i := range a.Runs.Steps {
		if strings.HasPrefix(a.Runs.Steps[i].Uses, "actions/upload-artifact@") {
			upload = &a.Runs.Steps[i]
		}
	}
	switch {
	case upload == nil:
		bad("action.yml has no actions/upload-artifact step")
	case !strings.Contains(upload.If, "always()"):
		bad("the upload step's if is %q: it must contain always() (upload failed runs' reports)", upload.If)
	case !strings.Contains(upload.With["path"], "steps."+runStepID+".outputs.report-dir"):
		bad("the upload step's path %q is not the run step's report-dir output", upload.With["path"])
	}
	return problems
}

// TestActionConsistent: action.yml's inputs, run.sh's environment and outputs agree (see
// checkAction).
func TestActionConsistent(t *testing.T) {
	root := repoRoot(t)
	a := loadAction(t, root)
	for _, p := range checkAction(a, readFile(t, filepath.Join(root, "hack", "action", "run.sh"))) {
		t.Error(p)
	}
}

// TestActionCheckFails: checkAction catches each kind of drift (so TestActionConsistent can fail).
func TestActionCheckFails(t *testing.T) {
	root := repoRoot(t)
	script := readFile(t, filepath.Join(root, "hack", "action", "run.sh"))
	cases := []struct {
		name   string
		mutate func(a *actionFile, script *string)
		want   string
	}{
		{"input removed", func(a *actionFile, _ *string) { delete(a.Inputs, "focus") }, "input focus, which action.yml does not declare"},
		{"input unused", func(a *actionFile, _ *string) {
			a.Inputs["colour"] = actionInput{Description: "unused"}
		}, "input colour is used by no step"},
		{"env not read", func(a *actionFile, _ *string) {
			a.Inputs["colour"] = actionInput{Description: "x"}
			runStep(a).Env["INPUT_COLOUR"] = "${{ inputs.colour }}"
		}, "sets INPUT_COLOUR, which run.sh never reads"},
		{"env missing", func(a *actionFile, _ *string) { delete(runStep(a).Env, "INPUT_SKIP") }, "run.sh reads INPUT_SKIP"},
		{"env mismapped", func(a *actionFile, _ *string) { runStep(a).Env["INPUT_SKIP"] = "${{ inputs.focus }}" }, "env INPUT_SKIP of the run step"},
		{"interpolation", func(a *actionFile, _ *string) {
			runStep(a).Run = `FOCUS="${{ inputs.focus }}" ` + runStep(a).Run
		}, "script injection"},
		{"output removed", func(a *actionFile, _ *string) { delete(a.Outputs, "unexpected-pass") }, "writes output unexpected-pass, which action.yml does not declare"},
		{"output not written", func(_ *actionFile, s *string) {
			*s = strings.Replace(*s, "\tout total ", "\t# out total ", 1)
		}, "output total is declared in action.yml but run.sh never writes it"},
		{"output from another step", func(a *actionFile, _ *string) {
			o := a.Outputs["passed"]
			o.Value = "${{ steps.other.outputs.passed }}"
			a.Outputs["passed"] = o
		}, "output passed has value"},
		{"upload only on success", func(a *actionFile, _ *string) {
			for i := range a.Runs.Steps {
				if strings.HasPrefix(a.Runs.Steps[i].Uses, "actions/upload-artifact@") {
					a.Runs.Steps[i].If = "inputs.upload-artifact == 'true'"
				}
			}
		}, "must contain always()"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := loadAction(t, root) // a fresh copy: the maps are mutated
			s := script
			c.mutate(&a, &s)
			problems := checkAction(a, s)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("want a problem containing %q, got %q", c.want, problems)
			}
		})
	}
}

func runStep(a *actionFile) *actionStep {
	for i := range a.Runs.Steps {
		if a.Runs.Steps[i].ID == runStepID {
			return &a.Runs.Steps[i]
		}
	}
	panic("no run step")
}

// TestDocsListInputsAndOutputs: docs/action.md's Inputs and Outputs tables name exactly
// action.yml's inputs and outputs.
func TestDocsListInputsAndOutputs(t *testing.T) {
	root := repoRoot(t)
	a := loadAction(t, root)
	doc := readFile(t, filepath.Join(root, "docs", "action.md"))
	for _, c := range []struct {
		heading string
		want    []string
	}{{"## Inputs", slices.Sorted(maps.Keys(a.Inputs))}, {"## Outputs", slices.Sorted(maps.Keys(a.Outputs))}} {
		got := tableNames(t, doc, c.heading)
		sort.Strings(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("docs/action.md %s lists %q; action.yml has %q", c.heading, got, c.want)
		}
	}
}

var tableNameRE = regexp.MustCompile("^\\|\\s*`([^`]+)`")

// tableNames are the backticked first cells of the table under heading.
func tableNames(t *testing.T, doc, heading string) []string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/action.md has no %q section", heading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var names []string
	for line := range strings.Lines(section) {
		if m := tableNameRE.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// workflow is the part of a workflow file the examples check reads.
type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			Name string         `json:"name"`
			Uses string         `json:"uses"`
			Run  string         `json:"run"`
			With map[string]any `json:"with"`
		} `json:"steps"`
	} `json:"jobs"`
}

// TestExamplesUseDeclaredInputs: every examples/*.yml uses the action with only inputs that
// action.yml declares, and gives every required one.
func TestExamplesUseDeclaredInputs(t *testing.T) {
	root := repoRoot(t)
	a := loadAction(t, root)
	files, err := filepath.Glob(filepath.Join(root, "examples", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples/*.yml")
	}
	for _, f := range files {
		var w workflow
		if err := yaml.Unmarshal([]byte(readFile(t, f)), &w); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		uses := 0
		for _, job := range slices.Sorted(maps.Keys(w.Jobs)) {
			for _, s := range w.Jobs[job].Steps {
				if s.Run != "" {
					checkBashSyntax(t, fmt.Sprintf("%s: job %s step %q", filepath.Base(f), job, s.Name), s.Run)
				}
				if s.Uses != "./" && !strings.HasPrefix(s.Uses, "criimage/criimage@") {
					continue
				}
				uses++
				for _, k := range slices.Sorted(maps.Keys(s.With)) {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("%s: job %s step %q: with.%s is not an input of action.yml", filepath.Base(f), job, s.Name, k)
					}
				}
				for _, k := range slices.Sorted(maps.Keys(a.Inputs)) {
					if _, ok := s.With[k]; a.Inputs[k].Required && !ok {
						t.Errorf("%s: job %s step %q: the required input %s is missing", filepath.Base(f), job, s.Name, k)
					}
				}
			}
		}
		if uses == 0 {
			t.Errorf("%s does not use the action (uses: criimage/criimage@… or ./)", filepath.Base(f))
		}
	}
}

var expressionRE = regexp.MustCompile(`\$\{\{.*?\}\}`)

// checkBashSyntax: bash -n accepts a step's run text (its ${{ }} expressions replaced by a word).
func checkBashSyntax(t *testing.T, what, run string) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(expressionRE.ReplaceAllString(run, "EXPR"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: bash -n: %v\n%s", what, err, b)
	}
}

// ---- running run.sh ----------------------------------------------------------------------------

type scriptRun struct {
	code           int
	stdout, stderr string
	outputs        map[string]string
	summary        string
}

// runScript runs run.sh in dir (the "workspace") with env added to a clean environment, and
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files in dir unless env sets them.
func runScript(t *testing.T, root, dir string, env ...string) scriptRun {
	t.Helper()
	output := filepath.Join(dir, "github-output")
	summary := filepath.Join(dir, "github-step-summary")
	for _, f := range []string{output, summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INPUT_") || strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "CRIIMAGE_") || strings.HasPrefix(k, "RUNNER_") {
			continue
		}
		base = append(base, kv)
	}
	base = append(base, "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary, "RUNNER_TEMP="+dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "action", "run.sh"))
	cmd.Dir = dir
	cmd.Env = append(base, env...) // later entries win
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := scriptRun{stdout: stdout.String(), stderr: stderr.String(), outputs: map[string]string{}}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run.sh: %v\nstderr:\n%s", err, r.stderr)
	}
	for line := range strings.Lines(readFile(t, output)) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			t.Errorf("GITHUB_OUTPUT line %q is not name=value", line)
			continue
		}
		if _, dup := r.outputs[k]; dup {
			t.Errorf("GITHUB_OUTPUT sets %s twice", k)
		}
		r.outputs[k] = v
	}
	r.summary = readFile(t, summary)
	return r
}

func (r scriptRun) String() string {
	return fmt.Sprintf("exit %d, outputs %v\nstdout:\n%s\nstderr:\n%s", r.code, r.outputs, r.stdout, r.stderr)
}

// outcomeCounts counts the outcomes of a results.json.
func outcomeCounts(t *testing.T, path string) (map[string]int, int) {
	t.Helper()
	var entries []struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(readFile(t, path)), &entries); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Outcome]++
	}
	return counts, len(entries)
}

// checkOutputs: the outputs are exactly action.yml's, and the counts are results.json's.
func checkOutputs(t *testing.T, a actionFile, r scriptRun, reportDir string) {
	t.Helper()
	if got, want := slices.Sorted(maps.Keys(r.outputs)), slices.Sorted(maps.Keys(a.Outputs)); !slices.Equal(got, want) {
		t.Errorf("run.sh wrote outputs %q; action.yml declares %q", got, want)
	}
	if r.outputs["report-dir"] != reportDir {
		t.Errorf("report-dir = %q, want %q", r.outputs["report-dir"], reportDir)
	}
	counts, total := outcomeCounts(t, filepath.Join(reportDir, "results.json"))
	for _, o := range []string{"passed", "failed", "unsupported", "informational", "expected-failure", "unexpected-pass", "skipped"} {
		if got, want := r.outputs[o], strconv.Itoa(counts[o]); got != want {
			t.Errorf("output %s = %q, results.json has %s", o, got, want)
		}
	}
	if got, want := r.outputs["total"], strconv.Itoa(total); got != want {
		t.Errorf("output total = %q, results.json has %s entries", got, want)
	}
}

func lookGo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	return p
}

// TestScript runs the action's script with a real criimage (one build, or
// $CRIIMAGE_ACTION_TEST_BIN): see testEmbedded and testDownload.
func TestScript(t *testing.T) {
	root := repoRoot(t)
	a := loadAction(t, root)
	bin := testbin.Criimage(t, "CRIIMAGE_ACTION_TEST_BIN")
	t.Run("embedded", func(t *testing.T) { testEmbedded(t, root, a, bin) })
	t.Run("download", func(t *testing.T) { testDownload(t, root, a, bin) })
}

// testEmbedded: a passing run against the embedded reference, a failing run against an endpoint
// that does not exist, and (unless -short) criimage built from source, in one process and under
// ginkgo -p.
func testEmbedded(t *testing.T, root string, a actionFile, bin string) {

	t.Run("passing", func(t *testing.T) {
		dir := t.TempDir()
		r := runScript(t, root, dir, "CRIIMAGE_BIN="+bin, "INPUT_IMAGE_ENDPOINT=embedded",
			"INPUT_FOCUS=PULL-00[1-3]|LIST-001", "INPUT_REPORT_DIR=report")
		if r.code != 0 {
			t.Fatalf("want exit 0: %v", r)
		}
		reportDir := filepath.Join(dir, "report")
		checkOutputs(t, a, r, reportDir)
		if r.outputs["result"] != "success" || r.outputs["failed"] != "0" || r.outputs["passed"] == "0" {
			t.Errorf("want result=success, failed=0, passed>0: %v", r.outputs)
		}
		if !strings.Contains(r.summary, "PULL-001") {
			t.Errorf("the step summary does not name PULL-001:\n%s", r.summary)
		}
	})

	t.Run("failing", func(t *testing.T) {
		dir := t.TempDir()
		r := runScript(t, root, dir, "CRIIMAGE_BIN="+bin, "INPUT_IMAGE_ENDPOINT=unix://"+filepath.Join(dir, "no-such.sock"),
			"INPUT_FOCUS=PULL-001", "CRIIMAGE_RPC_TIMEOUT=2s")
		if r.code == 0 {
			t.Fatalf("want a nonzero exit: %v", r)
		}
		checkOutputs(t, a, r, filepath.Join(dir, "criimage-report"))
		if r.outputs["result"] != "failure" || r.outputs["failed"] == "0" {
			t.Errorf("want result=failure and failed>0: %v", r.outputs)
		}
	})

	if testing.Short() {
		return
	}
	lookGo(t)
	t.Run("build-from-source", func(t *testing.T) {
		dir := t.TempDir()
		r := runScript(t, root, dir, "INPUT_IMAGE_ENDPOINT=embedded", "INPUT_BUILD_FROM_SOURCE=true",
			"INPUT_FOCUS=PULL-00[1-3]|LIST-001")
		if r.code != 0 || !strings.Contains(r.stdout, "building criimage from "+root) {
			t.Fatalf("want a build and exit 0: %v", r)
		}
		checkOutputs(t, a, r, filepath.Join(dir, "criimage-report"))
		if r.outputs["passed"] != "4" {
			t.Errorf("passed = %q, want 4", r.outputs["passed"])
		}
	})
	t.Run("ginkgo-parallel", func(t *testing.T) {
		help, _ := exec.Command(bin, "test", "--help").CombinedOutput()
		if regexp.MustCompile(`(?m)^\s*-parallel\b`).Match(help) {
			t.Skip("criimage test has --parallel: the action passes it instead of using ginkgo -p")
		}
		dir := t.TempDir()
		r := runScript(t, root, dir, "INPUT_IMAGE_ENDPOINT=embedded", "INPUT_BUILD_FROM_SOURCE=true",
			"INPUT_PARALLEL=2", "INPUT_FOCUS=PULL-00[1-3]|LIST-001")
		if r.code != 0 || !strings.Contains(r.stdout, "ginkgo -p --procs 2") {
			t.Fatalf("want a ginkgo -p run and exit 0: %v", r)
		}
		checkOutputs(t, a, r, filepath.Join(dir, "criimage-report"))
		if r.outputs["passed"] != "4" {
			t.Errorf("passed = %q, want 4", r.outputs["passed"])
		}
	})
}

// testDownload: the script downloads criimage (bin) from a release mirror on 127.0.0.1 and runs
// it only when its SHA-256 is the one SHA256SUMS of the same release lists.
func testDownload(t *testing.T, root string, a actionFile, bin string) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("release binaries are linux/amd64 and linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	good, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0xff
	asset := "criimage-linux-" + runtime.GOARCH
	sum := sha256.Sum256(good)
	goodSum := hex.EncodeToString(sum[:])
	other := sha256.Sum256([]byte("another file"))
	sums := fmt.Sprintf("%x  criimage-linux-unknown\n%s  %s\n", other, goodSum, asset)

	// The mirror: GitHub's layout under /releases; v1.0.0 good, v1.0.1 a tampered binary,
	// v1.0.2 no line for this binary in SHA256SUMS, v1.0.3 no such release, v1.0.4 a good binary
	// listed in binary mode ("*name") with an upper-case digest; latest → v1.0.0.
	files := map[string][]byte{
		"/releases/download/v1.0.0/" + asset:   good,
		"/releases/download/v1.0.0/SHA256SUMS": []byte(sums),
		"/releases/download/v1.0.1/" + asset:   tampered,
		"/releases/download/v1.0.1/SHA256SUMS": []byte(sums),
		"/releases/download/v1.0.2/" + asset:   good,
		"/releases/download/v1.0.2/SHA256SUMS": fmt.Appendf(nil, "%x  criimage-linux-unknown\n", other),
		"/releases/download/v1.0.4/" + asset:   good,
		"/releases/download/v1.0.4/SHA256SUMS": []byte(strings.ToUpper(goodSum) + " *" + asset + "\n"),
		"/releases/tag/v1.0.0":                 []byte("<html>v1.0.0</html>"),
	}
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/releases/latest" {
			http.Redirect(w, r, "/releases/tag/v1.0.0", http.StatusFound)
			return
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	base := srv.URL + "/releases"
	takeRequests := func() []string {
		mu.Lock()
		defer mu.Unlock()
		r := requests
		requests = nil
		return r
	}

	// uname: a stand-in for the unsupported-platform cases.
	fakeBin := t.TempDir()
	uname := "#!/bin/sh\ncase \"$1\" in -s) echo \"${FAKE_UNAME_S:-Linux}\" ;; -m) echo \"${FAKE_UNAME_M:-x86_64}\" ;; *) exit 1 ;; esac\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "uname"), []byte(uname), 0o755); err != nil {
		t.Fatal(err)
	}
	fakePath := "PATH=" + fakeBin + string(os.PathListSeparator) + os.Getenv("PATH")

	cases := []struct {
		name     string
		env      []string
		wantCode int
		want     string   // in the script's stdout+stderr
		fetched  []string // paths the script must have requested, in order
	}{
		{"version input", []string{"INPUT_VERSION=v1.0.0"}, 0, "sha256 " + goodSum + " matches SHA256SUMS",
			[]string{"/releases/download/v1.0.0/SHA256SUMS", "/releases/download/v1.0.0/" + asset}},
		{"the action's tag", []string{"CRIIMAGE_ACTION_REF=v1.0.0"}, 0, "version v1.0.0: the action's own ref",
			[]string{"/releases/download/v1.0.0/SHA256SUMS", "/releases/download/v1.0.0/" + asset}},
		{"latest for a branch ref", []string{"CRIIMAGE_ACTION_REF=main"}, 0, "latest release: v1.0.0",
			[]string{"/releases/latest", "/releases/tag/v1.0.0", "/releases/download/v1.0.0/SHA256SUMS", "/releases/download/v1.0.0/" + asset}},
		{"binary-mode line", []string{"INPUT_VERSION=v1.0.4"}, 0, "matches SHA256SUMS", nil},
		{"tampered binary", []string{"INPUT_VERSION=v1.0.1"}, 1, "checksum mismatch for " + asset + " of v1.0.1: SHA256SUMS says " + goodSum, nil},
		{"no checksum line", []string{"INPUT_VERSION=v1.0.2"}, 1, "SHA256SUMS of v1.0.2 has no line for " + asset + ": refusing to run an unverified binary", nil},
		{"no such release", []string{"INPUT_VERSION=v1.0.3"}, 1, "could not download " + base + "/download/v1.0.3/SHA256SUMS", nil},
		{"plain http off loopback", []string{"INPUT_VERSION=v1.0.0", "CRIIMAGE_RELEASE_BASE_URL=http://example.invalid/releases"}, 2,
			"plain http is allowed only on loopback", []string{}},
		{"loopback look-alike", []string{"INPUT_VERSION=v1.0.0", "CRIIMAGE_RELEASE_BASE_URL=http://127.0.0.1.example.invalid/releases"}, 2,
			"plain http is allowed only on loopback", []string{}},
		{"unsupported architecture", []string{"INPUT_VERSION=v1.0.0", fakePath, "FAKE_UNAME_M=riscv64"}, 1,
			"unsupported architecture 'riscv64' (uname -m)", []string{}},
		{"not Linux", []string{"INPUT_VERSION=v1.0.0", fakePath, "FAKE_UNAME_S=Darwin"}, 1, "this runner runs Darwin", []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			takeRequests()
			dir := t.TempDir()
			env := append([]string{"CRIIMAGE_RELEASE_BASE_URL=" + base, "INPUT_IMAGE_ENDPOINT=embedded", "INPUT_FOCUS=PULL-001"}, c.env...)
			r := runScript(t, root, dir, env...)
			if r.code != c.wantCode {
				t.Fatalf("want exit %d: %v", c.wantCode, r)
			}
			if !strings.Contains(r.stdout+r.stderr, c.want) {
				t.Errorf("want %q in the script's output: %v", c.want, r)
			}
			if got := takeRequests(); c.fetched != nil && !slices.Equal(got, c.fetched) {
				t.Errorf("requests %q, want %q", got, c.fetched)
			}
			results := filepath.Join(dir, "criimage-report", "results.json")
			if c.wantCode == 0 {
				checkOutputs(t, a, r, filepath.Join(dir, "criimage-report"))
				if r.outputs["result"] != "success" || r.outputs["passed"] != "1" {
					t.Errorf("want result=success, passed=1: %v", r.outputs)
				}
				return
			}
			// Refused: criimage never ran, and the outputs say so.
			if strings.Contains(r.stdout, "criimage-action: running:") {
				t.Errorf("the script ran criimage: %v", r)
			}
			if _, err := os.Stat(results); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("results.json exists (%v): criimage ran", err)
			}
			if r.outputs["result"] != "failure" || r.outputs["total"] != "0" {
				t.Errorf("want result=failure, total=0: %v", r.outputs)
			}
		})
	}
}

// ---- a stub criimage ---------------------------------------------------------------------------

// stubHelp is criimage test --help's flag list as of this writing, without -parallel and -profile.
const stubHelp = `usage: criimage test [--embedded | --image-endpoint unix:///…] [flags]
  -dry-run
    	list the specs without running them
  -embedded
    	run against the embedded reference ImageService (ignores --image-endpoint)
  -expectations string
    	YAML file of expected failures [CRIIMAGE_EXPECTATIONS]
  -features value
    	comma-separated features the target declares, repeatable
  -focus string
    	run only specs whose text (e.g. the ID) matches this regexp
  -image-endpoint string
    	CRI image endpoint (unix:///path or tcp://host:port) [CRIIMAGE_IMAGE_ENDPOINT]
  -label-filter string
    	ginkgo label filter, e.g. 'area:auth && conformance'
  -registry-config-dir string
    	write containerd certs.d hosts files for the run's registry here [CRIIMAGE_REGISTRY_CONFIG_DIR]
  -report-dir string
    	directory for junit.xml, report.json, summary.md [CRIIMAGE_REPORT_DIR]
  -skip string
    	skip specs whose text matches this regexp
  -timeout duration
    	timeout of the whole run (default 30m0s)
  -v	verbose ginkgo output
`

// stubScript stands in for criimage: "test --help" prints $STUB_DIR/help; "test ARGS" records
// ARGS (NUL-separated) and CRIIMAGE_RUNTIME_ENDPOINT, copies $STUB_DIR/results.json and
// summary.md into the report dir, appends $STUB_DIR/own-summary to $GITHUB_STEP_SUMMARY, and
// exits with $STUB_DIR/exit (default 0).
const stubScript = `#!/usr/bin/env bash
set -eu
case ${1:-} in
version) echo "criimage stub"; exit 0 ;;
test) shift ;;
*) exit 2 ;;
esac
if [[ ${1:-} == --help ]]; then cat "$STUB_DIR/help" >&2; exit 0; fi
printf '%s\0' "$@" >"$STUB_DIR/args"
printf '%s' "${CRIIMAGE_RUNTIME_ENDPOINT:-}" >"$STUB_DIR/runtime-env"
report=
while (($#)); do
	if [[ $1 == --report-dir ]]; then report=$2; fi
	shift
done
for f in results.json summary.md; do
	if [[ -f $STUB_DIR/$f ]]; then cp "$STUB_DIR/$f" "$report/$f"; fi
done
if [[ -f $STUB_DIR/own-summary ]]; then cat "$STUB_DIR/own-summary" >>"$GITHUB_STEP_SUMMARY"; fi
exit "$(cat "$STUB_DIR/exit" 2>/dev/null || echo 0)"
`

// TestScriptCommandLine runs the script with a stub criimage: the command line it builds from
// the inputs, what it does with flags criimage lacks, input validation, and the counting.
func TestScriptCommandLine(t *testing.T) {
	root := repoRoot(t)
	a := loadAction(t, root)
	allOutcomes := `[
  {"id": "A-001", "area": "a", "level": "conformance", "outcome": "passed"},
  {"id": "A-002", "area": "a", "level": "conformance", "outcome": "passed"},
  {"id": "A-003", "area": "a", "level": "conformance", "outcome": "failed", "note": "x"},
  {"id": "A-004", "area": "a", "level": "conformance", "outcome": "unsupported"},
  {"id": "A-005", "area": "a", "level": "informational", "outcome": "informational"},
  {"id": "A-006", "area": "a", "level": "conformance", "outcome": "expected-failure"},
  {"id": "A-007", "area": "a", "level": "conformance", "outcome": "unexpected-pass"},
  {"id": "A-008", "area": "a", "level": "conformance", "outcome": "skipped"}
]`
	type stub struct {
		help, results, summary, ownSummary string
		exit                               int
	}
	cases := []struct {
		name     string
		stub     stub
		env      []string
		setup    func(t *testing.T, dir string)
		wantCode int
		wantArgs func(dir string) []string // nil: criimage must not have run
		want     string                    // in stdout+stderr
		check    func(t *testing.T, dir string, r scriptRun)
	}{
		{
			name: "every input", stub: stub{help: stubHelp},
			env: []string{
				"INPUT_IMAGE_ENDPOINT=unix:///run/x.sock", "INPUT_RUNTIME_ENDPOINT=unix:///run/y.sock",
				"INPUT_FEATURES=mirror,tls\n  restart=systemctl restart containerd  \n\n",
				"INPUT_EXPECTATIONS=known failures.yaml", "INPUT_REGISTRY_CONFIG_DIR=./certs.d",
				"INPUT_FOCUS= PULL 00[1-3] * ", "INPUT_SKIP=$(touch pwned)", "INPUT_LABEL_FILTER=area:pull && !recommended",
				"INPUT_REPORT_DIR=out dir", "INPUT_PARALLEL=1", "INPUT_VERSION=v9.9.9", "INPUT_BUILD_FROM_SOURCE=false",
			},
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "known failures.yaml"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantArgs: func(dir string) []string {
				// No --runtime-endpoint: this help has none (see "runtime endpoint flag").
				return []string{"--image-endpoint", "unix:///run/x.sock", "--features", "mirror,tls",
					"--features", "restart=systemctl restart containerd",
					"--expectations", filepath.Join(dir, "known failures.yaml"), "--registry-config-dir", filepath.Join(dir, "certs.d"),
					"--focus", "PULL 00[1-3] *", "--skip", "$(touch pwned)", "--label-filter", "area:pull && !recommended",
					"--report-dir", filepath.Join(dir, "out dir")}
			},
			check: func(t *testing.T, dir string, _ scriptRun) {
				if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
					t.Error("an input was executed as shell")
				}
			},
		},
		{
			name: "empty inputs omitted", stub: stub{help: stubHelp},
			env: []string{"INPUT_IMAGE_ENDPOINT=tcp://127.0.0.1:1234", "INPUT_FEATURES=", "INPUT_FOCUS=", "INPUT_PROFILE="},
			wantArgs: func(dir string) []string {
				return []string{"--image-endpoint", "tcp://127.0.0.1:1234", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
		},
		{
			name: "embedded", stub: stub{help: stubHelp}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
		},
		{
			name: "runtime endpoint flag", stub: stub{help: stubHelp + "  -runtime-endpoint string\n    \toptional CRI runtime endpoint\n"},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_RUNTIME_ENDPOINT=unix:///run/y.sock"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--runtime-endpoint", "unix:///run/y.sock", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
		},
		{
			name: "runtime endpoint without the flag", stub: stub{help: stubHelp},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_RUNTIME_ENDPOINT=unix:///run/y.sock"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			want: "exported CRIIMAGE_RUNTIME_ENDPOINT",
			check: func(t *testing.T, dir string, _ scriptRun) {
				if got := readFile(t, filepath.Join(dir, "stub", "runtime-env")); got != "unix:///run/y.sock" {
					t.Errorf("criimage saw CRIIMAGE_RUNTIME_ENDPOINT=%q", got)
				}
			},
		},
		{
			name: "parallel flag", stub: stub{help: stubHelp + "  -parallel int\n    \tspec processes\n"},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_PARALLEL=3"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report"), "--parallel", "3"}
			},
		},
		{
			name: "parallel without the flag", stub: stub{help: stubHelp},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_PARALLEL=3"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			want: "parallel: 3 ignored: this criimage's test command has no --parallel",
		},
		{
			name: "profile flag", stub: stub{help: stubHelp + "  -profile string\n    \tfeature profile\n"},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_PROFILE=containerd-2"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--profile", "containerd-2", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
		},
		{
			name: "profile without the flag", stub: stub{help: stubHelp},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_PROFILE=containerd-2"}, wantCode: 2,
			want: "input profile needs a criimage whose test command has --profile",
		},
		{
			name: "counts, jq", stub: stub{help: stubHelp, results: allOutcomes, exit: 1},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "CRIIMAGE_ACTION_JSON=jq"}, wantCode: 1,
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: checkAllOutcomes,
		},
		{
			name: "counts, python3", stub: stub{help: stubHelp, results: allOutcomes, exit: 1},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "CRIIMAGE_ACTION_JSON=python3"}, wantCode: 1,
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: checkAllOutcomes,
		},
		{
			name: "exit status passed through", stub: stub{help: stubHelp, exit: 3},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded"}, wantCode: 3,
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: func(t *testing.T, _ string, r scriptRun) {
				if r.outputs["result"] != "failure" {
					t.Errorf("result = %q, want failure", r.outputs["result"])
				}
			},
		},
		{
			name: "an earlier run's results.json is not counted", stub: stub{help: stubHelp, exit: 1},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded"}, wantCode: 1,
			setup: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, "criimage-report"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "criimage-report", "results.json"), []byte(allOutcomes), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: func(t *testing.T, _ string, r scriptRun) {
				if r.outputs["total"] != "0" || r.outputs["passed"] != "0" {
					t.Errorf("want total=0 passed=0: %v", r.outputs)
				}
			},
		},
		{
			name: "malformed results.json", stub: stub{help: stubHelp, results: `{"passed": 3}`},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			want: "the counts are 0",
			check: func(t *testing.T, _ string, r scriptRun) {
				if r.outputs["total"] != "0" || r.outputs["result"] != "success" {
					t.Errorf("want total=0, result=success: %v", r.outputs)
				}
			},
		},
		{
			name: "summary.md appended when criimage wrote no step summary",
			stub: stub{help: stubHelp, summary: "# the summary\n"},
			env:  []string{"INPUT_IMAGE_ENDPOINT=embedded"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: func(t *testing.T, _ string, r scriptRun) {
				if r.summary != "# the summary\n" {
					t.Errorf("step summary %q, want summary.md", r.summary)
				}
			},
		},
		{
			name: "criimage's own step summary is left alone",
			stub: stub{help: stubHelp, summary: "# the summary\n", ownSummary: "# criimage's own\n"},
			env:  []string{"INPUT_IMAGE_ENDPOINT=embedded"},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			check: func(t *testing.T, _ string, r scriptRun) {
				if r.summary != "# criimage's own\n" {
					t.Errorf("step summary %q, want only criimage's own", r.summary)
				}
			},
		},
		{
			name: "outputs printed without GITHUB_OUTPUT", stub: stub{help: stubHelp},
			env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "GITHUB_OUTPUT="},
			wantArgs: func(dir string) []string {
				return []string{"--embedded", "--report-dir", filepath.Join(dir, "criimage-report")}
			},
			want: "\nresult=success\n",
		},
		{name: "image-endpoint missing", stub: stub{help: stubHelp}, wantCode: 2, want: "input image-endpoint is required"},
		{name: "parallel not a number", stub: stub{help: stubHelp}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_PARALLEL=two"},
			wantCode: 2, want: "input parallel must be a whole number"},
		{name: "build-from-source not a boolean", stub: stub{help: stubHelp}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_BUILD_FROM_SOURCE=yes"},
			wantCode: 2, want: "input build-from-source must be true or false"},
		{name: "two-line focus", stub: stub{help: stubHelp}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_FOCUS=a\nb"},
			wantCode: 2, want: "input focus must be one line"},
		{name: "expectations missing", stub: stub{help: stubHelp}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded", "INPUT_EXPECTATIONS=nope.yaml"},
			wantCode: 2, want: "expectations file 'nope.yaml' does not exist"},
		{name: "not criimage", stub: stub{help: "usage: something else\n"}, env: []string{"INPUT_IMAGE_ENDPOINT=embedded"},
			wantCode: 1, want: "lists no -image-endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				if tool, ok := strings.CutPrefix(kv, "CRIIMAGE_ACTION_JSON="); ok {
					if _, err := exec.LookPath(tool); err != nil {
						t.Skipf("no %s: %v", tool, err)
					}
				}
			}
			dir := t.TempDir()
			stubDir := filepath.Join(dir, "stub")
			if err := os.Mkdir(stubDir, 0o755); err != nil {
				t.Fatal(err)
			}
			write := func(name, content string) {
				if content == "" {
					return
				}
				if err := os.WriteFile(filepath.Join(stubDir, name), []byte(content), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write("criimage", stubScript)
			write("help", c.stub.help)
			write("results.json", c.stub.results)
			write("summary.md", c.stub.summary)
			write("own-summary", c.stub.ownSummary)
			write("exit", strconv.Itoa(c.stub.exit))
			if c.setup != nil {
				c.setup(t, dir)
			}
			env := append([]string{"CRIIMAGE_BIN=" + filepath.Join(stubDir, "criimage"), "STUB_DIR=" + stubDir}, c.env...)
			r := runScript(t, root, dir, env...)
			if r.code != c.wantCode {
				t.Fatalf("want exit %d: %v", c.wantCode, r)
			}
			if !strings.Contains(r.stdout+r.stderr, c.want) {
				t.Errorf("want %q in the script's output: %v", c.want, r)
			}
			b, err := os.ReadFile(filepath.Join(stubDir, "args"))
			switch {
			case c.wantArgs == nil && err == nil:
				t.Errorf("criimage ran (%q); it must not", b)
			case c.wantArgs != nil && err != nil:
				t.Fatalf("criimage did not run: %v", r)
			case c.wantArgs != nil:
				got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
				if want := c.wantArgs(dir); !slices.Equal(got, want) {
					t.Errorf("criimage test args\n got %q\nwant %q", got, want)
				}
			}
			if !slices.Contains(c.env, "GITHUB_OUTPUT=") {
				if got, want := slices.Sorted(maps.Keys(r.outputs)), slices.Sorted(maps.Keys(a.Outputs)); !slices.Equal(got, want) {
					t.Errorf("outputs %q, want %q", got, want)
				}
				if c.wantCode != 0 && r.outputs["result"] != "failure" {
					t.Errorf("result = %q after exit %d", r.outputs["result"], r.code)
				}
			}
			if c.check != nil {
				c.check(t, dir, r)
			}
		})
	}
}

func checkAllOutcomes(t *testing.T, _ string, r scriptRun) {
	t.Helper()
	want := map[string]string{"passed": "2", "failed": "1", "unsupported": "1", "informational": "1",
		"expected-failure": "1", "unexpected-pass": "1", "skipped": "1", "total": "8", "result": "failure"}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if r.outputs[k] != want[k] {
			t.Errorf("output %s = %q, want %s", k, r.outputs[k], want[k])
		}
	}
}
