package expectations_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criimage/criimage/suite/census"
	"github.com/criimage/criimage/suite/expectations"
)

// TestExpectationsFollowCensus holds every expectations file of this directory to the flake
// censuses committed in census/ (make flake-census): a spec that varied on a target must be
// `either` there, with its measured rate; on the reference nothing may vary. Every expectations
// file must have census data, so that a new gate cannot land unmeasured.
func TestExpectationsFollowCensus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("census", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no census in census/ (make flake-census, then copy _output/census/NAME/census.json here): %v", err)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	measured := map[string]bool{}
	for _, p := range paths {
		c, err := census.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range c.TargetNames() {
			var f *expectations.File
			if name := census.ExpectationsFile(target); name != "" {
				if _, err := os.Stat(name); err != nil {
					t.Errorf("%s: census target %s has no expectations file %s", p, target, name)
					continue
				}
				if f, err = expectations.Load(name); err != nil {
					t.Fatal(err)
				}
				measured[name] = true
			}
			for _, err := range census.Check(c, target, f) {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
	for _, f := range files {
		if !measured[f] {
			t.Errorf("%s has no census data: run make flake-census GATES=%s and commit its census.json to census/", f, strings.TrimSuffix(f, ".yaml"))
		}
	}
}
