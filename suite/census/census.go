// Package census holds flake censuses: for each target (a runtime gate or the reference) and each
// spec, how often each outcome came up over repeated runs of the same suite. It collects them from
// the runs' results.json files (hack/flake-census.sh lays them out), renders them as tables, and
// states the rule that ties them to expectations files: a spec whose outcome varied from run to
// run must be listed as `either` — its outcome depends on the target's own timing — and an
// `either` names its measured rate. A spec that varies on the reference is a flaw of ours.
package census

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/criimage/criimage/suite/expectations"
	"github.com/criimage/criimage/suite/report"
)

// Reference is the target name of the embedded reference (`criimage test --embedded`).
const Reference = "reference"

// Missing is the outcome counted for a spec that a run did not report (the run stopped before
// its suite, or before that spec).
const Missing = "missing"

// Census is one census: every target run Runs times under the same conditions.
type Census struct {
	Name    string             `json:"name"`              // "quiet", "loaded", …
	Started string             `json:"started"`           // RFC 3339, UTC
	Commit  string             `json:"commit"`            // the tree the runs used
	Machine string             `json:"machine"`           // cores, memory, kernel
	Load    string             `json:"load,omitempty"`    // the background load, if any
	Focus   string             `json:"focus,omitempty"`   // the --focus of the runs, if any
	Targets map[string]*Target `json:"targets"`           // by target name
	Notes   []string           `json:"notes,omitempty"`   // what a reader must know about this census
	Version int                `json:"version,omitempty"` // file format; 1
}

// Target is one target's runs.
type Target struct {
	Runs        int                 `json:"runs"`
	Green       int                 `json:"green"`        // runs that exited 0: CI would have passed
	WallSeconds []float64           `json:"wall_seconds"` // per run, in run order
	Specs       map[string]Outcomes `json:"specs"`        // spec ID → outcome counts
}

// Outcomes counts the outcomes of one spec on one target (report.Passed, report.ExpectedFailure,
// report.UnexpectedPass, …, or Missing).
type Outcomes map[string]int

// Stable reports whether every run had the same outcome.
func (o Outcomes) Stable() bool {
	return len(o.kinds()) <= 1
}

// kinds lists the outcomes with a count, most frequent first (ties by name).
func (o Outcomes) kinds() []string {
	var ks []string
	for k, n := range o {
		if n > 0 {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool {
		if o[ks[i]] != o[ks[j]] {
			return o[ks[i]] > o[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// Total is the number of runs counted.
func (o Outcomes) Total() int {
	n := 0
	for _, c := range o {
		n += c
	}
	return n
}

// String renders "stable: passed" or "3 of 10 passed, 7 of 10 expected-failure".
func (o Outcomes) String() string {
	ks := o.kinds()
	switch len(ks) {
	case 0:
		return "not run"
	case 1:
		return "stable: " + ks[0]
	}
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%d of %d %s", o[k], o.Total(), k)
	}
	return strings.Join(parts, ", ")
}

// runRecord is hack/flake-census.sh's census-run.json.
type runRecord struct {
	Target      string  `json:"target"`
	ExitCode    int     `json:"exit_code"`
	WallSeconds float64 `json:"wall_seconds"`
}

// Collect reads dir/TARGET/run-*/ (census-run.json and results.json) into a census.
func Collect(dir string) (*Census, error) {
	c := &Census{Version: 1, Targets: map[string]*Target{}}
	targets, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("census: %w", err)
	}
	for _, te := range targets {
		if !te.IsDir() {
			continue
		}
		runs, err := runDirs(filepath.Join(dir, te.Name()))
		if err != nil {
			return nil, fmt.Errorf("census: %w", err)
		}
		if len(runs) == 0 {
			continue // not a target (the background load's logs, for one)
		}
		t := &Target{Specs: map[string]Outcomes{}}
		perRun := make([]map[string]string, 0, len(runs))
		for _, run := range runs {
			var rec runRecord
			if err := readJSON(filepath.Join(run, "census-run.json"), &rec); err != nil {
				return nil, fmt.Errorf("census: %s: %w", run, err)
			}
			t.Runs++
			t.WallSeconds = append(t.WallSeconds, rec.WallSeconds)
			if rec.ExitCode == 0 {
				t.Green++
			}
			outcomes := map[string]string{}
			var results []report.Result
			if err := readJSON(filepath.Join(run, "results.json"), &results); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("census: %s: %w", run, err)
			}
			for _, r := range results {
				if r.ID != "SUITE" {
					outcomes[r.ID] = r.Outcome
				}
			}
			perRun = append(perRun, outcomes)
		}
		ids := map[string]bool{}
		for _, m := range perRun {
			for id := range m {
				ids[id] = true
			}
		}
		for id := range ids {
			o := Outcomes{}
			for _, m := range perRun {
				got, ok := m[id]
				if !ok {
					got = Missing
				}
				o[got]++
			}
			t.Specs[id] = o
		}
		c.Targets[te.Name()] = t
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("census: no runs under %s (want TARGET/run-NN/)", dir)
	}
	return c, nil
}

// runDirs lists the run-* directories of a target directory, sorted.
func runDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "run-") {
			runs = append(runs, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(runs)
	return runs, nil
}

// Load reads a census file.
func Load(path string) (*Census, error) {
	var c Census
	if err := readJSON(path, &c); err != nil {
		return nil, fmt.Errorf("census: %w", err)
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("census: %s has no targets", path)
	}
	return &c, nil
}

// Encode writes c as indented JSON.
func (c *Census) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// Write writes c as indented JSON to path.
func (c *Census) Write(path string) error {
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// TargetNames lists the targets: the reference first, then by name.
func (c *Census) TargetNames() []string {
	names := make([]string, 0, len(c.Targets))
	for n := range c.Targets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == Reference) != (names[j] == Reference) {
			return names[i] == Reference
		}
		return names[i] < names[j]
	})
	return names
}

// Varied lists the specs whose outcome varied on target, sorted.
func (c *Census) Varied(target string) []string {
	t := c.Targets[target]
	if t == nil {
		return nil
	}
	var ids []string
	for id, o := range t.Specs {
		if !o.Stable() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// ExpectationsFile is the expectations file of a gate target, relative to the expectations
// directory ("containerd-2.4.2-local" → "containerd-2.4.2-local.yaml"); "" for the reference,
// which has none.
func ExpectationsFile(target string) string {
	if target == Reference {
		return ""
	}
	return target + ".yaml"
}

var rateRE = regexp.MustCompile(`\b[0-9]+ of [0-9]+\b`)

// Check returns one error per spec that c saw vary on target but that f does not list as
// `either` (f is nil for the reference: nothing may vary there), and per `either` entry whose
// reason names no measured rate ("k of N").
func Check(c *Census, target string, f *expectations.File) []error {
	var errs []error
	for _, id := range c.Varied(target) {
		o := c.Targets[target].Specs[id]
		if f == nil {
			errs = append(errs, fmt.Errorf("%s varied on %s in census %q (%s): a spec must be deterministic on the reference; "+
				"make the race deterministic (registry gates), never retry", id, target, c.Name, o))
			continue
		}
		e, ok := f.Lookup(id)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s varied on %s in census %q (%s) but is not in its expectations file: "+
				"if the target's own timing decides it, list it as either with the rate and the mechanism; if ours does, make it deterministic",
				id, target, c.Name, o))
		case e.Outcome != expectations.Either:
			errs = append(errs, fmt.Errorf("%s varied on %s in census %q (%s) but is listed as %s: make it either, with the rate and the mechanism in its reason",
				id, target, c.Name, o, e.Outcome))
		}
	}
	if f != nil {
		for _, e := range f.Expectations {
			if e.Outcome == expectations.Either && !rateRE.MatchString(e.Reason) {
				errs = append(errs, fmt.Errorf("%s on %s is either but its reason names no measured rate (\"k of N runs\")", e.ID, target))
			}
		}
	}
	return errs
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
